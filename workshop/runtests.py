"""Run the workshop's tests: one pytest process per suite, one summary at the end.

    python -m workshop.runtests                  every suite (make test)
    python -m workshop.runtests step3            one suite (make test-step3)
    python -m workshop.runtests steps            every step's suite, no tooling
    python -m workshop.runtests step3 -- -k burst   extra arguments go to pytest

Each step folder is a separate Django project with the same package names,
so each step's tests need a pytest process of their own (see tests/plugin.py).
"""
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

from .steps import REPO, STEPS

REPORTS = REPO / ".test-results"



def step_tests(step, project=None):
    """pytest's arguments to run a step's tests on its reference folder, or on `project`.

    The modules run layer by layer, as each declares (tests/plugin.py).
    """
    arguments = ["--step", str(step)]
    if project is not None:
        arguments += ["--project", str(project)]
    return arguments + ["tests/steps"]


def pytest_command(arguments):
    """The command that runs pytest on `arguments` from the repository (cwd=REPO)."""
    return [sys.executable, "-m", "pytest", *arguments]


SUITES = {f"step{step}": step_tests(step) for step in STEPS}
# The tools around the steps: Redis starter, Makefile, notebooks, ...
SUITES["tooling"] = ["tests/tooling"]


def run_suite(name, extra_args):
    """Run one suite; return its counts read from pytest's JUnit XML report."""
    report = REPORTS / f"{name}.xml"
    report.unlink(missing_ok=True)
    print(f"\n===== {name} =====", flush=True)
    command = pytest_command([*SUITES[name], f"--junitxml={report}"])
    exit_code = subprocess.call(command + extra_args, cwd=REPO)
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    if report.exists():
        for suite in ElementTree.parse(report).getroot().iter("testsuite"):
            tests, skipped = int(suite.get("tests")), int(suite.get("skipped"))
            failed = int(suite.get("failures")) + int(suite.get("errors"))
            counts["passed"] += tests - failed - skipped
            counts["failed"] += failed
            counts["skipped"] += skipped
    if exit_code not in (0, 5) and counts["failed"] == 0:
        counts["failed"] = 1  # pytest itself failed (a usage or collection error)
    return counts


def main(argv):
    names, extra_args = argv, []
    if "--" in argv:
        split = argv.index("--")
        names, extra_args = argv[:split], argv[split + 1:]
    step_suites = [name for name in SUITES if name.startswith("step")]
    names = [suite for name in names for suite in (step_suites if name == "steps" else [name])]
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        sys.exit(f"unknown suite {unknown[0]!r}; choose from {', '.join(SUITES)} or steps")
    REPORTS.mkdir(exist_ok=True)
    results = {name: run_suite(name, extra_args) for name in names or SUITES}

    print("\n===== summary =====")
    for name, counts in results.items():
        line = ", ".join(f"{number} {word}" for word, number in counts.items())
        print(f"  {name:<8} {line}")
    total = {
        word: sum(counts[word] for counts in results.values())
        for word in ("passed", "failed", "skipped")
    }
    print(f"total: {total['passed']} passed, {total['failed']} failed, "
          f"{total['skipped']} skipped")
    return 1 if total["failed"] or not total["passed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

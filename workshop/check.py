"""make check: grade your own project with the tests of a step, and give hints.

    python -m workshop.check 2                 check mywork/ as step 2
    python -m workshop.check                   find the highest step mywork/ passes
    python -m workshop.check 2 --project DIR   check another folder
    python -m workshop.check 2 --verbose       show pytest's own output too

These are the very tests that `make test` runs on the reference steps
(tests/steps), pointed at your folder: real daphne, real WebSocket clients,
a real browser, and a real Redis for step 4.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .steps import MYWORK, REPO, STEP_FOLDERS

MARKS = {"passed": "yes ", "failed": "no  ", "skipped": "skip"}
TEST_FILES = ["test_consumer", "test_server", "test_processes", "test_browser"]


def run_checks(step, project, verbose=False):
    """Run the step's tests on the project; return one result per expectation."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        command = [
            sys.executable, "-m", "pytest", "--step", str(step),
            "--project", str(project), f"--check-report={report}", "-p", "no:cacheprovider",
        ]
        # In-process consumer tests first, the browser last: from the
        # smallest piece to the whole, which is the order to debug in.
        command += [f"tests/steps/{name}.py" for name in TEST_FILES]
        if verbose:
            subprocess.run(command, cwd=REPO)
        else:
            finished = subprocess.run(command + ["-q"], cwd=REPO, capture_output=True, text=True)
            if not report.exists():  # pytest could not even start: show why
                print(finished.stdout[-3000:], finished.stderr[-3000:], sep="\n")
        return json.loads(report.read_text()) if report.exists() else []


def expectation(result):
    """The test's name as a sentence: test_sender_receives_x -> sender receives x."""
    words = result["test"].removeprefix("test_").replace("_", " ")
    if words.startswith("limit "):
        return "this step's limit: " + words.removeprefix("limit ")
    return words


def passed(results):
    return bool(results) and all(r["outcome"] != "failed" for r in results)


def print_results(step, project, results):
    met = sum(r["outcome"] == "passed" for r in results)
    print(f"\nStep {step}, checked on {project.name}/: {met} of {len(results)} expectations met")
    about = None
    for result in results:
        if result["about"] != about:
            about = result["about"]
            print(f"\n  {about}")
        print(f"  {MARKS[result['outcome']]}  {expectation(result)}")
        if result["outcome"] == "failed":
            print(f"          hint: {result['hint']}" if result["hint"] else "", end="")
            print(f"\n          why:  {result['why'][:160]}")
        elif result["outcome"] == "skipped":
            print(f"          ({result['why'].splitlines()[0]})")
    if not passed(results):
        print(f"\n  The reference solution, next to yours:  make diff FROM={project.name} TO={step}")
        print(f"  Every detail of the failures:           make check STEP={step} VERBOSE=1")
    elif step < 4:
        print(f"\nStep {step} is done. Next: {STEP_FOLDERS[step + 1]}/README.md")
    skipped = sum(r["outcome"] == "skipped" for r in results)
    if skipped:
        print(f"\n  {skipped} expectations could not be checked on this machine: "
              "see the skip lines above.")


def find_your_step(project, verbose):
    """Try step 4, 3, 2, 1 (each later step rules out the earlier one's limits)."""
    failed_results = {}
    for step in (4, 3, 2, 1):
        print(f"checking {project.name}/ as step {step} ...", flush=True)
        results = run_checks(step, project, verbose)
        if passed(results):
            break
        failed_results[step] = results
    else:
        step = 0
    if step == 4:
        print_results(4, project, results)
        print("\nAll four steps pass. Well done!")
        return 0
    print_results(step + 1, project, failed_results[step + 1])
    if step:
        print(f"\nYou have finished step {step}. Next: step {step + 1} (above).")
    else:
        print("\nStart with step 1 (above): see step01_sync_consumer/README.md.")
    return 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", type=int, nargs="?", choices=[1, 2, 3, 4])
    parser.add_argument("--project", type=Path, default=MYWORK)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    project = args.project.resolve()
    if not (project / "mysite" / "settings.py").is_file():
        print(f"No project in {project}/ yet: run `make start` first.", file=sys.stderr)
        return 2
    if args.step is None:
        return find_your_step(project, args.verbose)
    results = run_checks(args.step, project, args.verbose)
    print_results(args.step, project, results)
    return 0 if passed(results) else 1


if __name__ == "__main__":
    sys.exit(main())

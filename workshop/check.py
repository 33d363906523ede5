"""make check: grade your own project with the tests of a step, and give hints.

    python -m workshop.check 2                 check mywork/ as step 2
    python -m workshop.check                   find the highest step mywork/ passes
    python -m workshop.check 2 --project DIR   check another folder
    python -m workshop.check 2 --verbose       show pytest's own output too
    python -m workshop.check --total           end with make test's `total:` line (CI)

These are the very tests that `make test` runs on the reference steps
(tests/steps), pointed at your folder: real daphne, real WebSocket clients,
a real browser, and a real Redis for step 4. They run from the smallest
piece to the whole (the consumer in-process, a real server, several
processes, a browser): once one fails, the later layers are listed as
"not tried yet", with their hints, rather than run into timeouts.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from .runtests import pytest_command, step_tests
from .steps import LAST_STEP, MYWORK, REPO, STEP_FOLDERS, STEPS

MARKS = {"passed": "yes ", "failed": "no  ", "skipped": "skip", "not tried": "--  ",
         "advice": "yes "}

# The expectation that stands for a project that Python could not load (tests/plugin.py).
LOAD_ERROR = "test_your_code_loads_without_errors"


def run_checks(step, project, verbose=False):
    """Run the step's tests on the project; return one result per expectation."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        command = pytest_command(
            step_tests(step, project) + [f"--check-report={report}", "-p", "no:cacheprovider"]
        )
        if verbose:
            subprocess.run(command, cwd=REPO)
        else:
            finished = subprocess.run(command + ["-q"], cwd=REPO, capture_output=True, text=True)
            if not report.exists():  # pytest could not even start: show why
                print(why_pytest_stopped(finished.stdout + finished.stderr, project))
        return json.loads(report.read_text()) if report.exists() else []


def why_pytest_stopped(output, project):
    """The few lines that matter when the project stops pytest from starting (its
    settings raise, say): where in the project, and the error. Not pytest's own
    frames."""
    lines = [line for line in output.splitlines() if line.strip()]
    ours = [number for number, line in enumerate(lines)
            if line.lstrip().startswith("File ") and str(project) in line]
    errors = [line for line in lines if not line.startswith((" ", "\t", "E ", "Traceback"))
              and ("Error" in line or "Exception" in line or "Configured" in line)]
    if not errors:
        return "\n".join(lines[-20:])
    shown = lines[ours[-1]:ours[-1] + 2] if ours else []
    return "\n".join(shown + [errors[-1]])


def expectation(result):
    """The test's name as a sentence: test_sender_receives_x -> sender receives x."""
    words = result["test"].removeprefix("test_").replace("_", " ")
    return "this step's limit: " + words if result["limit"] else words


def passed(results):
    return bool(results) and all(
        r["outcome"] in ("passed", "skipped", "advice") for r in results)


def width():
    """How wide to wrap the report: the terminal's width, or no wrapping when
    the output goes to a file or another program."""
    if not sys.stdout.isatty():
        return None
    return max(60, min(shutil.get_terminal_size().columns, 120))


def say(text, indent, first=""):
    """Print `text` after `first` (both at `indent`), wrapped to the terminal."""
    columns = width()
    if columns is None:
        print(indent + first + text)
        return
    print(textwrap.fill(text, columns, initial_indent=indent + first,
                        subsequent_indent=indent + " " * len(first)))


def print_result(result, caused=()):
    mark = MARKS[result["outcome"]]
    say(expectation(result), "  ", f"{mark}  ")
    if result["outcome"] == "advice":
        say(result["why"], " " * 10, "advice: ")
        return
    if result["outcome"] in ("failed", "not tried") and result["hint"]:
        say(result["hint"], " " * 10, "hint: ")
    if result["outcome"] == "failed":
        say(result["why"][:600], " " * 10, "why:  ")
    elif result["outcome"] == "not tried" and result.get("cause"):
        say(result["why"], " " * 10, "not tried yet: ")
    elif result["outcome"] == "skipped":
        print(f"          ({result['why'].splitlines()[0]})")
    if caused:
        # One mistake, many expectations: those that failed the same way are
        # listed under the first, without hints of their own.
        why = sorted({r["why"] for r in caused} - {result["why"]})
        how = f" ({'; '.join(why)})" if why else ""
        say(f"{len(caused)} more failed the same way{how}, probably for the same reason: "
            "fix this one first.", " " * 10)
        for other in caused:
            say(expectation(other), " " * 12, "no  ")


def print_results(step, project, results):
    if loading_failed(results):
        return
    met = sum(r["outcome"] in ("passed", "advice") for r in results)
    print(f"\nStep {step}, checked on {project.name}/: {met} of {len(results)} expectations met")
    caused_by = {}
    for result in results:
        if result["outcome"] == "failed" and result.get("cause"):
            caused_by.setdefault(result["cause"], []).append(result)
    listed = {result["test"] for result in results}
    heading = None
    for result in results:
        if result["outcome"] == "failed" and result.get("cause") in listed:
            continue  # listed under its cause
        if result["heading"] != heading:
            heading = result["heading"]
            later = result["outcome"] == "not tried" and not result.get("cause")
            print(f"\n  {heading}"
                  f"{' (not tried yet: first meet the expectations above)' if later else ''}")
        print_result(result, caused_by.get(result["test"], ()))
    if not passed(results):
        print(f"\n  The reference solution, next to yours:  make diff FROM={project.name} TO={step}")
        print(f"  Every detail of the failures:           make check STEP={step} VERBOSE=1")
    elif step < LAST_STEP:
        print(f"\nStep {step} is done. Next: {STEP_FOLDERS[step + 1]}/README.md")
    skipped = sum(r["outcome"] == "skipped" for r in results)
    if skipped:
        print(f"\n  {skipped} expectations could not be checked on this machine: "
              "see the skip lines above.")


def loading_failed(results):
    """When the project could not even load (its settings, a syntax error), say
    that alone: no expectation was tried. Returns True if it said so."""
    if results and not all(r["test"] == LOAD_ERROR for r in results):
        return False
    print("\nYour project could not be loaded, so no expectation was tried:")
    for result in results:
        say(result["why"], "  ")
    if not results:
        print("  (pytest could not start: its output is above)")
    print("  Fix that first (Python names the file and line), then check again.")
    return True


def print_total(results):
    """make test's closing line (workshop/runtests.py), for .ci/run's summary:
    the expectations just reported: met (passed), missed (failed) or not
    checked (skipped, or not tried). No results at all (pytest could not start)
    count as one failure."""
    met = sum(r["outcome"] in ("passed", "advice") for r in results)
    missed = sum(r["outcome"] == "failed" for r in results)
    skipped = len(results) - met - missed
    print(f"total: {met} passed, {missed or int(not results)} failed, {skipped} skipped")


def find_your_step(project, verbose, total=False):
    """Try the last step first, then each one before it (a later step rules out
    the earlier one's limits). Finding where you are is an answer, not an
    error: this exits 0 whatever step that is."""
    failed_results = {}
    for step in reversed(STEPS):
        print(f"checking {project.name}/ as step {step} ...", flush=True)
        results = run_checks(step, project, verbose)
        if passed(results):
            break
        failed_results[step] = results
    else:
        step = 0
    if step == LAST_STEP:
        print_results(step, project, results)
        print(f"\nAll {LAST_STEP} steps pass. Well done!")
    else:
        results = failed_results[step + 1]
        print_results(step + 1, project, results)
        if step:
            print(f"\nYou have finished step {step}. Next: step {step + 1}, "
                  f"as listed above ({STEP_FOLDERS[step + 1]}/README.md).")
        else:
            print(f"\nStart with step 1, as listed above ({STEP_FOLDERS[1]}/README.md).")
    if total:
        print_total(results)
    return 0


def notes_on_the_settings(step, project):
    """What the settings say before any test runs: a later step's Redis layer,
    or a Redis address that ignores REDIS_URL (make check's Redis is on a free
    port, given in REDIS_URL)."""
    settings = (project / "mysite" / "settings.py").read_text()
    notes = []
    if "channels_redis" in settings and step < 4:
        notes.append(f"This folder looks like step 4 or later (its settings use channels_redis),"
                     f" checked here as step {step}: expect failures from the layer on Redis."
                     f" `make check` with no STEP finds your step.")
    if "channels_redis" in settings and "REDIS_URL" not in settings:
        notes.append('Your CHANNEL_LAYERS name a fixed Redis address: make check starts a '
                     'Redis of its own on a free port and gives its address in REDIS_URL. '
                     'Read it: "address": os.environ.get("REDIS_URL", '
                     '"redis://127.0.0.1:6379/0") (step 4\'s README).')
    for note in notes:
        say(note, "", "note: ")
    return notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", type=int, nargs="?", choices=STEPS)
    parser.add_argument("--project", type=Path, default=MYWORK)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--total", action="store_true",
                        help="end with a `total: N passed, N failed, N skipped` line that "
                             "counts the expectations reported (.ci/run reads it)")
    args = parser.parse_args(argv)
    project = args.project.resolve()
    if not (project / "mysite" / "settings.py").is_file():
        print(f"No project in {project}/ yet: run `make start` first.", file=sys.stderr)
        return 2
    if args.step is None:
        return find_your_step(project, args.verbose, args.total)
    notes_on_the_settings(args.step, project)
    results = run_checks(args.step, project, args.verbose)
    print_results(args.step, project, results)
    if args.total:
        print_total(results)
    return 0 if passed(results) else 1


if __name__ == "__main__":
    sys.exit(main())

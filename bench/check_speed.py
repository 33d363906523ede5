"""How long an attendee waits for `make check`: python -m bench.check_speed

    python -m bench.check_speed                  3 runs of each case (make bench-check)
    python -m bench.check_speed --runs 1         one run of each
    python -m bench.check_speed --steps 2        step 2's cases only

Each case is a fresh copy of a folder in a temporary folder (mywork/ is not
touched), checked as step 1, then as step 2: the untouched starting point
(what `make start` gives, nothing typed yet), the step's reference (which
passes), and the reference broken the way an attendee mid-exercise leaves it:
receive() that answers nothing, connect() without accept(), receive() that
raises, and receive() that calls time.sleep(10). Attendees run the check
every few minutes, and a failing check is the common case: none may be slower
than the passing one. Prints the wall-clock seconds of each run and the median.
"""
import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workshop.steps import REPO, step_folder

# What each broken state replaces in the reference consumer (a pattern, the
# same for step 1's def and step 2's async def), and with what.
RECEIVE = r"(def receive\(self, text_data=None, bytes_data=None\):\n)"
BROKEN = {
    "receive() silent": (RECEIVE, r"\1        return\n"),
    "accept() missing": (r"(await )?self\.accept\(\)", "pass  # accept() forgotten"),
    "receive() raising": (RECEIVE, r"\1        raise ValueError('not written yet')\n"),
    "receive() calls time.sleep(10)": (RECEIVE, r"\1        __import__('time').sleep(10)\n"),
}
CASES = ["untouched start", "reference (passes)", *BROKEN]


def make_case(case, step, folder):
    """Copy the folder of `case` for `step` to `folder`."""
    source = step_folder(0 if case == "untouched start" else step)
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__"))
    if case in BROKEN:
        consumers = folder / "chat" / "consumers.py"
        pattern, replacement = BROKEN[case]
        text, replaced = re.subn(pattern, replacement, consumers.read_text(), count=1)
        assert replaced, f"{case}: {pattern!r} is not in {source.name}'s consumers.py"
        consumers.write_text(text)
    return folder


def time_check(step, folder):
    """Seconds that `python -m workshop.check STEP --project folder` takes, and its exit code."""
    began = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-m", "workshop.check", str(step), "--project", str(folder)],
        cwd=REPO, capture_output=True, text=True,
    )
    return time.perf_counter() - began, finished.returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES, metavar="CASE")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="check-speed-") as scratch:
        for step in args.steps:
            for number, case in enumerate(args.cases):
                folder = make_case(case, step, Path(scratch) / f"step{step}-{number}")
                times, codes = [], set()
                for _ in range(args.runs):
                    seconds, code = time_check(step, folder)
                    times.append(seconds)
                    codes.add(code)
                runs = " ".join(f"{t:.1f}" for t in times)
                exit_codes = ", ".join(map(str, sorted(codes)))
                print(f"  make check STEP={step}, {case:<31} median "
                      f"{statistics.median(times):5.1f} s  (runs: {runs}; exit code {exit_codes})",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

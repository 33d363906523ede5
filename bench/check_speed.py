"""How long an attendee waits for `make check STEP=1`: python -m bench.check_speed

    python -m bench.check_speed              3 runs of each case (make bench-check)
    python -m bench.check_speed --runs 1     one run of each

Two cases, each on a fresh copy in a temporary folder (mywork/ is not touched):
the untouched starting point (what `make start` gives, nothing typed yet),
which fails, and step 1's reference, which passes. Attendees run the check
every few minutes and the failing case is the common one, so it must not be
the slower one. Prints the wall-clock seconds of each run and the median.
"""
import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workshop.steps import REPO, step_folder

CASES = {
    "untouched start (fails)": 0,
    "step 1 reference (passes)": 1,
}


def time_check(folder):
    """Seconds that `python -m workshop.check 1 --project folder` takes, and its exit code."""
    began = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-m", "workshop.check", "1", "--project", str(folder)],
        cwd=REPO, capture_output=True, text=True,
    )
    return time.perf_counter() - began, finished.returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="check-speed-") as scratch:
        for case, step in CASES.items():
            folder = Path(scratch) / f"step{step}"
            shutil.copytree(step_folder(step), folder,
                            ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__"))
            times = []
            for _ in range(args.runs):
                seconds, code = time_check(folder)
                times.append(seconds)
            runs = " ".join(f"{t:.1f}" for t in times)
            print(f"  make check STEP=1, {case:<26} median {statistics.median(times):5.1f} s"
                  f"  (runs: {runs}; exit code {code})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

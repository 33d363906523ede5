"""The repository's facts, in one place: where it is, its steps, Redis's address.

Every tool reads them from here (make check, make test, make diff, make
doctor, the slides, the benchmarks). A new step is one more line in
STEP_FOLDERS: `--step`, `make check`, `make catch-up` and the test suites
of `make test` follow from it.

This module may run on an old system Python (make doctor says it is too old):
keep it to syntax and modules that Python 3.7 has.
"""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

STEP_FOLDERS = {
    0: "step00_start",  # where the tutorial begins: the pages, no consumer yet
    1: "step01_sync_consumer",
    2: "step02_async_consumer",
    3: "step03_channel_layer",
    4: "step04_redis_backend",
    5: "step05_production",
    6: "step06_history",
}

# The step that teaches each idea, for what refers to it by name (a check that
# is only advice before it, say).
RESILIENCE = 6  # surviving churn: a send to a client that has just left

# The steps an attendee can check, catch up to and test: all but the start.
STEPS = sorted(number for number in STEP_FOLDERS if number > 0)
LAST_STEP = STEPS[-1]

# Where the steps from 4 on find Redis unless REDIS_URL says otherwise
# (the same default as step04's settings).
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# The attendee's own project (make start). Tests point MYWORK_DIR elsewhere
# so that they never touch yours.
MYWORK = Path(os.environ.get("MYWORK_DIR", str(REPO / "mywork"))).resolve()


def step_folder(step):
    return REPO / STEP_FOLDERS[step]


def readme_code(step, name):
    """The code block that follows `<!-- code: NAME -->` in a step's README.

    Code shown in a README but kept out of the step's files (step 3's
    synchronous consumer): the slides show it and a test runs it, both from
    the README itself, so the three cannot drift apart.
    """
    readme = step_folder(step) / "README.md"
    marker = f"<!-- code: {name} -->"
    text = readme.read_text()
    if marker not in text:
        raise LookupError(f"{readme.relative_to(REPO)} has no {marker}")
    lines = text.split(marker, 1)[1].lstrip("\n").splitlines()
    if not lines[0].startswith("```"):
        raise LookupError(f"{marker} in {readme.relative_to(REPO)} is not followed by a code block")
    end = lines.index("```", 1)
    return "\n".join(lines[1:end]) + "\n"


def display(path):
    """A path as people read it: relative to the repository when inside it.

    abspath, not resolve(): .venv/bin/python is a symlink to be shown as it is.
    """
    for candidate in (Path(os.path.abspath(str(path))), Path(path).resolve()):
        try:
            return candidate.relative_to(REPO).as_posix()
        except ValueError:
            pass
    return Path(path).as_posix()

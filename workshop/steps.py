"""Where the steps live."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

STEP_FOLDERS = {
    0: "step00_start",  # where the tutorial begins: the pages, no consumer yet
    1: "step01_sync_consumer",
    2: "step02_async_consumer",
    3: "step03_channel_layer",
    4: "step04_redis_backend",
}

# The attendee's own project (make start). Tests point MYWORK_DIR elsewhere
# so that they never touch yours.
MYWORK = Path(os.environ.get("MYWORK_DIR", REPO / "mywork")).resolve()


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

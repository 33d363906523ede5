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

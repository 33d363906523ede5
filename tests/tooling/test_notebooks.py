"""The notebooks: each runs clean from top to bottom, and what is committed reads well.

Running them executes every cell in a fresh kernel (nbclient), in memory: the
tracked .ipynb files are never written. Their own assertions make a notebook
fail when it runs but shows the wrong thing (say, async no faster than sync).
"""
import hashlib
import json

import pytest

from workshop.notebooks import NOTEBOOKS, execute, notebook_paths
from workshop.redis import find_redis_server

from tests.support import skip_or_fail
from workshop.steps import REPO

PATHS = notebook_paths()
EXPECTED = [
    "01_sync_vs_async.ipynb",
    "02_consumers_and_websockets.ipynb",
    "03_sync_and_async_consumers_under_load.ipynb",
    "04_channel_layers.ipynb",
]
# The slides take these plots from the committed notebooks.
FIGURE_TAGS = {
    "01_sync_vs_async.ipynb": "figure-sync-vs-async",
    "03_sync_and_async_consumers_under_load.ipynb": "figure-consumers-under-load",
}


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(notebook):
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_the_four_notebooks_are_there():
    assert [path.name for path in PATHS] == EXPECTED


@pytest.mark.parametrize("path", PATHS, ids=lambda path: path.name[:2])
def test_notebook_runs_clean_and_is_not_rewritten(path):
    if "04_" in path.name and find_redis_server() is None:
        skip_or_fail("notebook 04 needs a redis-server (see `make redis`)")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    executed = execute(path)  # raises at the first failing cell, with its traceback
    errors = [output for cell in code_cells(executed) for output in cell["outputs"]
              if output["output_type"] == "error"]
    assert not errors
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("path", PATHS, ids=lambda path: path.name[:2])
def test_committed_notebook_has_clean_small_outputs(path):
    notebook = load(path)
    cells = code_cells(notebook)
    # Saved after a full run: every cell executed, in order, nothing failed.
    counts = [cell["execution_count"] for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), "save notebooks with `make notebooks-run`"
    outputs = [output for cell in cells for output in cell["outputs"]]
    assert all(output["output_type"] != "error" for output in outputs)
    assert not [o for o in outputs if o["output_type"] == "stream" and o["name"] == "stderr"]
    # No trace of this machine, and small enough to read well on a code host.
    text = json.dumps(outputs)
    for machine_specific in (str(REPO), str(NOTEBOOKS), "/tmp/", "/home/"):
        assert machine_specific not in text
    assert path.stat().st_size < 100_000


@pytest.mark.parametrize("name,tag", FIGURE_TAGS.items())
def test_main_plot_is_one_png_in_its_tagged_cell(name, tag):
    tagged = [cell for cell in code_cells(load(NOTEBOOKS / name))
              if tag in cell["metadata"].get("tags", [])]
    assert len(tagged) == 1
    outputs = tagged[0]["outputs"]
    assert len(outputs) == 1 and "image/png" in outputs[0]["data"]


def test_make_notebooks_serves_on_loopback_only(make):
    result = make("-n", "notebooks", "notebooks-run")
    assert result.returncode == 0, result.stderr
    lab, refresh = result.stdout.strip().splitlines()[-2:]
    assert "jupyterlab" in lab and "--ServerApp.ip=127.0.0.1" in lab
    assert "--ServerApp.root_dir=notebooks" in lab
    assert refresh.endswith("-m workshop.notebooks")

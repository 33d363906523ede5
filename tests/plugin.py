"""pytest plugin: which project the step tests check, and as which step.

    pytest --step 3 tests/steps                   the reference step03 folder
    pytest --step 3 --project mywork tests/steps  your own project, as step 3

Every step folder is its own Django project with the same package names
(mysite, chat), so one pytest process can hold only one of them: `make test`
runs one process per step (workshop/runtests.py).
"""
import os
import sys
from pathlib import Path

import pytest

from workshop.ports import free_port

REPO = Path(__file__).resolve().parent.parent
STEP_FOLDERS = {
    1: "step01_sync_consumer",
    2: "step02_async_consumer",
    3: "step03_channel_layer",
    4: "step04_redis_backend",
}
STEP_TESTS = REPO / "tests" / "steps"


def pytest_addoption(parser):
    group = parser.getgroup("workshop")
    group.addoption(
        "--step", type=int, choices=sorted(STEP_FOLDERS),
        help="check what this step promises (1-4)",
    )
    group.addoption(
        "--project", help="the folder to check (default: the step's reference folder)"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # This runs before pytest-django sets Django up, which is what we need:
    # the project's folder must be importable and its settings chosen first.
    options = early_config.known_args_namespace
    if options.step is None:
        return
    project = Path(options.project or REPO / STEP_FOLDERS[options.step]).resolve()
    if not (project / "mysite" / "settings.py").is_file():
        raise pytest.UsageError(f"{project} is not a step folder (no mysite/settings.py)")
    sys.path.insert(0, str(project))
    os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
    # Step 4 reads REDIS_URL when its settings load, which is now. Point it at
    # the Redis the tests will start on a free port, never at the user's own.
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "steps(*numbers): the test applies only to these steps"
    )


def pytest_collection_modifyitems(config, items):
    step = config.getoption("step")
    selected, deselected = [], []
    for item in items:
        if STEP_TESTS in Path(item.path).parents and step is None:
            raise pytest.UsageError("the tests in tests/steps need --step 1, 2, 3 or 4")
        marker = item.get_closest_marker("steps")
        if marker is not None and step not in marker.args:
            deselected.append(item)
        else:
            selected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected

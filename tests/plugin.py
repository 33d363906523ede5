"""pytest plugin: which project the step tests check, and as which step.

    pytest --step 3 tests/steps                   the reference step03 folder
    pytest --step 3 --project mywork tests/steps  your own project, as step 3

Every step folder is its own Django project with the same package names
(mysite, chat), so one pytest process can hold only one of them: `make test`
runs one process per step (workshop/runtests.py).
"""
import json
import os
import sys
from pathlib import Path

import pytest

from workshop.ports import free_port
from workshop.steps import REPO, step_folder

STEP_TESTS = REPO / "tests" / "steps"
RESULTS = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("workshop")
    group.addoption(
        "--step", type=int, choices=[1, 2, 3, 4],
        help="check what this step promises (1-4)",
    )
    group.addoption(
        "--project", help="the folder to check (default: the step's reference folder)"
    )
    group.addoption(
        "--check-report", metavar="FILE",
        help="write each test's outcome and hint to FILE as JSON (make check)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # This runs before pytest-django sets Django up, which is what we need:
    # the project's folder must be importable and its settings chosen first.
    options = early_config.known_args_namespace
    if options.step is None:
        return
    project = Path(options.project or step_folder(options.step)).resolve()
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
    config.addinivalue_line(
        "markers", "hint(text): what to look at when this test fails (make check)"
    )
    config.stash[RESULTS] = {}


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


# --- make check: one result per test function, with its hint ------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if item.config.getoption("check_report"):
        name = item.originalname  # the same for every parameter of a test
        marker = item.get_closest_marker("hint")
        result = item.config.stash[RESULTS].setdefault(name, {
            "test": name,
            "about": item.module.__doc__.splitlines()[0],  # what the test file covers
            "hint": marker.args[0] if marker else "",
            "outcome": "passed",
        })
        if report.failed and result["outcome"] != "failed":
            result["outcome"] = "failed"
            crash = getattr(report.longrepr, "reprcrash", None)
            result["why"] = crash.message.splitlines()[0] if crash else str(report.longrepr)
        elif report.skipped and result["outcome"] == "passed":
            result["outcome"] = "skipped"
            result["why"] = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if report.failed and collector.config.getoption("check_report"):
        # A test file that cannot even load is an expectation missed too.
        lines = [line for line in str(report.longrepr).splitlines() if line.strip()]
        collector.config.stash[RESULTS][str(collector.path)] = {
            "test": "test_your_code_loads_without_errors",
            "about": f"Loading {collector.path.name}",
            "hint": "Python could not load the project: the message names the problem.",
            "outcome": "failed",
            "why": lines[-1] if lines else "",
        }
    return report


def pytest_sessionfinish(session):
    path = session.config.getoption("check_report")
    if path:
        results = list(session.config.stash[RESULTS].values())
        Path(path).write_text(json.dumps(results, indent=1))

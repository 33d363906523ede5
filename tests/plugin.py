"""pytest plugin: which project the step tests check, and as which step.

    pytest --step 3 tests/steps                   the reference step03 folder
    pytest --step 3 --project mywork tests/steps  your own project, as step 3

Every step folder is its own Django project with the same package names
(mysite, chat), so one pytest process can hold only one of them: `make test`
runs one process per step (workshop/runtests.py).

What a test in tests/steps declares, for `make check` (workshop/check.py):

    pytestmark = pytest.mark.layer(N, "...")  once per module: its layer, 1 being
                                              the smallest piece, and the heading
                                              its expectations are listed under
    @pytest.mark.hint("...")                  on every test: what to look at
                                              when it fails
    @pytest.mark.limit                        on a test proving what the step
                                              cannot do yet (a later step lifts it)
    @pytest.mark.steps(1, 2)                  the steps it applies to (default: all)
    @pytest.mark.advice_before(6, "what")     required from step 6 on, the step that
                                              teaches it; before, make check reports
                                              a failure as advice ("works; what: see
                                              step 6") and the step still passes
                                              (make test requires it of every step)

With --check-report FILE, the outcome of each test function is written to FILE
as JSON: a list of {"test", "heading", "hint", "limit", "outcome", "why"},
outcome being "passed", "failed", "skipped", "not tried" or "advice" (see
advice_before), and "cause": the earlier test whose failure explains this one
(the consumer left both unanswered: tests/support.py), or None. The modules run
layer by layer, from the smallest piece to the whole (the consumer in-process,
a real server, several processes, a browser), the order to debug in; with
--check-report, once a test has failed, the tests of the later layers are not
run but reported "not tried", since what they stand on is broken.
"""
import asyncio
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

from tests.support import CONSUMER_WAITS, BlockedEventLoop, first_traceback
from workshop.ports import free_port
from workshop.production import local_settings
from workshop.steps import HISTORY, PRODUCTION, REPO, STEPS, USERS, step_folder

STEP_TESTS = REPO / "tests" / "steps"
RESULTS = pytest.StashKey[dict]()
FAILED_MODULE = pytest.StashKey[str]()
NOT_TRIED = pytest.StashKey[str]()
ALREADY_FAILED = pytest.StashKey[bool]()
NEVER_AWAITED = pytest.StashKey[str]()


def pytest_addoption(parser):
    group = parser.getgroup("workshop")
    group.addoption(
        "--step", type=int, choices=STEPS,
        help=f"check what this step promises ({STEPS[0]}-{STEPS[-1]})",
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
    if options.step >= PRODUCTION:
        # From step 5 on, the settings read their secrets from the environment.
        os.environ.update(local_settings())
    if options.step >= HISTORY:
        # The history step stores messages: in a database of the tests' own, never in
        # the step folder's db.sqlite3.
        database = Path(tempfile.mkdtemp(prefix="workshop-db-")) / "db.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{database}"
        early_config.add_cleanup(lambda: shutil.rmtree(database.parent, ignore_errors=True))
    if options.step >= USERS:
        # The tests of the earlier steps send bursts, all as one user: flood
        # control (step 8) would refuse them. Its own test sets the real limit.
        os.environ["CHAT_FLOOD_LIMIT"] = "1000000"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "steps(*numbers): the test applies only to these steps"
    )
    config.addinivalue_line(
        "markers", "hint(text): what to look at when this test fails (make check)"
    )
    config.addinivalue_line(
        "markers", "layer(number, heading): a step test module's place, smallest first, "
        "and what its expectations are about (make check)"
    )
    config.addinivalue_line(
        "markers", "limit: the test proves what the step cannot do yet (a later step lifts it)"
    )
    config.addinivalue_line(
        "markers", "advice_before(step, what): before that step (the one that teaches it), "
        "make check reports a failure as advice, `what` goes wrong, without failing the step"
    )
    config.stash[RESULTS] = {}
    # make check: short waits once the consumer has left one unanswered (tests/support.py)
    CONSUMER_WAITS.checking = bool(config.getoption("check_report"))


def pytest_collection_modifyitems(config, items):
    step = config.getoption("step")
    selected, deselected = [], []
    for item in items:
        if STEP_TESTS in Path(item.path).parents and step is None:
            raise pytest.UsageError(f"the tests in tests/steps need --step (one of {STEPS})")
        marker = item.get_closest_marker("steps")
        if marker is not None and step not in marker.args:
            deselected.append(item)
        else:
            selected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    # Layer by layer (a stable sort: within a module, the order of the file).
    items[:] = sorted(selected, key=lambda item: layer(item)[0])


# --- make check: one result per test function, with its hint ------------------


def layer(item):
    """(number, heading) that the item's module declares; undeclared ones go last."""
    marker = item.get_closest_marker("layer")
    if marker:
        return tuple(marker.args)
    return float("inf"), getattr(getattr(item, "module", None), "__name__", item.nodeid)


def heading(item):
    return layer(item)[1]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Once a layer has failed, the layers built on it are not run (make check)."""
    CONSUMER_WAITS.start_test()
    config = item.config
    failed_path, failed_heading = config.stash.get(FAILED_MODULE, (None, None))
    if config.getoption("check_report") and failed_path and failed_path != str(item.path):
        # Skipped before any fixture starts: no server, no browser, no timeout.
        item.stash[NOT_TRIED] = failed_heading
        pytest.skip(f"not tried yet: {failed_heading!r} must pass first")
    result = config.stash[RESULTS].get(item.originalname)
    if config.getoption("check_report") and result and result["outcome"] == "failed":
        # Another parameter of a test already failed: its line says "no" already.
        item.stash[ALREADY_FAILED] = True
        pytest.skip("another of its cases failed")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if not item.config.getoption("check_report"):
        return (yield)
    # An async consumer that forgets an await sends nothing, and says why only
    # in a warning: make check gives that warning as the reason.
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            return (yield)
    finally:
        CONSUMER_WAITS.stop_watching()
        for warning in caught:
            if "was never awaited" in str(warning.message):
                item.stash.setdefault(NEVER_AWAITED, (
                    f"{warning.category.__name__}: {warning.message}: a missing await"
                    f" ({Path(warning.filename).name}, line {warning.lineno})"))
            # Given back to pytest, which shows them with VERBOSE=1.
            warnings.warn_explicit(warning.message, warning.category,
                                   warning.filename, warning.lineno, source=warning.source)


def sentence(name):
    """test_sender_receives_x -> sender receives x (as make check prints it)."""
    return name.removeprefix("test_").replace("_", " ")


def timeout_of(error):
    """The seconds given to the asyncio.wait_for() whose wait raised `error`
    (the innermost one), or None if no wait_for() raised it."""
    waited, traceback = None, error.__traceback__
    while traceback is not None:
        frame = traceback.tb_frame
        timeout = frame.f_locals.get("timeout")
        in_wait_for = (frame.f_code.co_name == "wait_for"
                       and frame.f_globals.get("__name__") == "asyncio.tasks")
        if in_wait_for and isinstance(timeout, (int, float)):
            waited = timeout
        traceback = traceback.tb_next
    return waited


def why_it_failed(item, call, report):
    """One line saying why, and the earlier test whose failure explains it, if any."""
    error = call.excinfo.value if call.excinfo else None
    name = item.originalname
    if isinstance(error, BlockedEventLoop):
        CONSUMER_WAITS.blocked = CONSUMER_WAITS.blocked or name
        return str(error), None
    if isinstance(error, (TimeoutError, asyncio.TimeoutError)) and CONSUMER_WAITS.checking:
        # How long it waited: an in-process wait's length is ConsumerWaits' (this
        # test's), any other wait's (a real server's socket) its own.
        waited = CONSUMER_WAITS.last_timeout
        if waited is None:
            waited = timeout_of(error)
        within = "in time" if waited is None else f"within {waited:g} s"
        if CONSUMER_WAITS.unanswered is None:
            CONSUMER_WAITS.unanswered = name
            return f"the consumer sent no answer {within}", None
        return f"no answer {within} either", CONSUMER_WAITS.unanswered
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None:
        return str(report.longrepr), None
    why = crash.message.splitlines()[0]
    if "Traceback (most recent call last)" in crash.message:
        # A server's traceback: its exception line is what names the problem.
        why += " " + first_traceback(crash.message).splitlines()[-1].strip()
    return why, None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if item.config.getoption("check_report"):
        name = item.originalname  # the same for every parameter of a test
        hint = item.get_closest_marker("hint")
        result = item.config.stash[RESULTS].setdefault(name, {
            "test": name,
            "heading": heading(item),
            "hint": hint.args[0] if hint else "",
            "limit": item.get_closest_marker("limit") is not None,
            "outcome": "passed",
        })
        advice = item.get_closest_marker("advice_before")
        if report.failed and advice and item.config.getoption("step") < advice.args[0]:
            # Not this step's lesson yet: advice, and the later layers still run.
            why, _ = why_it_failed(item, call, report)
            result["outcome"] = "advice"
            result["why"] = f"works; {advice.args[1]}: see step {advice.args[0]} ({why})"
            return report
        if report.failed:
            item.config.stash.setdefault(FAILED_MODULE, (str(item.path), heading(item)))
        skipped_why = report.longrepr[2] if report.skipped and isinstance(
            report.longrepr, tuple) else ""
        if report.failed and result["outcome"] != "failed":
            result["outcome"] = "failed"
            result["why"], result["cause"] = why_it_failed(item, call, report)
            result["why"] = item.stash.get(NEVER_AWAITED, result["why"])
        elif report.skipped and ALREADY_FAILED in item.stash:
            pass
        elif report.skipped and NOT_TRIED in item.stash:
            result["outcome"] = "not tried"
            result["why"] = item.stash[NOT_TRIED]  # the heading of the layer that failed
        elif report.skipped and skipped_why.startswith("Skipped: not tried yet: first make"):
            result["outcome"] = "not tried"  # the consumer blocked the event loop before
            result["why"] = (f"first make {sentence(CONSUMER_WAITS.blocked)!r} work: the "
                             "consumer blocked the event loop there")
            result["cause"] = CONSUMER_WAITS.blocked
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
            "heading": f"Loading {collector.path.name}",
            "hint": "Python could not load the project: the message names the problem.",
            "limit": False,
            "outcome": "failed",
            "why": lines[-1] if lines else "",
        }
    return report


def pytest_sessionfinish(session):
    path = session.config.getoption("check_report")
    if path:
        results = list(session.config.stash[RESULTS].values())
        Path(path).write_text(json.dumps(results, indent=1))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """make check: a synchronous consumer still sleeping in the sync thread
    (time.sleep() in receive()) would hold the process, and the answer, until
    it wakes. The report is written: leave without waiting for it."""
    import threading

    busy = [thread for thread in threading.enumerate()
            if thread is not threading.main_thread() and not thread.daemon]
    if config.getoption("check_report") and CONSUMER_WAITS.unanswered and busy:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

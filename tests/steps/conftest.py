"""Fixtures shared by every step test: the project, real servers (the browser
fixture is in tests/conftest.py)."""
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.support import PASSWORD, TESTER, skip_or_fail
from workshop.redis import HOW_TO_GET_REDIS, RedisServer, find_redis_server, host_and_port
from workshop.production import prepare
from workshop.servers import DaphneServer, UvicornServer
from workshop.clients import SiteUser
from workshop.steps import HISTORY, PRODUCTION, REDIS, USERS


def pytest_collection_modifyitems(config, items):
    """From the history step on, the consumer stores messages: the in-process tests
    (test_consumer.py) get a test database, emptied after each test."""
    if (config.getoption("step") or 0) < HISTORY:
        return
    for item in items:
        if item.path.name == "test_consumer.py":
            # transaction=True: the consumer's queries run in another thread,
            # on a connection of its own, so they must really commit. (A marker,
            # not a fixture: pytest-django creates the test database only for
            # the tests that it sees need one when the run starts.)
            item.add_marker(pytest.mark.django_db(transaction=True))


@pytest.fixture(scope="session")
def step(pytestconfig):
    return pytestconfig.getoption("step")


@pytest.fixture(scope="session")
def project():
    """The folder under test: its settings are the ones Django loaded."""
    from django.conf import settings

    return Path(settings.BASE_DIR)


@pytest.fixture(scope="session")
def redis_server(step):
    """Step 4's Redis, on the free port that tests/plugin.py put in REDIS_URL."""
    if step < REDIS:
        pytest.fail("only the steps from 4 on use Redis")
    if find_redis_server() is None:
        skip_or_fail(HOW_TO_GET_REDIS.format(url=os.environ["REDIS_URL"]))
    _, port = host_and_port(os.environ["REDIS_URL"])
    with RedisServer(port) as server:
        yield server


@pytest.fixture(scope="session")
def production_env(step, project):
    """From step 5 on: the environment the settings read, after a deploy's
    migrate and collectstatic."""
    if step < PRODUCTION:
        return {}
    env = dict(os.environ)  # tests/plugin.py put the settings' variables there
    prepare(project, env)
    return env


@pytest.fixture(scope="session")
def start_server(request, step, project, production_env):
    """Start another server serving the project; all are stopped at the end.

    Steps 1-4 run under daphne, as `manage.py runserver` does; from step 5 on,
    under uvicorn with 2 worker processes, as in production. Keyword
    arguments go to UvicornServer (workers, env, options).
    """
    if step >= REDIS:
        request.getfixturevalue("redis_server")
    servers = []

    def start(**options):
        if step >= PRODUCTION:
            env = {**production_env, **options.pop("env", {})}
            server = UvicornServer(project, env=env, **options)
        else:
            server = DaphneServer(project, **options)
        servers.append(server.start())
        if step >= USERS:
            log_in(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


# From the users step on, a handshake needs a logged-in user. The tests of the
# steps before it chat as that user: the tests' own, signed up once in each
# database through the site's forms, and logged in on each server it starts.
def log_in(server):
    """Give `server` the session of the tests' user (workshop.clients.chat_client
    sends it with each handshake)."""
    user = SiteUser(server, TESTER, PASSWORD)
    try:
        user.log_in()
    except AssertionError:  # not in this server's database yet
        user.sign_up()
    server.session = user.cookie("sessionid")


@pytest.fixture
def browser(browser, step, server):
    """From the users step on, the browser comes logged in as the tests' user
    (the same session cookie; cookies ignore the port, so on every server)."""
    if step >= USERS:
        browser.get(f"{server.url}/accounts/login/")
        browser.add_cookie({"name": "sessionid", "value": server.session, "path": "/"})
    return browser


@pytest.fixture(scope="session")
def server(start_server):
    """The daphne process most tests talk to."""
    return start_server()


@pytest.fixture(autouse=True)
def empty_rooms(step):
    """From the history step on, rooms remember. Each test starts with none stored, as
    with the servers of the steps before it, whose rooms are empty once everyone left."""
    if step >= HISTORY:
        forget_every_message(os.environ["DATABASE_URL"])


def forget_every_message(database_url):
    """Empty the chat app's tables in the tests' SQLite database (tests/plugin.py)."""
    path = Path(database_url.removeprefix("sqlite:///"))
    if not path.exists():
        return  # no server has migrated it yet
    with closing(sqlite3.connect(path, timeout=20)) as database, database:
        tables = database.execute(
            "SELECT name FROM sqlite_master"
            " WHERE type = 'table' AND name LIKE 'chat\\_%' ESCAPE '\\'"
        ).fetchall()
        for (table,) in tables:
            database.execute(f'DELETE FROM "{table}"')


@pytest.fixture(autouse=True)
def no_traceback_in_server_logs(request):
    """Whatever a test sends, the servers it used must not print a traceback."""
    if "server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("server")
    before = len(server.log())
    yield
    new_output = server.log()[before:]
    assert "Traceback" not in new_output, f"the server printed:\n{new_output}"


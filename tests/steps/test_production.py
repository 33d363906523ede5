"""Production: uvicorn workers, settings from the environment, nginx in front."""
import asyncio
import http.client
import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support import skip_or_fail
from workshop.clients import chat_client
from workshop.nginx import HOW_TO_GET_NGINX, NginxServer, find_nginx
from workshop.ports import wait_until
from workshop.steps import HISTORY, PRODUCTION, readme_code, since

pytestmark = [
    pytest.mark.steps(*since(PRODUCTION)),
    pytest.mark.layer(3, "Production: uvicorn workers, the environment, nginx"),
]

# What `manage.py check --deploy` may still say with production values, and
# why (step05_production/README.md): TLS, and so HSTS and the https redirect,
# belong to the proxy; secure cookies are for a site served over https only.
EXPECTED_DEPLOY_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016"}


def worker_of(server, client):
    """The pid of the uvicorn worker that holds this client's connection."""
    import psutil

    local_port = client.websocket.local_address[1]
    for pid in server.worker_pids():
        for connection in psutil.Process(pid).net_connections("tcp"):
            if connection.raddr and connection.raddr.port == local_port:
                return pid
    raise AssertionError(f"no worker holds the connection from port {local_port}")


async def clients_on_both_workers(server, stack, room, at_most=40, open_client=chat_client):
    """Open clients until both workers hold at least one: {pid: [clients]}."""
    by_worker = {}
    for _ in range(at_most):
        client = await stack.enter_async_context(open_client(server, room))
        by_worker.setdefault(worker_of(server, client), []).append(client)
        if len(by_worker) == 2:
            return by_worker
    raise AssertionError(f"{at_most} connections all went to one worker")


def manage(project, env, *arguments):
    return subprocess.run([sys.executable, "manage.py", *arguments], cwd=project,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.hint(
    "Serve with uvicorn --workers 2 and keep the channel layer on Redis: the "
    "workers are separate processes."
)
async def test_clients_on_both_workers_share_the_room(server):
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        by_worker = await clients_on_both_workers(server, stack, "shared")
        first, second = (clients[0] for clients in by_worker.values())
        await first.send_message("across workers")
        for clients in by_worker.values():
            for client in clients:
                assert await client.receive() == {"message": "across workers"}
        await second.send_message("and back")
        assert (await first.receive()) == {"message": "and back"}


@pytest.mark.limit
@pytest.mark.hint(
    "mysite/settings_memory.py swaps in InMemoryChannelLayer: each worker then has"
    " its own layer, which is why production uses Redis."
)
async def test_in_memory_layer_splits_the_room_across_workers(start_server):
    """Step 3's limit at production scale: one port, two workers, two rooms."""
    from contextlib import AsyncExitStack

    server = start_server(env={"DJANGO_SETTINGS_MODULE": "mysite.settings_memory"})
    async with AsyncExitStack() as stack:
        by_worker = await clients_on_both_workers(server, stack, "split")
        (here, *same_worker), (there, *_) = by_worker.values()
        await here.send_message("only my worker hears this")
        assert await here.receive() == {"message": "only my worker hears this"}
        for client in same_worker:
            assert await client.receive() == {"message": "only my worker hears this"}
        await there.assert_receives_nothing(within=1)


@pytest.mark.hint(
    "uvicorn replaces a worker that dies; the other worker's clients are not "
    "affected, and the killed worker's clients reconnect."
)
async def test_a_killed_worker_is_replaced_and_the_room_chats_on(start_server, step):
    from contextlib import AsyncExitStack

    server = start_server()
    async with AsyncExitStack() as stack:
        by_worker = await clients_on_both_workers(server, stack, "phoenix")
        (victim_pid, victims), (survivor_pid, survivors) = by_worker.items()
        os.kill(victim_pid, signal.SIGKILL)
        for client in victims:
            with pytest.raises(ConnectionClosed):
                await client.receive(timeout=10)
        # The other worker never stopped: its clients chat, pages load.
        await survivors[0].send_message("still here")
        for client in survivors:
            assert await client.receive() == {"message": "still here"}
        with urllib.request.urlopen(f"{server.url}/chat/", timeout=10) as response:
            assert response.status == 200
        # uvicorn starts a new worker in the dead one's place.
        wait_until(lambda: len(server.worker_pids()) == 2 and victim_pid not in
                   server.worker_pids(), 30, "a replacement worker")
        # The killed worker's clients come back, as the page does by itself.
        returned = [await stack.enter_async_context(chat_client(server, "phoenix"))
                    for _ in victims]
        if step >= HISTORY:  # newcomers get the room's history first
            for client in returned:
                assert await client.receive() == {"message": "still here"}
        await returned[0].send_message("back again")
        for client in returned + survivors:
            assert await client.receive() == {"message": "back again"}


@pytest.mark.limit
@pytest.mark.steps(*range(PRODUCTION, HISTORY))
@pytest.mark.hint("Step 7 stores messages; before it, nothing replays what was missed.")
async def test_a_client_that_reconnects_has_missed_what_was_said(server):
    """The limit that step 7 lifts: the layer only delivers to who is there now."""
    async with chat_client(server, "away") as bob:
        async with chat_client(server, "away") as alice:
            await alice.send_message("before you left")
            assert await bob.receive() == {"message": "before you left"}
        await bob.send_message("said while alice was away")
        assert await bob.receive() == {"message": "said while alice was away"}
        async with chat_client(server, "away") as alice_again:
            await alice_again.assert_receives_nothing(within=1)


@pytest.mark.hint(
    "settings.py reads DJANGO_DEBUG (off unless \"1\"), DJANGO_SECRET_KEY, "
    "DJANGO_ALLOWED_HOSTS and REDIS_URL from the environment."
)
def test_settings_come_from_the_environment(project, production_env):
    probe = (
        "import os; from django.conf import settings as s; "
        "print(s.DEBUG, s.ALLOWED_HOSTS, s.SECRET_KEY == os.environ['DJANGO_SECRET_KEY'], "
        "os.environ['REDIS_URL'] in str(s.CHANNEL_LAYERS))"
    )
    env = {**production_env, "DJANGO_ALLOWED_HOSTS": "chat.example.com, www.example.com",
           "REDIS_URL": "redis://redis.internal:6380/2"}
    shown = manage(project, env, "shell", "--no-imports", "-c", probe)
    assert shown.stdout.strip() == "False ['chat.example.com', 'www.example.com'] True True"
    shown = manage(project, {**env, "DJANGO_DEBUG": "1"}, "shell", "--no-imports", "-c", probe)
    assert shown.stdout.startswith("True ")


@pytest.mark.hint("With no DJANGO_SECRET_KEY, settings.py must refuse to start, and say why.")
def test_without_a_secret_key_it_refuses_to_start_and_says_why(project, production_env):
    env = {key: value for key, value in production_env.items() if key != "DJANGO_SECRET_KEY"}
    refused = manage(project, env, "check")
    assert refused.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in refused.stderr.strip().splitlines()[-1]


@pytest.mark.hint(
    "The README's production commands run check --deploy first, and chain the "
    "rest with &&: uvicorn would restart a worker that cannot start, forever."
)
def test_the_production_commands_stop_at_once_without_a_secret_key(step, project,
                                                                    production_env):
    commands = readme_code(step, "production-command").splitlines()
    without_key = "\n".join(line for line in commands
                            if not line.startswith("export DJANGO_SECRET_KEY="))
    env = {key: value for key, value in production_env.items() if key != "DJANGO_SECRET_KEY"}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    ran = subprocess.run(["bash", "-c", without_key], cwd=project, env=env,
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in ran.stderr.strip().splitlines()[-1]
    assert "Uvicorn running" not in ran.stdout + ran.stderr  # it never started


@pytest.mark.hint(
    "manage.py check --deploy with production values: no errors; the warnings "
    "left are the ones README.md explains."
)
def test_check_deploy_finds_no_error_and_only_the_explained_warnings(project, production_env):
    env = {**production_env, "DJANGO_ALLOWED_HOSTS": "chat.example.com"}
    checked = manage(project, env, "check", "--deploy", "--fail-level", "ERROR")
    assert checked.returncode == 0, checked.stderr
    warnings = {line.split("(")[1].split(")")[0] for line in checked.stderr.splitlines()
                if "(security." in line}
    assert warnings == EXPECTED_DEPLOY_WARNINGS, checked.stderr


@pytest.mark.hint(
    "Add servestatic's middleware after SecurityMiddleware and set STATIC_ROOT; "
    "collectstatic runs before the server starts."
)
def test_static_files_are_served_with_debug_off(server):
    with urllib.request.urlopen(f"{server.url}/static/admin/css/base.css", timeout=10) as page:
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/css")


@pytest.mark.hint(
    "A 404 with DEBUG off is Django's plain page, not the yellow debug page that "
    "lists your URLs."
)
def test_debug_is_off_so_errors_show_no_internals(server):
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{server.url}/nowhere/", timeout=10)
    assert missing.value.code == 404
    assert "URLconf" not in missing.value.read().decode()


# --- nginx in front -------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx_binary():
    if find_nginx() is None:
        skip_or_fail(HOW_TO_GET_NGINX)


@pytest.fixture
def behind_nginx(nginx_binary, project):
    """Start nginx with deploy/nginx.conf in front of a server; stopped after the test."""
    proxies = []

    def behind_nginx(server, read_timeout=None):
        proxy = NginxServer(project, upstream_port=server.port, read_timeout=read_timeout)
        proxy.session = getattr(server, "session", None)  # the server's user (step 8)
        proxies.append(proxy.start())
        return proxy

    yield behind_nginx
    for proxy in proxies:
        proxy.__exit__(None, None, None)


@pytest.mark.hint(
    "deploy/nginx.conf: proxy_http_version 1.1 and the Upgrade and Connection "
    "headers pass the WebSocket handshake through."
)
async def test_the_chat_works_through_nginx(server, behind_nginx):
    proxy = behind_nginx(server)
    with urllib.request.urlopen(f"{proxy.url}/chat/lobby/", timeout=10) as page:
        assert page.status == 200
    async with chat_client(proxy, "proxied") as alice, chat_client(proxy, "proxied") as bob:
        await alice.send_message("through nginx")
        assert await alice.receive() == {"message": "through nginx"}
        assert await bob.receive() == {"message": "through nginx"}


@pytest.mark.hint(
    "proxy_read_timeout must stay above uvicorn's --ws-ping-interval: the pings "
    "are what keeps an idle socket open through nginx."
)
async def test_an_idle_socket_outlives_nginx_read_timeout_because_of_pings(
    start_server, behind_nginx
):
    # Both clocks scaled down: pings every second, nginx's timeout 3 s.
    server = start_server(options=["--ws-ping-interval", "1"])
    proxy = behind_nginx(server, read_timeout="3s")
    async with chat_client(proxy, "quiet", ping_interval=None) as alice:
        await asyncio.sleep(8)  # silent for more than twice nginx's timeout
        await alice.send_message("still connected")
        assert await alice.receive() == {"message": "still connected"}


@pytest.mark.hint(
    "deploy/nginx.conf: proxy_set_header Host $http_host, port included: Django's "
    "CSRF check compares the Origin of a POST with the host it was given."
)
def test_the_admin_login_form_passes_the_csrf_check_through_nginx(server, behind_nginx):
    proxy = behind_nginx(server)
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with browser.open(f"{proxy.url}/admin/login/", timeout=10) as page:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode())
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1),
                                   "username": "nobody", "password": "wrong"}).encode()
    # As a browser posts a form: with the page's origin.
    login = urllib.request.Request(f"{proxy.url}/admin/login/", data=form,
                                   headers={"Origin": proxy.url})
    with browser.open(login, timeout=10) as answer:  # a 403 would raise HTTPError
        assert "Please enter the correct username and password" in answer.read().decode()


@pytest.mark.hint(
    "deploy/nginx.conf: a default server that returns 444 answers any Host that "
    "is not the site's, so Django never sees it."
)
def test_a_request_for_another_host_gets_no_answer_from_nginx(server, behind_nginx):
    proxy = behind_nginx(server)
    foreign = urllib.request.Request(f"{proxy.url}/chat/", headers={"Host": "evil.example"})
    with pytest.raises((urllib.error.URLError, http.client.RemoteDisconnected)):
        urllib.request.urlopen(foreign, timeout=10)
    with urllib.request.urlopen(f"{proxy.url}/chat/", timeout=10) as page:
        assert page.status == 200  # the site's own name still gets in

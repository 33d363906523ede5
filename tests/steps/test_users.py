"""Users: Django's auth on the socket, over real HTTP and WebSocket connections
to the production server (uvicorn, 2 workers)."""
import asyncio
import os
import secrets
import signal
import sys
import time
import urllib.error
import urllib.request
from contextlib import AsyncExitStack

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.steps.test_production import (  # noqa: F401 (fixtures)
    behind_nginx, clients_on_both_workers, nginx_binary)
from workshop.clients import SiteUser, chat_client
from workshop.steps import USERS, since

pytestmark = [
    pytest.mark.steps(*since(USERS)),
    pytest.mark.layer(4, "Users: who said it, who may enter, logging out"),
]


def new_user(server):
    """A user of its own for each test: the database keeps users between tests."""
    return SiteUser(server, f"user-{secrets.token_hex(4)}").sign_up()


async def refused_status(connecting):
    """The HTTP status a refused handshake got."""
    with pytest.raises(InvalidStatus) as refused:
        async with connecting:
            pass
    return refused.value.response.status_code


async def say(client, text):
    await client.send_message(text)
    frame = await chat_frame(client)
    assert frame.get("message") == text, frame
    return frame


async def chat_frame(client, timeout=5):
    """The next frame that is not a presence list, author and id included."""
    return await client.receive_frame(timeout, author=True)


async def presence(client, expected, timeout=5):
    """Read frames until a presence list equal to `expected` comes; fail after `timeout`."""
    seen = []

    async def until_expected():
        while True:
            frame = await client.receive_any(timeout)
            if "presence" in frame:
                seen.append(frame["presence"])
                if frame["presence"] == sorted(expected):
                    return

    try:
        await asyncio.wait_for(until_expected(), timeout)
    except asyncio.TimeoutError:  # Python 3.10's, not yet the built-in TimeoutError
        raise AssertionError(f"expected presence {sorted(expected)}, saw {seen}") from None


@pytest.mark.hint(
    "connect() reads self.scope['user'] (AuthMiddlewareStack in asgi.py) and, if not "
    "user.is_authenticated, calls self.close() before accept(): HTTP 403."
)
async def test_an_anonymous_handshake_is_refused(server):
    assert await refused_status(chat_client(server, "lobby", anonymous=True)) == 403
    # A forged session cookie is no better: AuthMiddlewareStack finds no
    # session for it, and the user is AnonymousUser.
    forged = chat_client(server, "lobby", additional_headers={"Cookie": "sessionid=forged"})
    assert await refused_status(forged) == 403


@pytest.mark.hint("@login_required on the index and room views; LOGIN_URL = 'login'.")
def test_the_pages_send_an_anonymous_visitor_to_log_in_and_back(server):
    visitor = SiteUser(server, f"user-{secrets.token_hex(4)}")
    _, url, _ = visitor.get("/chat/lobby/")
    assert url == f"{server.url}/accounts/login/?next=/chat/lobby/"
    visitor.sign_up().log_out()
    visitor.post("/accounts/login/?next=/chat/lobby/",
                 {"username": visitor.username, "password": visitor.password,
                  "next": "/chat/lobby/"})
    status, url, page = visitor.get("/chat/lobby/")
    assert (status, url) == (200, f"{server.url}/chat/lobby/")
    assert visitor.username in page


@pytest.mark.hint(
    "store_message(..., author=self.user); Message.as_frame() adds "
    '"author": self.author.username; messages_after() select_related("author").'
)
async def test_messages_carry_their_author_live_and_in_the_catch_up(server):
    alice, bob = new_user(server), new_user(server)
    async with alice.chat_client("authors") as alice_chat, bob.chat_client("authors") as bob_chat:
        frame = await say(alice_chat, "<b>hi</b> from alice")
        assert frame["author"] == alice.username
        assert await chat_frame(bob_chat) == frame
        assert (await say(bob_chat, "hi alice"))["author"] == bob.username
    carol = new_user(server)
    async with carol.chat_client("authors", since=0) as carol_chat:
        caught_up = [await chat_frame(carol_chat) for _ in range(2)]
    assert [(frame["author"], frame["message"]) for frame in caught_up] == [
        (alice.username, "<b>hi</b> from alice"), (bob.username, "hi alice")]


@pytest.mark.hint(
    "Each socket joins the group user_<id>; chat/signals.py's user_logged_out receiver "
    "group_sends {'type': 'session.ended'}; the consumer closes with code 4401."
)
async def test_logging_out_closes_every_socket_of_that_user_on_every_worker(server):
    alice, bob = new_user(server), new_user(server)
    # Eight sockets: the two workers each get some of them (the kernel hands
    # out the connections), so the news must cross the channel layer.
    async with alice.chat_client("tabs") as first, bob.chat_client("tabs") as bob_chat:
        others = [await stack_enter(alice.chat_client("tabs")) for _ in range(7)]
        tabs = [first, *(client for client, _ in others)]
        await say(first, "before logging out")
        await chat_frame(bob_chat)
        session = alice.cookie("sessionid")
        started = time.monotonic()
        await asyncio.to_thread(alice.log_out)
        codes = await asyncio.gather(*(closed_code(tab) for tab in tabs))
        elapsed = time.monotonic() - started
        assert codes == [4401] * len(tabs)
        assert elapsed < 1, f"the sockets closed {elapsed:.2f} s after logging out"
        print(f"{len(tabs)} sockets closed {elapsed * 1000:.0f} ms after the logout's POST")
        # Bob is still there, and still chatting.
        assert (await say(bob_chat, "still here"))["author"] == bob.username
        for _, context in others:
            await context.__aexit__(None, None, None)
    # And the old cookie opens nothing any more.
    old_cookie = {"Cookie": f"sessionid={session}"}
    assert await refused_status(
        chat_client(server, "tabs", additional_headers=old_cookie)) == 403


async def stack_enter(context):
    return await context.__aenter__(), context


async def closed_code(client, timeout=1):
    try:
        while True:
            await asyncio.wait_for(client.websocket.recv(), timeout)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except asyncio.TimeoutError:
        return "still open"


def make_private(room, *users):
    """Code that makes a private room as the admin does: the Room with these members."""
    names = [user.username for user in users]
    return ("from django.contrib.auth import get_user_model\n"
            "from chat.models import Room\n"
            f"room, _ = Room.objects.get_or_create(name={room!r})\n"
            f"room.members.set(get_user_model().objects.filter(username__in={names!r}))\n")


@pytest.fixture
def database(project, production_env):
    """Run Django code in a process of its own on the servers' database and Redis,
    as the admin would in one of the workers: `await database(code)`. (Not in the
    test process: there, pytest-django may have swapped in a test database.)"""
    async def run(code):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "manage.py", "shell", "-c", code, cwd=project, env=production_env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()
    return run


@pytest.mark.hint(
    "connect() calls may_enter(room, user) (chat/models.py) before accept(): a room "
    "with members refuses everyone else with close() (403), before any history is read."
)
async def test_a_private_room_refuses_a_non_member_and_tells_no_history(server, database):
    alice, mallory = new_user(server), new_user(server)
    await database(make_private("secret", alice))
    async with alice.chat_client("secret") as alice_chat:
        assert (await say(alice_chat, "for members only"))["author"] == alice.username
    assert await refused_status(mallory.chat_client("secret", since=0)) == 403
    with pytest.raises(urllib.error.HTTPError) as page:
        mallory.get("/chat/secret/")
    assert page.value.code == 403
    assert "for members only" not in page.value.read().decode()
    # A public room is open to both, as before.
    async with mallory.chat_client("public") as chat:
        await say(chat, "anyone may come here")


@pytest.mark.hint(
    "chat/signals.py: on m2m_changed of Room.members, group_send "
    "{'type': 'membership.changed'} to the room; each consumer checks may_enter() again "
    "and closes with 4403 if it may no longer enter."
)
async def test_a_member_removed_while_connected_is_closed_at_once(server, database):
    alice, bob, carol = new_user(server), new_user(server), new_user(server)
    async with carol.chat_client("club") as carol_chat:
        await say(carol_chat, "a public room, for now")
        # Made private while Carol is in it, without her: she is shown out.
        await database(make_private("club", alice, bob))
        assert await chat_frame(carol_chat) == {
            "error": "You are no longer a member of this room."}
        assert await closed_code(carol_chat) == 4403
    async with alice.chat_client("club") as alice_chat, bob.chat_client("club") as bob_chat:
        for chat in (alice_chat, bob_chat):  # the history
            await chat_frame(chat)
        await database(make_private("club", alice))
        assert await chat_frame(bob_chat) == {
            "error": "You are no longer a member of this room."}
        assert await closed_code(bob_chat) == 4403
        # Alice, still a member, chats on.
        await say(alice_chat, "just us now")
        with pytest.raises(asyncio.TimeoutError):
            await chat_frame(alice_chat, timeout=0.3)


@pytest.mark.hint(
    "An expired session is no session: get_user() (channels/auth.py) finds none, and "
    "the user is AnonymousUser: the handshake is refused."
)
async def test_an_expired_session_opens_nothing(server, database):
    alice = await asyncio.to_thread(new_user, server)
    await database("from django.contrib.sessions.models import Session\n"
                   "from django.utils import timezone\n"
                   f"Session.objects.filter(session_key={alice.cookie('sessionid')!r})"
                   ".update(expire_date=timezone.now())\n")
    assert await refused_status(alice.chat_client("lobby")) == 403


@pytest.mark.hint(
    "chat/signals.py: on post_delete of the user, group_send {'type': 'session.ended'} "
    "to user_<id> once committed; a message stored meanwhile raises IntegrityError: "
    "close with 4401."
)
async def test_a_user_deleted_while_connected_is_closed_without_a_traceback(server, database):
    alice, bob = new_user(server), new_user(server)
    async with alice.chat_client("deleted") as alice_chat, bob.chat_client("deleted") as bob_chat:
        await say(alice_chat, "about to go")
        await chat_frame(bob_chat)
        await database("from django.contrib.auth import get_user_model\n"
                       f"get_user_model().objects.filter(username={alice.username!r}).delete()\n")
        assert await closed_code(alice_chat) == 4401
        # Her messages stay, without an author.
        async with bob.chat_client("deleted", since=0) as again:
            frame = await chat_frame(again)
        assert (frame["author"], frame["message"]) == (None, "about to go")
        await say(bob_chat, "still here")


@pytest.mark.hint(
    "chat/presence.py: a lease per socket in the sorted set presence:<room>; connect() "
    "and disconnect() group_send {'type': 'presence.changed', 'names': ...} when the "
    "user's first or last socket comes or goes; each consumer sends {'presence': names}."
)
async def test_who_is_here_across_workers_each_user_once(server):
    alice, bob = new_user(server), new_user(server)
    async with alice.chat_client("here") as alice_chat:
        await presence(alice_chat, [alice.username])
        async with bob.chat_client("here") as bob_chat:
            await presence(alice_chat, [alice.username, bob.username])
            await presence(bob_chat, [alice.username, bob.username])
            # Alice's other tabs (some on the other worker) count once.
            tabs = [await stack_enter(alice.chat_client("here")) for _ in range(3)]
            for tab, context in tabs:
                await presence(tab, [alice.username, bob.username])
                await context.__aexit__(None, None, None)
            # Bob saw no change the whole time: nothing new was sent to him.
            with pytest.raises(asyncio.TimeoutError):
                await chat_frame(bob_chat, timeout=0.5)
        await presence(alice_chat, [alice.username])


@pytest.mark.hint(
    "A killed worker removes nothing: its leases must run out (presence.LEASE); the "
    "renewal (every presence.RENEW s) that removes them tells the room."
)
async def test_the_users_of_a_killed_worker_vanish_within_the_bound(start_server):
    from chat import presence as leases

    def as_a_new_user(server, room):
        return new_user(server).chat_client(room)

    server = start_server()  # two workers, of which one is killed
    async with AsyncExitStack() as stack:
        by_worker = await clients_on_both_workers(server, stack, "doomed",
                                                  open_client=as_a_new_user)
        (victim_pid, victims), (_, survivors) = by_worker.items()
        watcher = survivors[-1]
        await presence(watcher, [client.user.username for client in victims + survivors])
        os.kill(victim_pid, signal.SIGKILL)
        started = time.monotonic()
        for client in victims:
            assert await closed_code(client, timeout=5) in (1006, None)
        bound = leases.LEASE + leases.RENEW
        await presence(watcher, [client.user.username for client in survivors],
                       timeout=bound + 2)
        elapsed = time.monotonic() - started
    print(f"the killed worker's users vanished after {elapsed:.1f} s (bound {bound} s)")
    assert elapsed <= bound + 1


@pytest.mark.hint(
    "chat/flood.py: SET NX EX then INCR a counter per user in Redis; over flood.LIMIT, "
    "answer {'error': ..., 'retry_after': s} and keep the socket open."
)
async def test_a_flooder_is_held_back_across_workers_and_the_others_chat_on(start_server):
    from chat import flood

    # The other tests' servers allow bursts (tests/plugin.py): this one has the
    # step's own limit.
    limit = 20
    server = start_server(env={"CHAT_FLOOD_LIMIT": str(limit)})
    flooder, bob = new_user(server), new_user(server)
    async with flooder.chat_client("flood") as tab, bob.chat_client("flood") as bob_chat:
        others = [await stack_enter(flooder.chat_client("flood")) for _ in range(3)]
        tabs = [tab, *(client for client, _ in others)]
        sent = limit + 10
        for number in range(sent):
            await tabs[number % len(tabs)].send_message(f"flood {number}", key=f"k{number}")
        acknowledged, refused = [], []
        for number in range(sent):
            client = tabs[number % len(tabs)]
            while True:
                frame = await chat_frame(client)
                if frame.get("key") == f"k{number}":
                    break  # other tabs' messages reach every tab: skip them
            (refused if "error" in frame else acknowledged).append(frame)
        # Four tabs, maybe on both workers, share one allowance.
        assert len(acknowledged) == limit
        assert len(refused) == sent - limit
        assert all(0 < frame["retry_after"] <= flood.WINDOW for frame in refused)
        # Bob is not held back, and the flooder's sockets are still open.
        await bob_chat.send_message("I can still talk")
        while (frame := await chat_frame(bob_chat))["message"] != "I can still talk":
            assert frame["author"] == flooder.username  # the flood's allowed part, first
        assert frame["author"] == bob.username
        await tab.send_raw("not json")
        while "error" not in (frame := await chat_frame(tab)) or "key" in frame:
            pass  # the room's messages, queued before the answer
        assert frame["error"].startswith("Frames must be JSON")
        for _, context in others:
            await context.__aexit__(None, None, None)


@pytest.mark.hint(
    "registration/signup.html and login.html post Django's forms; room.html shows "
    "data.author and data.message in chatLog.value (text), the presence list in "
    "#presence with textContent, and on close code 4401 writes [logged out] and stops."
)
async def test_in_a_browser_sign_up_chat_see_who_is_here_and_log_out_of_every_tab(
        browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from tests.steps.test_browser import HOSTILE, chat_log, wait_for, wait_for_log

    def here(window):
        browser.switch_to.window(window)
        return browser.find_element(By.ID, "presence").text

    name, password = f"user-{secrets.token_hex(4)}", f"not-{secrets.token_hex(8)}"
    browser.delete_all_cookies()  # a visitor, not the tests' user (tests/steps/conftest.py)
    first_window = browser.current_window_handle
    browser.switch_to.new_window("window")
    tab = browser.current_window_handle
    try:
        # Sent to log in, and from there to sign up.
        browser.get(f"{server.url}/chat/browsed/")
        assert browser.current_url == f"{server.url}/accounts/login/?next=/chat/browsed/"
        browser.find_element(By.LINK_TEXT, "Sign up").click()
        browser.find_element(By.ID, "id_username").send_keys(name)
        browser.find_element(By.ID, "id_password1").send_keys(password)
        browser.find_element(By.ID, "id_password2").send_keys(password, Keys.ENTER)
        wait_for(browser, lambda: browser.current_url == f"{server.url}/chat/")
        browser.get(f"{server.url}/chat/browsed/")
        wait_for(browser, lambda: browser.execute_script("return chatSocket.readyState") == 1)
        wait_for(browser, lambda: here(tab) == name)

        bob = await asyncio.to_thread(new_user, server)
        async with bob.chat_client("browsed") as bob_chat:
            both = ", ".join(sorted([name, bob.username]))
            wait_for(browser, lambda: here(tab) == both)
            await say(bob_chat, HOSTILE)
            wait_for_log(browser, tab, f"{bob.username}: {HOSTILE}")
            assert browser.execute_script("return window.pwned") is None
            browser.find_element(By.ID, "chat-message-input").send_keys("hi bob", Keys.ENTER)
            frame = await chat_frame(bob_chat)
            assert (frame["author"], frame["message"]) == (name, "hi bob")

            # A second tab of the same user: the list does not change.
            browser.switch_to.new_window("window")
            other_tab = browser.current_window_handle
            browser.get(f"{server.url}/chat/browsed/")
            wait_for(browser, lambda: browser.execute_script("return chatSocket.readyState") == 1)
            wait_for_log(browser, other_tab, f"{name}: hi bob")  # the history, with authors
            assert here(other_tab) == both
            # Log out in the first tab: the other tab's socket closes, for good.
            browser.switch_to.window(tab)
            browser.find_element(By.ID, "logout-submit").click()
            wait_for(browser, lambda: "/accounts/login/" in browser.current_url)
            wait_for_log(browser, other_tab, "[logged out]")
            assert browser.execute_script("return chatSocket.readyState") == 3  # CLOSED
            await presence(bob_chat, [bob.username])
            await asyncio.sleep(1.5)  # the page would have reconnected after 0.5-1 s
            assert "[reconnected]" not in chat_log(browser, other_tab)
            browser.close()
    finally:
        browser.switch_to.window(tab)
        browser.close()
        browser.switch_to.window(first_window)


@pytest.mark.hint(
    "Behind nginx, Django's CSRF check compares the form's Origin with the Host that "
    "deploy/nginx.conf passes on (proxy_set_header Host $http_host)."
)
async def test_through_nginx_log_in_with_csrf_chat_and_a_private_room_stays_closed(
        server, behind_nginx, database):
    proxy = behind_nginx(server)
    alice = await asyncio.to_thread(new_user, proxy)
    mallory = await asyncio.to_thread(new_user, proxy)
    await asyncio.to_thread(alice.log_out)
    await asyncio.to_thread(alice.log_in)  # LoginView's form, its CSRF token, through nginx
    await database(make_private("behind", alice))
    async with alice.chat_client("behind") as chat:
        assert (await say(chat, "through nginx"))["author"] == alice.username
    assert await refused_status(mallory.chat_client("behind", since=0)) == 403
    # Who is here, through nginx, each tab on whichever worker nginx chose.
    async with alice.chat_client("behind-public") as alice_chat:
        async with mallory.chat_client("behind-public") as mallory_chat:
            for chat in (alice_chat, mallory_chat):
                await presence(chat, [alice.username, mallory.username])
    # A form posted from another site is refused (CSRF), through nginx as directly.
    forger = SiteUser(proxy, "forger")
    forger.get("/accounts/login/")
    forged = urllib.request.Request(
        f"{proxy.url}/accounts/login/", headers={"Origin": "http://evil.example"},
        data=f"username=x&password=y&csrfmiddlewaretoken={forger.cookie('csrftoken')}".encode())
    with pytest.raises(urllib.error.HTTPError) as refused:
        forger.opener.open(forged, timeout=10)
    assert refused.value.code == 403

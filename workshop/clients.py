"""Real WebSocket clients that speak the chat's JSON frames (tests, notebooks, bench).

ChatClient is one connection; ReconnectingClient follows step 7's room.html
through reconnects, resends and duplicates.
"""
import asyncio
import json
import resource
import random
import secrets
import urllib.error
import urllib.request
from contextlib import asynccontextmanager

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus


def allow_open_files(count):
    """Raise this process's soft limit on open files to `count` if it is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ChatClient:
    def __init__(self, websocket):
        self.websocket = websocket

    async def send_message(self, text, key=None):
        frame = {"message": text} if key is None else {"message": text, "key": key}
        await self.websocket.send(json.dumps(frame))

    async def send_raw(self, frame):
        """Send any frame, str (text) or bytes (binary), as hostile clients do."""
        await self.websocket.send(frame)

    async def receive(self, timeout=5):
        """The next frame, decoded from JSON, without what later steps add to
        each message (the "id" of step 7, the "author" of step 8): what the
        frame says, the same in every step."""
        frame = await self.receive_frame(timeout)
        frame.pop("id", None)
        return frame

    async def receive_frame(self, timeout=5, author=False):
        """The next frame, decoded from JSON, as it came but for what step 8
        adds: the lists of who is here ({"presence": [...]}, sent as people
        come and go) are passed over, and the "author" of each message is
        dropped unless `author`."""
        frame = await asyncio.wait_for(self._next_frame_but_presence(), timeout)
        if not author:
            frame.pop("author", None)
        return frame

    async def _next_frame_but_presence(self):
        while "presence" in (frame := json.loads(await self.websocket.recv())):
            pass
        return frame

    async def receive_any(self, timeout=5):
        """The next frame, whatever it is."""
        return json.loads(await asyncio.wait_for(self.websocket.recv(), timeout))

    async def assert_receives_nothing(self, within=0.5):
        try:
            frame = await self.receive_frame(within)
        except asyncio.TimeoutError:  # the same as TimeoutError from Python 3.11
            return
        raise AssertionError(f"expected no message, received {frame!r}")


def login_headers(server, anonymous=False):
    """The headers a logged-in browser sends with a handshake: from step 8 on,
    the test servers' own user's session cookie (tests/steps/conftest.py)."""
    return session_cookie(None if anonymous else getattr(server, "session", None))


def session_cookie(session):
    """The Cookie header that carries a Django session, or none without one."""
    return {"Cookie": f"sessionid={session}"} if session else {}


def get_page(server, path):
    """(status, body) of a GET of one of the server's pages, 404s included, as
    the server's user (from step 8 on, the pages want a logged-in visitor)."""
    request = urllib.request.Request(f"{server.url}{path}", headers=login_headers(server))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


@asynccontextmanager
async def chat_client(server, room, origin=None, since=None, anonymous=False, **options):
    """Open the room's WebSocket on a running server (a DaphneServer), from
    step 7 on asking for the messages after `since`, from step 8 on as the
    server's user unless `anonymous` (or headers of its own say otherwise)."""
    url = server.ws_url(room) if since is None else f"{server.ws_url(room)}?since={since}"
    headers = {**login_headers(server, anonymous), **options.pop("additional_headers", {})}
    async with connect(url, origin=origin or server.origin, additional_headers=headers,
                       **options) as ws:
        yield ChatClient(ws)


class ReconnectingClient:
    """A chat client that loses nothing, by the rules of step 7's room.html.

    - It remembers the id of the last message it holds, and reconnects (after
      a random wait that doubles, from `backoff` seconds up to `max_backoff`)
      with ?since=<that id>.
    - It gives every message a key, keeps it in `pending` until the server
      sends it back with an id (or refuses it), and sends every pending
      message again after reconnecting.
    - It drops a message whose id it holds already, and counts it in
      `duplicates` (the server promises there are none).

        client = ReconnectingClient(server, "lobby")
        client.start()
        await client.send("hello")
        ...
        await client.stop()
        client.messages  # [(id, text, key), ...] in the order received
    """

    def __init__(self, server, room, backoff=0.1, max_backoff=1.0):
        self.url = server.ws_url(room)
        self.origin = server.origin
        self.headers = login_headers(server)
        self.backoff, self.max_backoff = backoff, max_backoff
        self.last_id = None  # None until connected once: then ask for all after it
        self.messages = []
        self.pending = {}  # key -> text, oldest first
        self.acknowledged = {}  # key -> id, for the messages this client sent
        self.errors, self.duplicates = [], []
        self.connections = 0
        self.close_codes = []  # how each connection that the server ended was closed
        self.refusals = []  # the HTTP status of each handshake the server refused
        self.websocket = None
        self._sent_here = set()  # keys sent on the current connection
        self._lock = asyncio.Lock()
        self._task = None

    def start(self):
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self):
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def send(self, text):
        """Send a message, now or after the next reconnect; return its key."""
        key = secrets.token_hex(8)
        self.pending[key] = text
        await self._send_pending()
        return key

    async def _send_pending(self):
        # One sender at a time, oldest first, each message once per connection.
        async with self._lock:
            for key, text in list(self.pending.items()):
                if self.websocket is None:
                    return
                if key in self._sent_here or key not in self.pending:
                    continue
                try:
                    await self.websocket.send(json.dumps({"message": text, "key": key}))
                except ConnectionClosed:
                    return  # sent again after the reconnect
                self._sent_here.add(key)

    async def _run(self):
        delay = self.backoff
        while True:
            url = self.url if self.last_id is None else f"{self.url}?since={self.last_id}"
            try:
                async with connect(url, origin=self.origin, open_timeout=10, max_queue=None,
                                   additional_headers=self.headers) as websocket:
                    self.connections += 1
                    delay = self.backoff
                    if self.last_id is None:
                        # Whatever is said from now on reaches this connection
                        # or the next one: after this, ask for all after 0.
                        self.last_id = 0
                    self.websocket, self._sent_here = websocket, set()
                    await self._send_pending()
                    async for frame in websocket:
                        self._receive(json.loads(frame))
                    self.close_codes.append(websocket.close_code)  # a normal closure
            except InvalidStatus as refused:
                self.refusals.append(refused.response.status_code)
            except ConnectionClosed as closed:  # without a close frame: 1006
                self.close_codes.append(closed.rcvd.code if closed.rcvd else 1006)
            except (OSError, InvalidHandshake, ConnectionClosed, asyncio.TimeoutError):
                pass  # refused, cut or timed out: try again
            finally:
                self.websocket = None
            await asyncio.sleep(delay * random.uniform(0.5, 1))
            delay = min(delay * 2, self.max_backoff)

    def _receive(self, frame):
        if "presence" in frame:
            return  # step 8's list of who is here: not a message
        if "error" in frame:
            self.errors.append(frame)
            self.pending.pop(frame.get("key"), None)  # refused: do not send it again
        elif frame["id"] <= self.last_id:
            self.duplicates.append(frame)
        else:
            self.last_id = frame["id"]
            self.messages.append((frame["id"], frame["message"], frame.get("key")))
            if frame.get("key") in self.pending:
                del self.pending[frame["key"]]
                self.acknowledged[frame["key"]] = frame["id"]


class SiteUser:
    """Someone using the site over HTTP as a browser does, from the users step on:
    cookies kept between requests, Django's forms posted with their CSRF token.

        alice = SiteUser(server, "alice").sign_up()   # or .log_in() if she exists
        async with alice.chat_client("lobby") as chat:
            ...
        alice.log_out()

    Its chat_client() sends the session cookie with the handshake, as the
    browser sends a page's cookies, so that the consumer knows who it is.
    """

    def __init__(self, server, username, password=None):
        import http.cookiejar
        import urllib.request

        self.server = server
        self.username = username
        self.password = password or f"not-{username}-{secrets.token_hex(8)}"
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def cookie(self, name):
        return next((cookie.value for cookie in self.cookies if cookie.name == name), None)

    def get(self, path):
        """GET a page; return (status, final URL after redirects, body)."""
        with self.opener.open(f"{self.server.url}{path}", timeout=10) as response:
            return response.status, response.url, response.read().decode()

    def post(self, path, fields):
        """POST a form as a browser would: GET the page first for its CSRF cookie."""
        import urllib.parse

        self.get(path)
        data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": self.cookie("csrftoken")})
        with self.opener.open(self._form(path, data), timeout=10) as response:
            return response.status, response.url, response.read().decode()

    def _form(self, path, data):
        import urllib.request

        # With the Origin header a browser sends: Django's CSRF check compares
        # it with the Host it was asked for (through nginx too).
        return urllib.request.Request(f"{self.server.url}{path}", data.encode(),
                                      headers={"Origin": self.server.origin})

    def sign_up(self):
        self.post("/chat/signup/", {"username": self.username, "password1": self.password,
                                    "password2": self.password})
        if self.cookie("sessionid") is None:
            raise AssertionError(f"signing up as {self.username!r} did not log in")
        return self

    def log_in(self):
        self.post("/accounts/login/", {"username": self.username, "password": self.password})
        if self.cookie("sessionid") is None:
            raise AssertionError(f"logging in as {self.username!r} failed")
        return self

    def log_out(self):
        self.get("/chat/")  # a page with the logout form, for the CSRF cookie
        import urllib.parse

        data = urllib.parse.urlencode({"csrfmiddlewaretoken": self.cookie("csrftoken")})
        with self.opener.open(self._form("/accounts/logout/", data), timeout=10):
            pass
        return self

    def headers(self):
        return session_cookie(self.cookie("sessionid"))

    @asynccontextmanager
    async def chat_client(self, room, since=None, **options):
        """chat_client(), with this user's session cookie; the client's `user` is this one."""
        headers = {**self.headers(), **options.pop("additional_headers", {})}
        async with chat_client(self.server, room, since=since, additional_headers=headers,
                               **options) as client:
            client.user = self
            yield client

"""The chat's wire format, and the answers bad input gets.

Both directions use JSON text frames. The client sends {"message": "hello"},
or {"message": "hello", "key": "k1"} to be able to send it again safely; the
server sends each stored message as {"id": 7, "message": "hello"} (with its
"key", if it has one), or {"error": "..."} when a frame breaks the rules
below. A bad frame never closes the connection.

The client may ask for what it missed: /ws/chat/<room>/?since=7 sends every
message after 7 first. Without since, the last HISTORY_LENGTH messages.
"""
import json
import re
from urllib.parse import parse_qs

# Room names are limited to what a channel-layer group name may contain
# (ASCII letters, digits, "-", "_" and "."), so that every room can become a
# group in step 3. "." and ".." are refused: a browser reads them as "this
# folder" and "the folder above", so no page could open those rooms. Both
# urls.py and routing.py use this pattern, with "/" right after it.
ROOM_NAME_PATTERN = r"(?!\.\.?/)[A-Za-z0-9_.-]{1,80}"

MAX_MESSAGE_LENGTH = 1000  # characters; longer messages are refused, not cut

# The longest valid frame: every character escaped, in the worst case as
# \ud83d\ude00 (twelve characters for one emoji), plus the JSON around it.
# Longer frames are refused before parsing them.
MAX_FRAME_LENGTH = 12 * MAX_MESSAGE_LENGTH + 100

MAX_KEY_LENGTH = 64  # characters, like a UUID or a random hex string
HISTORY_LENGTH = 50  # messages sent on arrival to a client that gives no since

STORABLE = "(no NUL \\u0000, no lone \\ud800-\\udfff)"  # see storable()


class InvalidMessage(ValueError):
    """A frame the chat does not accept. Its text is sent back to the client,
    with the frame's key if it had one: the client then knows which message
    was refused, and stops sending it."""

    def __init__(self, text, key=None):
        super().__init__(text)
        self.key = key


def parse_message(text_data=None, bytes_data=None):
    """Return (message, key) from a frame, key being None if it has none, or
    raise InvalidMessage."""
    if text_data is None:
        raise InvalidMessage("Binary frames are not supported; send JSON text.")
    if len(text_data) > MAX_FRAME_LENGTH:
        raise InvalidMessage(f"Frame too long (limit {MAX_FRAME_LENGTH} characters).")
    try:
        data = json.loads(text_data)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise InvalidMessage('Frames must be JSON, like {"message": "hi"}.') from None
    if not isinstance(data, dict):
        raise InvalidMessage('Frames must be a JSON object, like {"message": "hi"}.')
    key = data.get("key")
    if key is not None and not (isinstance(key, str) and 0 < len(key) <= MAX_KEY_LENGTH):
        raise InvalidMessage(f'"key" must be a string of 1 to {MAX_KEY_LENGTH} characters.')
    if key is not None and not storable(key):
        raise InvalidMessage(f'"key" must be text {STORABLE}.')
    message = data.get("message")
    if not isinstance(message, str):
        raise InvalidMessage('"message" must be a string.', key)
    if not message.strip():
        raise InvalidMessage('"message" must not be empty.', key)
    if len(message) > MAX_MESSAGE_LENGTH:
        raise InvalidMessage(f'"message" is too long (limit {MAX_MESSAGE_LENGTH}).', key)
    if not storable(message):
        raise InvalidMessage(f'"message" must be text {STORABLE}.', key)
    return message, key


def storable(text):
    """Whether every database can store the text, and every frame carry it."""
    try:
        # JSON may escape half of an emoji alone ("\ud800"): not text, and
        # nothing a text frame or the channel layer can carry on.
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    # JSON may also carry the NUL character ("\u0000"). SQLite would store it,
    # but PostgreSQL's text columns cannot hold it (psycopg raises DataError):
    # refused on every database, so that the chat behaves the same on each.
    return "\x00" not in text


def parse_since(query_string):
    """The number in ?since=<number>, or None without one; raise InvalidMessage
    unless it is a whole number from 0 up (at most 18 digits: it must fit the
    database's 64-bit integers)."""
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("since")
    if values is None:
        return None
    if len(values) != 1 or not re.fullmatch(r"[0-9]{1,18}", values[0]):
        raise InvalidMessage('"since" must be the id of a message: a whole number, 0 or more.')
    return int(values[0])

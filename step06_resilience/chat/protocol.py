"""The chat's wire format, and the answers bad input gets.

Both directions use JSON text frames. The client sends {"message": "hello"};
the server sends {"message": "hello"} back, or {"error": "..."} when a frame
breaks the rules below. A bad frame never closes the connection.
"""
import json

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


class InvalidMessage(ValueError):
    """A frame the chat does not accept. Its text is sent back to the client."""


def parse_message(text_data=None, bytes_data=None):
    """Return the chat message that a frame carries, or raise InvalidMessage."""
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
    message = data.get("message")
    if not isinstance(message, str):
        raise InvalidMessage('"message" must be a string.')
    if not message.strip():
        raise InvalidMessage('"message" must not be empty.')
    if len(message) > MAX_MESSAGE_LENGTH:
        raise InvalidMessage(f'"message" is too long (limit {MAX_MESSAGE_LENGTH}).')
    try:
        # JSON may escape half of an emoji alone ("\ud800"): not text, and
        # nothing a text frame or the channel layer can carry on.
        message.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMessage('"message" must be text (no lone \\ud800-\\udfff).') from None
    return message

"""The chat's wire format, and the answers bad input gets.

Both directions use JSON text frames. The client sends {"message": "hello"};
the server sends {"message": "hello"} back, or {"error": "..."} when a frame
breaks the rules below. A bad frame never closes the connection.
"""
import json

# Room names are limited to what a channel-layer group name may contain
# (ASCII letters, digits, "-", "_" and "."), so that every room can become a
# group in step 3. Both urls.py and routing.py use this pattern.
ROOM_NAME_PATTERN = r"[A-Za-z0-9_.-]{1,80}"

MAX_MESSAGE_LENGTH = 1000  # characters; longer messages are refused, not cut

# Room for a full message with every character escaped as \uXXXX (six
# characters) plus the JSON around it; longer frames are refused before parsing.
# (A character beyond U+FFFF escaped as two \uXXXX takes twelve; browsers'
# JSON.stringify escapes none, so a frame from the chat page is far shorter.)
MAX_FRAME_LENGTH = 6 * MAX_MESSAGE_LENGTH + 100


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
    return message

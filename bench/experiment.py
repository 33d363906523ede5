"""The serialise-once experiment, on copies of the steps (never the steps).

step03 and step04 encode a group message to JSON in chat_message(), that is
once per receiver. A copy can encode it once in receive() and let
chat_message() forward the text as it is. `python -m bench --experiment`
measures both side by side.
"""
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

# What changes in chat/consumers.py: (the step's code, the copy's code).
CHANGES = [
    (
        '{"type": "chat.message", "message": message}',
        '{"type": "chat.message", "text": json.dumps({"message": message})}',
    ),
    (
        'await self.send(text_data=json.dumps({"message": event["message"]}))',
        'await self.send(text_data=event["text"])',
    ),
]


@contextmanager
def serialise_once_copy(step_folder):
    """Yield a temporary copy of a step folder whose consumer serialises once."""
    with tempfile.TemporaryDirectory(prefix="bench-serialise-once-") as parent:
        copy = Path(parent) / Path(step_folder).name
        shutil.copytree(
            step_folder, copy, ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__")
        )
        consumers = copy / "chat" / "consumers.py"
        code = consumers.read_text()
        for old, new in CHANGES:
            if code.count(old) != 1:
                raise RuntimeError(f"{consumers}: expected this once: {old}")
            code = code.replace(old, new)
        consumers.write_text(code)
        yield copy

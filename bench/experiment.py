"""Experiments on copies of the steps (never the steps).

Serialise once: step03 and step04 encode a group message to JSON in
chat_message(), that is once per receiver. A copy can encode it once in
receive() and let chat_message() forward the text as it is.
`python -m bench --experiment` measures both side by side.

Let the pop finish: a copy of step04 whose channel layer, when a receive is
cancelled while its BZPOPMIN is in flight, lets the pop finish and hands it,
with the message it brings, to the next receive, instead of dropping the
connection with the message in it. `python -m bench.realuse
--let-the-pop-finish` runs the churn probe on it: if it loses nothing where
step04 loses messages, the cancelled read is the cause.
"""
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from workshop.steps import step_folder

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


# Step 5's answer to the problem (its mysite/layers.py), tried on step 4.
POP_FINISHING_LAYER = step_folder(5) / "mysite" / "layers.py"


@contextmanager
def pop_finishing_copy(step_folder):
    """Yield a temporary copy of step04 on step 5's layer (mysite/layers.py)."""
    with tempfile.TemporaryDirectory(prefix="bench-pop-finishing-") as parent:
        copy = Path(parent) / Path(step_folder).name
        shutil.copytree(
            step_folder, copy, ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__")
        )
        shutil.copy(POP_FINISHING_LAYER, copy / "mysite" / "layers.py")
        settings = copy / "mysite" / "settings.py"
        old = '"BACKEND": "channels_redis.core.RedisChannelLayer",'
        code = settings.read_text()
        if code.count(old) != 1:
            raise RuntimeError(f"{settings}: expected this once: {old}")
        settings.write_text(code.replace(
            old, '"BACKEND": "mysite.layers.RedisChannelLayer",'
        ))
        yield copy

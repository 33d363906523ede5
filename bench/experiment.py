"""Experiments on copies of the steps (never the steps).

Serialise once: step03 and step04 encode a group message to JSON in
chat_message(), that is once per receiver. A copy can encode it once in
receive() and let chat_message() forward the text as it is.
`python -m bench --experiment serialise-once` measures both side by side.

Step 5's two tunings, each taken out of a copy: its consumer's dispatch(),
which sends room messages straight to chat_message() instead of making the
database check that Channels' dispatch() makes before every handler; and the
gc.freeze() at the end of its asgi.py, which keeps the garbage collector's
full passes short. `python -m bench --experiment tuning` measures step05
beside copies without one or both, and the floor.

Let the pop finish: a copy of step04 whose channel layer, when a receive is
cancelled while its BZPOPMIN is in flight, lets the pop finish and hands it,
with the message it brings, to the next receive, instead of dropping the
connection with the message in it. `python -m bench.realuse
step04_redis_backend --churn 30 --let-the-pop-finish` runs the churn probe on
it: if it loses nothing where step04 loses messages, the cancelled read is the
cause.
"""
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from workshop.steps import step_folder


@contextmanager
def step_copy(folder, prefix):
    """Yield a temporary copy of a step folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{prefix}-") as parent:
        copy = Path(parent) / Path(folder).name
        shutil.copytree(
            folder, copy, ignore=shutil.ignore_patterns("db.sqlite3", "__pycache__", "staticfiles")
        )
        yield copy


def replace_once(path, old, new):
    """Replace `old` (text, or a compiled pattern) by `new` in a copied file,
    where `old` must appear exactly once."""
    pattern = old if isinstance(old, re.Pattern) else re.compile(re.escape(old))
    code = path.read_text()
    found = len(pattern.findall(code))
    if found != 1:
        raise RuntimeError(f"{path}: expected this once, found it {found} times: {old}")
    path.write_text(pattern.sub(lambda match: new, code))


# What changes in chat/consumers.py: (the step's code, the copy's code).
SERIALISE_ONCE = [
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
def serialise_once_copy(folder):
    """Yield a temporary copy of a step folder whose consumer serialises once."""
    with step_copy(folder, "serialise-once") as copy:
        for old, new in SERIALISE_ONCE:
            replace_once(copy / "chat" / "consumers.py", old, new)
        yield copy


# Step 5's tunings: where each is, and its code (up to the next method, for dispatch()).
TUNINGS = {
    "dispatch": ("chat/consumers.py", re.compile(
        r"    async def dispatch\(self, message\):\n.*?\n\n(?=    async def )", re.S)),
    "freeze": ("mysite/asgi.py", "gc.freeze()\n"),
}


@contextmanager
def without_tunings(folder, *names):
    """Yield a temporary copy of step05 without the named tunings ("dispatch":
    room messages then get Channels' database check too; "freeze": no gc.freeze())."""
    with step_copy(folder, "without-" + "-".join(names)) as copy:
        for name in names:
            path, code = TUNINGS[name]
            replace_once(copy / path, code, "")
        yield copy


# Step 6's answer to the problem (its mysite/layers.py), tried on step 4.
POP_FINISHING_LAYER = step_folder(6) / "mysite" / "layers.py"


@contextmanager
def pop_finishing_copy(folder):
    """Yield a temporary copy of step04 on step 6's layer (mysite/layers.py)."""
    with step_copy(folder, "pop-finishing") as copy:
        shutil.copy(POP_FINISHING_LAYER, copy / "mysite" / "layers.py")
        replace_once(
            copy / "mysite" / "settings.py",
            '"BACKEND": "channels_redis.core.RedisChannelLayer",',
            '"BACKEND": "mysite.layers.RedisChannelLayer",',
        )
        yield copy

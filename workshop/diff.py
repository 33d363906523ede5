"""What changed between two steps, or between your own project and a step.

    python -m workshop.diff 2 3          step 2 -> step 3    (make diff FROM=2 TO=3)
    python -m workshop.diff mywork 3     your folder -> step 3 (make diff FROM=mywork TO=3)

FROM and TO are each a step number (0-4, 0 being step00_start) or a project folder (one with a
manage.py). Only the lesson's files are compared: databases, caches, compiled
Python, hidden files and README.md files (prose about a step, not its code)
are left out. The slides show their diffs with this module too, so the
projector and `make diff` always agree.
"""
import argparse
import difflib
import fnmatch
import os
import re
import sys
from pathlib import Path

from .steps import LAST_STEP, REPO, STEP_FOLDERS, display

# Made by running or editing the code, not written by the lesson.
IGNORED = [
    "__pycache__", "*.pyc", "*.pyo",
    "db.sqlite3", "*.sqlite3-journal", "*.sqlite3-wal", "*.sqlite3-shm",
    "staticfiles",  # what collectstatic gathers (steps 5 on)
    ".*",  # .DS_Store, .idea, .vscode, editor swap files
    "*~", "*.log",
    "README.md",
]


class NotAProject(ValueError):
    """FROM or TO names neither a step nor a project folder."""


def resolve(name):
    """The folder that a step number ("3", "step3") or a folder path names."""
    step = re.fullmatch(r"(?:step)?0?([0-9])", name.strip())
    if step:
        number = int(step.group(1))
        if number not in STEP_FOLDERS:
            raise NotAProject(f"there is no step {number}: the steps are 0 (the start) to {LAST_STEP}")
        return REPO / STEP_FOLDERS[number]
    if not name.strip():
        raise NotAProject(f"a step (0-{LAST_STEP}) or a folder is needed")
    for folder in (Path(name), REPO / name):
        if (folder / "manage.py").is_file():
            return folder.resolve()
    if Path(name).is_dir():
        raise NotAProject(f"{name} has no manage.py: it is not a project folder")
    raise NotAProject(f"{name!r} is neither a step (0-{LAST_STEP}) nor a folder")


def lesson_files(folder):
    """The folder's files that the lesson wrote, as sorted POSIX paths relative to it."""
    found = []
    for root, dirs, files in os.walk(folder):
        # Pruning here keeps os.walk out of caches and hidden folders.
        dirs[:] = sorted(d for d in dirs if not is_ignored(d))
        for name in files:
            if not is_ignored(name):
                found.append((Path(root) / name).relative_to(folder).as_posix())
    return sorted(found)


def is_ignored(name):
    return any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED)


def read_lines(path):
    """The file's lines, or None if it is not text."""
    try:
        return path.read_text(encoding="utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def file_diff(old_folder, new_folder, path, context=3):
    """Unified diff lines (without newlines) of one file between two folders.

    A file missing on one side counts as empty there, so it shows as wholly
    added or removed. Empty when the file is the same on both sides.
    """
    old, new = old_folder / path, new_folder / path
    old_lines = read_lines(old) if old.exists() else []
    new_lines = read_lines(new) if new.exists() else []
    old_label = f"{display(old_folder)}/{path}" if old.exists() else "/dev/null"
    new_label = f"{display(new_folder)}/{path}" if new.exists() else "/dev/null"
    if old_lines is None or new_lines is None:
        if old.exists() and new.exists() and old.read_bytes() == new.read_bytes():
            return []
        return [f"Binary files {old_label} and {new_label} differ"]
    lines = difflib.unified_diff(old_lines, new_lines, old_label, new_label, n=context)
    return [line.rstrip("\n") for line in lines]


def folder_diff(old_folder, new_folder, context=3):
    """{path: diff lines} for every lesson file that differs, in path order."""
    paths = sorted(set(lesson_files(old_folder)) | set(lesson_files(new_folder)))
    diffs = {path: file_diff(old_folder, new_folder, path, context) for path in paths}
    return {path: lines for path, lines in diffs.items() if lines}


def summary(diffs):
    """One line per changed file, with its counts of added and removed lines."""
    width = max(map(len, diffs), default=0)
    lines = []
    for path, diff in diffs.items():
        body = diff[2:]  # after the ---/+++ header
        added = sum(1 for line in body if line.startswith("+"))
        removed = sum(1 for line in body if line.startswith("-"))
        lines.append(f"  {path:<{width}}  +{added} -{removed}")
    return lines


# ANSI colours, as git uses them, for a terminal (and the projector).
COLOURS = {"+": "\033[32m", "-": "\033[31m", "@": "\033[36m", "header": "\033[1m"}
RESET = "\033[0m"


def colour(line):
    if line.startswith(("---", "+++", "Binary files")):
        return COLOURS["header"] + line + RESET
    if line[:1] in COLOURS:
        return COLOURS[line[:1]] + line + RESET
    return line


def wants_colour(choice, stream):
    if choice == "auto":
        plain = "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb"
        return stream.isatty() and not plain
    return choice == "always"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m workshop.diff", description=__doc__.splitlines()[0]
    )
    parser.add_argument("old", metavar="FROM", help=f"a step (0-{LAST_STEP}) or a project folder")
    parser.add_argument("new", metavar="TO", help=f"a step (0-{LAST_STEP}) or a project folder")
    parser.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    parser.add_argument("-U", "--context", type=int, default=3, metavar="N",
                        help="lines of context around each change (default 3)")
    args = parser.parse_args(argv)
    try:
        old, new = resolve(args.old), resolve(args.new)
    except NotAProject as error:
        print(f"diff: {error}", file=sys.stderr)
        return 2

    diffs = folder_diff(old, new, args.context)
    if not diffs:
        print(f"{display(old)} and {display(new)}: no differences in the lesson's files.")
        return 0
    paint = colour if wants_colour(args.color, sys.stdout) else str
    count = f"{len(diffs)} file{'s' if len(diffs) > 1 else ''} changed"
    print(f"{display(old)} -> {display(new)}: {count}")
    print("\n".join(summary(diffs)))
    for lines in diffs.values():
        print()
        print("\n".join(map(paint, lines)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        # The reader left early (make diff | head): not an error. Point stdout
        # at devnull so Python's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

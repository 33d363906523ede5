"""Run the notebooks in notebooks/ from top to bottom, each in a fresh kernel.

    python -m workshop.notebooks               run them all, save fresh outputs (make notebooks-run)
    python -m workshop.notebooks 03            only the notebooks whose name starts with 03
    python -m workshop.notebooks --check       run them, save nothing (what the tests do)

The notebooks are committed with their outputs, so they read well on a code
host and the slides can take their plots from them. This is how those
outputs are made: every number in them was measured by the run that saved it.
"""
import argparse
import sys
import time

import nbformat
from nbclient import NotebookClient

from .steps import REPO

NOTEBOOKS = REPO / "notebooks"
CELL_TIMEOUT = 120  # seconds; the slowest cell (notebook 03's sweep) needs about 15


def notebook_paths(prefix=""):
    """The numbered notebooks, in reading order."""
    return sorted(NOTEBOOKS.glob(f"{prefix}*.ipynb"))


def execute(path, timeout=CELL_TIMEOUT):
    """Run a notebook in a fresh kernel, working directory notebooks/.

    Returns the executed notebook, in memory only. Raises
    nbclient.exceptions.CellExecutionError at the first cell that fails.
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        # No per-cell timestamps in the saved file: they change on every run
        # and say nothing to a reader. One output per stream, not one per print().
        record_timing=False,
        coalesce_streams=True,
        # Quiet the kernel's own start-up warnings (it listens on 127.0.0.1 only).
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    client.execute()
    return notebook


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", nargs="?", default="", help="e.g. 03")
    parser.add_argument("--check", action="store_true", help="run only, save nothing")
    args = parser.parse_args(argv)
    paths = notebook_paths(args.prefix)
    if not paths:
        print(f"No notebook in notebooks/ starts with {args.prefix!r}.", file=sys.stderr)
        return 1
    for path in paths:
        start = time.perf_counter()
        print(f"{path.name} ...", end=" ", flush=True)
        notebook = execute(path)
        if not args.check:
            nbformat.write(notebook, path)
        size = f", {path.stat().st_size // 1024} KB" if not args.check else ""
        print(f"ok in {time.perf_counter() - start:.0f} s{size}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

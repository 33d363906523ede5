"""Sphinx directives that put the repository's own code and plots on the slides.

    ```{step-file} 1 chat/consumers.py
    :pyobject: ChatConsumer
    ```
        A file of a step folder, with every option of literalinclude
        (pyobject, start-at, end-before, emphasize-lines, ...). Its caption
        names the file.

    ```{step-diff} 2 3 chat/consumers.py
    :containing: group_send
    ```
        What changed in one file between two steps, computed by workshop.diff
        (the same code as `make diff`). For long diffs, show part of it:
        :containing: only the hunks with this text; :hunks: only these hunks
        (1, 2-4, 5-); :context: lines around each change (default 3).

    ```{readme-code} 3 sync-consumer
    ```
        The code block that follows `<!-- code: sync-consumer -->` in step 3's
        README: code a README shows without it being a step's file.
        :start-at: and :end-before: (text) show part of it.

    ```{notebook-figure} notebooks/01_sync_vs_async.ipynb
    :tag: figure-sync-vs-async
    ```
        The PNG output of the notebook cell with that tag, embedded in the
        deck, or a placeholder that says which notebook to run.

Everything is read when the deck is built, so a slide cannot show code or a
plot that the repository does not have. Paths are relative to the repository.
"""
import base64
import html
import os
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.directives.code import LiteralInclude, container_wrapper
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.writers.html5 import HTML5Translator
from sphinx_revealjs.writers import RevealjsSlideTranslator

from workshop.diff import file_diff
from workshop.steps import LAST_STEP, REPO, STEP_FOLDERS, display, readme_code

logger = logging.getLogger(__name__)

LANGUAGES = {".py": "python", ".html": "html+django", ".js": "js", ".txt": "text"}


def step_folder(directive, number):
    """The folder of step `number` ("1" to "4"), or an error on the slide's line."""
    if not number.isdigit() or int(number) not in STEP_FOLDERS:
        raise directive.error(f"{number!r} is not a step: use 1 to {LAST_STEP}")
    return REPO / STEP_FOLDERS[int(number)]


class StepFile(LiteralInclude):
    """literalinclude, addressed by step number and path inside the step."""

    required_arguments = 2
    option_spec = {**LiteralInclude.option_spec, "language": directives.unchanged}

    def run(self):
        step, path = self.arguments
        file = step_folder(self, step) / path
        srcdir = Path(self.env.srcdir)
        # literalinclude reads paths starting with "/" from the source folder.
        self.arguments = ["/" + Path(os.path.relpath(file, srcdir)).as_posix()]
        self.options.setdefault("language", LANGUAGES.get(file.suffix, "text"))
        self.options.setdefault("caption", display(file))
        return super().run()


def hunk_ranges(spec):
    """[(first, last)] hunk numbers from "1,3-4,6-" (last None: to the end), from 1."""
    ranges = []
    for part in spec.split(","):
        first, dash, last = part.strip().partition("-")
        if not dash:
            ranges.append((int(first), int(first)))
        else:
            ranges.append((int(first), int(last) if last else None))
    return ranges


def select_hunks(lines, numbers=None, containing=None):
    """The diff's hunks (after its ---/+++ header) chosen by number and by text."""
    hunks = []
    for line in lines[2:]:
        if line.startswith("@@"):
            hunks.append([])
        hunks[-1].append(line)
    ranges = hunk_ranges(numbers) if numbers else [(1, None)]
    selected = []
    for number, hunk in enumerate(hunks, start=1):
        if not any(first <= number <= (last or len(hunks)) for first, last in ranges):
            continue
        if containing and not any(containing in line for line in hunk):
            continue
        selected.extend(hunk)
    return selected


class StepDiff(SphinxDirective):
    """A unified diff of one file between two steps (without its file header)."""

    required_arguments = 3
    option_spec = {
        "context": directives.nonnegative_int,
        "hunks": directives.unchanged,
        "containing": directives.unchanged,
    }

    def run(self):
        old_step, new_step, path = self.arguments
        old, new = step_folder(self, old_step), step_folder(self, new_step)
        for folder in (old, new):
            self.env.note_dependency(str(folder / path))
        lines = file_diff(old, new, path, self.options.get("context", 3))
        if not lines:
            raise self.error(f"{path} is the same in steps {old_step} and {new_step}")
        shown = select_hunks(lines, self.options.get("hunks"), self.options.get("containing"))
        if not shown:
            raise self.error(f"the diff of {path} has no such hunk: {self.options}")
        code = "\n".join(shown)
        block = nodes.literal_block(code, code, language="diff")
        self.set_source_info(block)
        caption = f"{path}, step {int(old_step)} → step {int(new_step)}"
        return [container_wrapper(self, block, caption)]


class ReadmeCode(SphinxDirective):
    """A code block of a step's README, found by its `<!-- code: NAME -->` marker."""

    required_arguments = 2
    option_spec = {
        "language": directives.unchanged,
        "start-at": directives.unchanged,
        "end-before": directives.unchanged,
    }

    def run(self):
        step, name = self.arguments
        readme = step_folder(self, step) / "README.md"
        self.env.note_dependency(str(readme))
        try:
            code = readme_code(int(step), name)
        except LookupError as why:
            raise self.error(str(why)) from None
        for option, keep_from in (("start-at", True), ("end-before", False)):
            text = self.options.get(option)
            if text is None:
                continue
            if text not in code:
                raise self.error(f"the {name} block of {display(readme)} has no {text!r}")
            before, found, after = code.partition(text)
            code = found + after if keep_from else before
        code = code.strip("\n")
        block = nodes.literal_block(code, code, language=self.options.get("language", "python"))
        self.set_source_info(block)
        return [container_wrapper(self, block, f"{display(readme)}: {name}")]


class FigureMissing(Exception):
    """Why a notebook has no plot to show yet."""


def notebook_png(notebook, tag):
    """The PNG (bytes) in the output of the notebook's cell tagged `tag`.

    Raises FigureMissing, saying what to do, when the notebook, the cell or
    its output is not there yet.
    """
    import nbformat

    shown = display(notebook)
    if not notebook.is_file():
        raise FigureMissing(f"{shown} does not exist yet.")
    cells = [
        cell for cell in nbformat.read(notebook, as_version=4).cells
        if tag in cell.get("metadata", {}).get("tags", [])
    ]
    if not cells:
        raise FigureMissing(f"No cell of {shown} has the tag {tag}.")
    for output in cells[0].get("outputs", []):
        png = output.get("data", {}).get("image/png")
        if png:
            # Notebooks store images as base64, sometimes split over lines.
            return base64.b64decode("".join(png) if isinstance(png, list) else png)
    raise FigureMissing(f"The cell tagged {tag} in {shown} has no PNG output: "
                        "run the notebook and save it with its outputs.")


class NotebookFigure(SphinxDirective):
    """The plot a notebook measured, embedded in the page (data: URI, no file)."""

    required_arguments = 1
    option_spec = {"tag": directives.unchanged_required, "alt": directives.unchanged}

    def run(self):
        notebook = REPO / self.arguments[0]
        tag = self.options["tag"]
        self.env.note_dependency(str(notebook))
        try:
            png = notebook_png(notebook, tag)
        except FigureMissing as why:
            logger.info(f"notebook-figure: placeholder for {tag} ({why})")
            markup = (
                f'<div class="figure-placeholder" data-tag="{html.escape(tag)}">'
                f"<p>The measured plot goes here.</p><p>{html.escape(str(why))}</p>"
                f"<p>Run <code>{html.escape(self.arguments[0])}</code>, save it, "
                "then <code>make slides</code> again.</p></div>"
            )
        else:
            source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            alt = html.escape(self.options.get("alt", tag), quote=True)
            markup = (
                f'<figure class="notebook-figure" data-tag="{html.escape(tag)}">'
                f'<img src="{source}" alt="{alt}">'
                f"<figcaption>Measured in {html.escape(self.arguments[0])}</figcaption>"
                "</figure>"
            )
        return [nodes.raw("", markup, format="html")]


class SlideTranslator(RevealjsSlideTranslator):
    """sphinx-revealjs's HTML, but code coloured by Pygments when the deck is built.

    sphinx-revealjs leaves code to reveal.js's highlight.js plugin, in the
    browser. Colouring at build time needs no JavaScript, and the page holds
    the code exactly as the file has it (tests/tooling/test_slides.py reads it).
    """

    visit_literal_block = HTML5Translator.visit_literal_block
    depart_literal_block = HTML5Translator.depart_literal_block


def setup(app):
    app.set_translator("revealjs", SlideTranslator, override=True)
    app.add_directive("step-file", StepFile)
    app.add_directive("step-diff", StepDiff)
    app.add_directive("readme-code", ReadmeCode)
    app.add_directive("notebook-figure", NotebookFigure)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""The slides: they build, show the steps' own code and the notebooks' plots, work offline.

The deck is built once, into a temporary folder, with the command `make slides`
runs. The browser tests need Chromium; in CI they must run, never skip.
"""
import base64
import html
import io
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import nbformat
import pytest

from workshop.steps import REPO, STEPS, readme_code, step_folder

SLIDES = REPO / "slides"
sys.path.insert(0, str(SLIDES / "_ext"))
from workshop_slides import FigureMissing, notebook_png  # noqa: E402

SECTIONS = [
    "The plan",
    "Why real time",
    "Sync and async",
    "Channels’ building blocks",  # MyST makes the apostrophe typographic
    "Step 1: a synchronous consumer",
    "Step 2: the same consumer, asynchronous",
    "Step 3: rooms, through a channel layer",
    "Step 4: the channel layer on Redis",
    "Several servers, one Redis",
    "Step 5: run it like production",
    "Step 6: when a dependency fails",
    "Step 7: a chat that loses nothing",
    "Step 8: who said it",
    "Where to go next",
]
FIGURES = {
    "figure-sync-vs-async": REPO / "notebooks" / "01_sync_vs_async.ipynb",
    "figure-consumers-under-load":
        REPO / "notebooks" / "03_sync_and_async_consumers_under_load.ipynb",
}
# A tiny valid PNG (1x1 pixel), for notebooks made up by the tests.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)


def build(source, out):
    """Build a deck as `make slides` does; fail with Sphinx's own words."""
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "revealjs", "-E", "-W", "--keep-going",
         "-q", str(source), str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return (out / "index.html").read_text()


@pytest.fixture(scope="module")
def deck(tmp_path_factory):
    """(the built folder, the text of its index.html)."""
    out = tmp_path_factory.mktemp("slides")
    return out, build(SLIDES, out)


# --- What the deck contains --------------------------------------------------

def test_the_deck_has_the_talks_sections_in_order(deck):
    _, page = deck
    assert re.search(r"<h1>Real-time Django with Channels</h1>", page)
    headings = [html.unescape(text) for text in re.findall(r"<h2>(.*?)</h2>", page)]
    assert headings == SECTIONS


def test_slides_have_speaker_notes_and_the_notes_plugin(deck):
    _, page = deck
    assert page.count('<aside class="notes">') >= 20
    assert "plugin/notes/notes.js" in page


# A block of code as Sphinx writes it: an optional caption, then the code.
CODE_BLOCK = re.compile(
    r'(?:<span class="caption-text">(?P<caption>[^<]*)</span></div>\s*)?'
    r'<div class="highlight-(?P<language>[\w+-]+) notranslate"><div class="highlight">'
    r"<pre>(?P<code>.*?)</pre>",
    re.S,
)


def code_blocks(page):
    """[(caption or None, language, the code as plain text)] in slide order."""
    return [
        (
            html.unescape(block["caption"]) if block["caption"] else None,
            block["language"],
            html.unescape(re.sub(r"<[^>]+>", "", block["code"])).rstrip("\n"),
        )
        for block in CODE_BLOCK.finditer(page)
    ]


def test_every_code_block_on_a_slide_was_read_from_the_repository(deck):
    _, page = deck
    blocks = code_blocks(page)
    source = (SLIDES / "index.md").read_text()
    included = len(re.findall(r"^```\{(?:step-file|step-diff|readme-code)\}", source, re.M))
    assert len([b for b in blocks if b[0]]) == included >= 10
    for caption, language, code in blocks:
        if language == "diff":
            check_diff(caption, code)
        elif language in ("python", "js", "html+django", "nginx"):
            check_excerpt(caption, code)
        elif language == "console":
            check_commands(code)
        else:  # hand-drawn diagrams: nothing to compare them with
            assert language == "text" and caption is None, (language, caption, code)


def check_excerpt(caption, code):
    """The block is a run of whole, consecutive lines of the file its caption names."""
    assert caption, f"code without a caption naming its file:\n{code}"
    readme_block = re.fullmatch(r"step0(\d)_\w+/README\.md: ([\w-]+)", caption)
    if readme_block:  # {readme-code}: a code block of a step's README
        step, name = readme_block.groups()
        lines = readme_code(int(step), name).splitlines()
    else:
        lines = (REPO / caption).read_text().splitlines()
    block = code.splitlines()
    assert any(
        lines[start:start + len(block)] == block for start in range(len(lines))
    ), f"not found in {caption}:\n{code}"


HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@$")


def check_diff(caption, code):
    """Each hunk's old and new lines are at the lines it claims, in each step's file."""
    path, old_step, new_step = re.fullmatch(r"(\S+), step (\d) → step (\d)", caption).groups()
    old_file = read_step_file(old_step, path)
    new_file = read_step_file(new_step, path)
    hunks = re.split(r"^(?=@@ )", code, flags=re.M)
    assert hunks[0] == "" and len(hunks) > 1, f"not a diff of hunks:\n{code}"
    for hunk in hunks[1:]:
        header, *body = hunk.rstrip("\n").split("\n")
        old_start, old_count, new_start, new_count = HUNK.match(header).groups()
        old = [line[1:] for line in body if line[:1] in (" ", "-")]
        new = [line[1:] for line in body if line[:1] in (" ", "+")]
        assert all(line[:1] in (" ", "-", "+") for line in body), hunk
        assert side(old_file, old_start, old_count) == old, f"{caption}, old side:\n{hunk}"
        assert side(new_file, new_start, new_count) == new, f"{caption}, new side:\n{hunk}"


def read_step_file(step, path):
    return (step_folder(int(step)) / path).read_text().splitlines()


def side(lines, start, count):
    """The lines a hunk header names (unified diff counts from 1; a count of 0 is empty)."""
    count = 1 if count is None else int(count)
    first = int(start) - 1 if count else int(start)
    return lines[first:first + count]


def make_targets():
    """The Makefile's targets, its pattern rules (step%-nginx) made for each step."""
    text = (REPO / "Makefile").read_text()
    names = set(re.findall(r"^([a-z0-9%][a-z0-9%-]*):", text, re.M))
    return {name.replace("%", str(n)) for name in names for n in STEPS}


def check_commands(code):
    """Shell lines on the slides are `make` commands the Makefile has."""
    targets = make_targets()
    for line in code.splitlines():
        assert line.startswith("$ make "), f"not a make command: {line}"
        target = [word for word in line.split()[2:] if "=" not in word][0]
        assert target in targets, f"the Makefile has no target {target!r}: {line}"


def test_each_measured_plot_is_the_notebooks_or_a_placeholder_naming_it(deck):
    _, page = deck
    for tag, notebook in FIGURES.items():
        try:
            png = notebook_png(notebook, tag)
        except FigureMissing:
            placeholder = re.search(
                rf'<div class="figure-placeholder" data-tag="{tag}">(.*?)</div>', page, re.S
            )
            assert placeholder and notebook.name in placeholder.group(1)
        else:
            embedded = re.search(
                rf'<figure class="notebook-figure" data-tag="{tag}">'
                r'<img src="data:image/png;base64,([^"]+)"', page,
            )
            assert embedded and base64.b64decode(embedded.group(1)) == png


# --- Plots from notebooks, without the real notebooks --------------------------

def notebook_with(path, cells):
    notebook = nbformat.v4.new_notebook(cells=cells)
    nbformat.write(notebook, path)
    return path


def plot_cell(tag, png=PNG):
    cell = nbformat.v4.new_code_cell("plot()", metadata={"tags": [tag]})
    cell.outputs = [nbformat.v4.new_output(
        "display_data", data={"image/png": base64.b64encode(png).decode(), "text/plain": "<Figure>"}
    )]
    return cell


def test_the_plot_is_the_png_output_of_the_tagged_cell(tmp_path):
    path = notebook_with(tmp_path / "n.ipynb", [
        nbformat.v4.new_code_cell("setup()"),
        plot_cell("figure-x"),
    ])
    assert notebook_png(path, "figure-x") == PNG


@pytest.mark.parametrize("problem, cells, says", [
    ("no notebook", None, "does not exist yet"),
    ("no tagged cell", [nbformat.v4.new_code_cell("plot()")], "No cell"),
    ("not run", [nbformat.v4.new_code_cell("plot()", metadata={"tags": ["figure-x"]})],
     "run the notebook"),
])
def test_a_missing_plot_says_what_to_do(tmp_path, problem, cells, says):
    path = tmp_path / "n.ipynb"
    if cells is not None:
        notebook_with(path, cells)
    with pytest.raises(FigureMissing, match=says):
        notebook_png(path, "figure-x")


def test_a_deck_builds_with_a_placeholder_until_the_notebook_exists(tmp_path):
    """The same directive and settings as the real deck, on a notebook made here."""
    source = tmp_path / "source"
    shutil.copytree(SLIDES / "_static", source / "_static")
    (source / "conf.py").write_text(
        (SLIDES / "conf.py").read_text().replace(
            "SLIDES = Path(__file__).resolve().parent", f"SLIDES = Path({str(SLIDES)!r})"
        )
    )
    notebook = tmp_path / "later.ipynb"
    (source / "index.md").write_text(
        f"# Title\n\n## Plot\n\n```{{notebook-figure}} {notebook}\n:tag: figure-x\n```\n"
    )
    page = build(source, tmp_path / "before")
    assert 'class="figure-placeholder"' in page and "later.ipynb" in page
    assert "does not exist yet" in page

    notebook_with(notebook, [plot_cell("figure-x")])
    page = build(source, tmp_path / "after")
    assert "figure-placeholder" not in page
    assert "data:image/png;base64," + base64.b64encode(PNG).decode() in page


# --- Offline -----------------------------------------------------------------------

class ResourceLinks(HTMLParser):
    """Every URL that the page itself loads: src attributes and <link href>."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])


REMOTE = re.compile(r"^(https?:)?//", re.I)
CSS_URL = re.compile(r"""(?:url\(\s*|@import\s+)["']?([^"')\s;]+)""", re.I)


def test_the_built_deck_loads_nothing_from_the_network(deck):
    out, page = deck
    parser = ResourceLinks()
    parser.feed(page)
    assert parser.urls, "no resources found: has the page's layout changed?"
    assert [url for url in parser.urls if REMOTE.match(url)] == []
    for url in parser.urls:
        if not url.startswith("data:"):
            assert (out / url.split("?")[0]).is_file(), f"{url} is not in the build"
    # Stylesheets (and the font stylesheets they import) must stay local too.
    for css in out.rglob("*.css"):
        remote = [url for url in CSS_URL.findall(css.read_text(errors="replace"))
                  if REMOTE.match(url)]
        assert remote == [], f"{css.relative_to(out)} loads {remote}"


# --- In a browser ----------------------------------------------------------------

def looks_drawn(png):
    """True if a screenshot shows something: many colours, no single one taking it all."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=image.width * image.height)
    background = max(count for count, _ in colours)
    return len(colours) > 30 and background < 0.97 * image.width * image.height


def test_the_deck_renders_offline_in_a_browser(deck, browser):
    out, _ = deck
    # Refuse every http(s) request: what the deck tries to fetch still shows in
    # its resource timing list, even though nothing leaves the machine.
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
    browser.get((out / "index.html").as_uri())
    browser.execute_script("Reveal.configure({transition: 'none'})")

    title = browser.execute_script("return Reveal.getCurrentSlide().querySelector('h1')")
    assert title is not None and title.text == "Real-time Django with Channels"
    assert looks_drawn(browser.get_screenshot_as_png()), "the title slide is blank"

    shown = browser.execute_script("""
        const slide = document.querySelector('.highlight-python').closest('section');
        const at = Reveal.getIndices(slide);
        Reveal.slide(at.h, at.v);
        return Reveal.getCurrentSlide() === slide;
    """)
    assert shown
    code = browser.execute_script(
        "return Reveal.getCurrentSlide().querySelector('.highlight-python pre')"
    )
    assert code.is_displayed() and "application = ProtocolTypeRouter(" in code.text
    assert looks_drawn(browser.get_screenshot_as_png()), "the code slide is blank"

    # Walk through every slide, then ask the page what it tried to load.
    browser.execute_script("""
        Reveal.slide(0, 0);
        while (!Reveal.isLastSlide()) { Reveal.next(); }
    """)
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    assert [url for url in fetched if REMOTE.match(url)] == []
    fonts = browser.execute_script(
        "return [...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)"
    )
    assert any("Source Sans Pro" in family for family in fonts), fonts

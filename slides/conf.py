"""Sphinx settings for the workshop's slides. Build them with `make slides`."""
import sys
from pathlib import Path

SLIDES = Path(__file__).resolve().parent
# _ext holds the directives that include the steps' code (workshop_slides);
# the repository root makes workshop.diff importable for them.
sys.path[:0] = [str(SLIDES / "_ext"), str(SLIDES.parent)]

project = "Real-time Django with Channels"
author = "The workshop's instructors"
language = "en"

extensions = ["myst_parser", "sphinx_revealjs", "workshop_slides"]
root_doc = "index"
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "README.md"]
html_copy_source = False  # no _sources/ copy of index.md in the deck
myst_enable_extensions = ["colon_fence"]
# A readable palette on a projector; diff lines get their background from
# _static/workshop.css.
pygments_style = "default"

# --- reveal.js (sphinx-revealjs ships it: nothing comes from a CDN) ----------
revealjs_style_theme = "white"  # its font is bundled; some themes load Google Fonts
revealjs_static_path = ["_static"]
# The code's colours (Sphinx writes pygments.css), then our additions.
revealjs_css_files = ["pygments.css", "workshop.css"]
revealjs_script_conf = {
    "width": 1280,
    "height": 720,
    "hash": True,  # the URL follows the slide: a reload stays where you were
    "slideNumber": "c/t",
    "transition": "fade",
    "transitionSpeed": "fast",
}
# S opens the speaker view with the notes; the plugin's files are in the wheel.
revealjs_script_plugins = [{"name": "RevealNotes", "src": "revealjs/plugin/notes/notes.js"}]

"""The course site: ``python -m course site OUT``. Teacher's tooling, not in the student edition.

OUT receives one HTML page per notebook of the student edition, executed at the quick sizes
(``TINYHYDRA_QUICK=1``; the checks print FAIL on the stubs, as a student first sees them), the
syllabus ``docs/course.md`` as ``course.html``, and ``index.html`` linking them. The pages are
nbconvert's, with the maths typeset by **MathJax served from the site itself** (``OUT/mathjax``,
copied from the ``jupyter-server-mathjax`` package, MathJax 2.7), so that they render with no
network: nbconvert's default template would load MathJax and require.js from a CDN.

nbconvert with a local MathJax rather than jupyter-book or mkdocs-material: it is the exporter the
repository already renders with (``scripts/render_notebooks.py``), it needs one small package
more, and it leaves the notebooks as they are (no book configuration, no page front matter).
``scripts/check_site.sh`` loads every page in headless Chromium with the network off.
"""
from __future__ import annotations

import html
import importlib.util
import re
import shutil
import tempfile
from pathlib import Path

from .release import ROOT, release

MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"  # the configs the package ships
# a resource the page would load from elsewhere: src=, <link href=, CSS url(), outside plain links
EXTERNAL = re.compile(r"""(?:\bsrc\s*=\s*["']|<link\b[^>]*\bhref\s*=\s*["']|url\(\s*["']?|import\s*\(\s*["'])\s*"""
                      r"""(?:https?:)?//|["'](?:https?:)?//[^"'\s]+\.(?:m?js|css)(?:\?[^"'\s]*)?["']""", re.IGNORECASE)


def local_mathjax() -> Path:
    """The MathJax 2.7 folder of the jupyter-server-mathjax package."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise SystemExit("the site serves MathJax from the jupyter-server-mathjax package: "
                         "pip install -e '.[notebooks]'") from None
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def external_resources(page: str) -> list[str]:
    """The places in ``page`` where it would load something over the network."""
    return [page[max(0, m.start() - 40): m.end() + 60] for m in EXTERNAL.finditer(page)]


def render(nb) -> str:
    """An executed notebook as one HTML page that loads MathJax from ``mathjax/`` beside it."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(mathjax_url=MATHJAX_URL, require_js_url="", widget_renderer_url="", jquery_url="",
                            mermaid_js_url="", mermaid_layout_elk_js_url="")
    page, _ = exporter.from_notebook_node(nb)
    return page


MATHJAX_CONFIG = ("<script type='text/x-mathjax-config'>MathJax.Hub.Config({tex2jax: "
                  "{inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], processEscapes: true}});</script>")


def _render_notebooks():
    """scripts/render_notebooks.py as a module (a script, not a package): its ``environment``
    serves the site's rendering too."""
    spec = importlib.util.spec_from_file_location("render_notebooks", ROOT / "scripts" / "render_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>\n"
            f"{MATHJAX_CONFIG}\n<script src='{MATHJAX_URL}'></script></head>\n"
            "<body style='max-width: 60em; margin: auto'>\n"
            f"{body}\n</body></html>\n")


def build(out: Path, only: list[str] | None = None) -> list[Path]:
    """Write the site to ``out``; ``only``: notebook stems to render (default: all six)."""
    import mistune

    from .grading import NOTEBOOKS

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(local_mathjax(), out / "mathjax", dirs_exist_ok=True)
    stems = [stem for stem in NOTEBOOKS if only is None or stem in only]
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        edition = Path(tmp) / "edition"
        release(edition)
        for stem in stems:
            nb = _execute(edition, stem)
            written.append(out / f"{stem}.html")
            written[-1].write_text(render(nb), encoding="utf-8")
    syllabus = (ROOT / "docs" / "course.md").read_text(encoding="utf-8")
    (out / "course.html").write_text(_page("The course", mistune.html(syllabus)), encoding="utf-8")
    links = "".join(f"<li><a href='{stem}.html'>{stem}</a></li>" for stem in stems)
    (out / "index.html").write_text(_page("tinyhydra: the course", f"<h1>tinyhydra: the course</h1>\n"
                                          f"<p><a href='course.html'>The syllabus</a></p>\n<ol>{links}</ol>"),
                                    encoding="utf-8")
    return [out / "index.html", out / "course.html", *written]


def _execute(edition: Path, stem: str):
    """The edition's notebook ``stem`` run top to bottom at the quick sizes, its folder as working directory."""
    import nbclient
    import nbformat

    nb = nbformat.read(edition / "notebooks" / f"{stem}.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(edition / "notebooks")}})
    with _render_notebooks().environment(TINYHYDRA_QUICK="1", PYTHONPATH=str(edition),
                                         MPLBACKEND="module://matplotlib_inline.backend_inline"):
        client.execute()
    return nb

"""The course site (``python -m course site OUT``, course/site.py): pages that load nothing over the
network, with MathJax served from the site itself. scripts/check_site.sh loads them in headless
Chromium with the network off and checks that the maths is typeset."""
import pytest

from course import site

pytestmark = pytest.mark.notebooks


def test_a_page_that_loads_from_a_cdn_is_caught():
    page = "<script src='https://cdnjs.cloudflare.com/mathjax.js'></script><link rel=x href=\"//a.b/c.css\">"
    assert len(site.external_resources(page)) == 2
    assert site.external_resources("<a href='https://arxiv.org/abs/2501.01242'>the paper</a>") == []


def test_the_site_loads_nothing_from_the_network(tmp_path):
    pytest.importorskip("nbclient")
    pytest.importorskip("jupyter_server_mathjax")
    written = site.build(tmp_path, only=["02_softmax_attention"])
    assert [p.name for p in written] == ["index.html", "course.html", "02_softmax_attention.html"]
    assert (tmp_path / "mathjax" / "MathJax.js").is_file()
    assert (tmp_path / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    for path in written:
        page = path.read_text()
        assert site.external_resources(page) == [], path.name
        assert site.MATHJAX_URL in page, path.name
    notebook = written[-1].read_text()
    assert "\\mathbb R^{L\\times d}" in notebook and "FAIL causal_mask" in notebook  # maths left for MathJax

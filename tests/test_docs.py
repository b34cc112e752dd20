"""The pages link to what exists: every relative Markdown link of the README, docs/, course/ and
notebooks/ pages names a file or folder of the repository, and a ``#section`` of a Markdown page
names one of its headings (GitHub's anchors)."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "course" / "README.md", ROOT / "notebooks" / "README.md",
                *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = ("http://", "https://", "mailto:")
# pages linked before they are written, and why; an entry whose page exists must be removed
def outside_code(text: str) -> str:
    """The page without its fenced code blocks and inline code spans (no links there)."""
    kept, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces to ``-``; a repeated heading gets ``-1``, ``-2``, ..."""
    found, seen = set(), {}
    fenced = False
    for line in page.read_text().splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        match = None if fenced else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(outside_code(page.read_text()))
            if not target.startswith(EXTERNAL)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_relative_links_point_to_what_exists(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor.lower() not in anchors(file):
            broken.append(f"{target} (no such section)")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_the_link_checker_sees_links_and_anchors(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n## The head-count figure: why H = D\n\n[x](page.md#the-head-count-figure-why-h--d)"
                    " ![y](missing.png) [z](https://example.org)\n```\n[not a link](nowhere.md)\n```\n")
    assert relative_links(page) == ["page.md#the-head-count-figure-why-h--d", "missing.png"]
    assert anchors(page) == {"a-page", "the-head-count-figure-why-h--d"}

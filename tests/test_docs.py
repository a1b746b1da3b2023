"""The README and docs/ hold together: every image they show exists (and stays small), every
relative link and its #anchor resolves, and the README's benchmark table is the one in
docs/benchmarks.md. No browser: the screenshots themselves are made by bench/screenshots.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](image)
MAX_IMAGE_BYTES = 300_000


def links(doc: Path) -> list[tuple[bool, str]]:
    """(is an image, target) of every Markdown link outside code blocks."""
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [(bang == "!", target) for bang, target in LINK.findall(text)]


def anchors(doc: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.DOTALL)
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def relative(target: str) -> bool:
    return not re.match(r"[a-z]+:", target) and not target.startswith("#")


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_image_a_doc_shows_exists_and_is_small(doc):
    images = [target for is_image, target in links(doc) if is_image]
    for target in images:
        path = (doc.parent / target).resolve()
        assert path.is_file(), f"{doc.name} shows {target}, which does not exist: run bench/screenshots.py"
        assert path.stat().st_size < MAX_IMAGE_BYTES, f"{target} is {path.stat().st_size:,} bytes"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_relative_link_resolves_with_its_anchor(doc):
    for _, target in links(doc):
        if not relative(target):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve()
        assert path.exists(), f"{doc.name} links {target}: {file} does not exist"
        if anchor:
            assert anchor in anchors(path), f"{doc.name} links {target}: no such heading in {file}"


def test_readme_and_docs_show_the_app_and_link_every_doc():
    readme = ROOT / "README.md"
    targets = {target for _, target in links(readme)}
    assert any(t.startswith("docs/screenshots/") for t in targets), "the README shows no screenshot of the app"
    for doc in DOCS[1:]:
        assert f"docs/{doc.name}" in targets, f"the README does not link docs/{doc.name}"


def table_rows(text: str, header: str) -> list[str]:
    """The rows of the Markdown table whose header line starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_readme_benchmark_numbers_are_those_of_docs_benchmarks():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    full = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    header = "| measure | ours | the anchor | the goal |"
    shown = table_rows(readme, header)
    assert shown, "the README has no benchmark table"
    assert shown == table_rows(full, header), "the README's benchmark table differs from docs/benchmarks.md's summary"
    for row in shown:  # numbers only: no paragraph in a cell
        assert all(len(cell) <= 120 for cell in row.split("|")), f"a cell of this row is a paragraph: {row}"

"""docs/performance.md is the rendering of the benchmarks' JSON (benchmarks/render_performance.py): numbers are
never typed into the docs by hand, and the prose pages carry no commit hashes or dates."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import render_performance  # noqa: E402


def test_the_performance_page_is_the_rendering_of_the_committed_results():
    assert (REPO / "docs" / "performance.md").read_text() == render_performance.render()


def test_a_changed_result_changes_the_page(tmp_path):
    # the page follows the data: an empty results folder renders every benchmark as not measured
    text = render_performance.render(tmp_path)
    assert text.count("Not measured yet.") == len(render_performance.SECTIONS)


def test_the_prose_pages_carry_no_commit_hash_date_or_path_outside_the_repository():
    pages = [REPO / "README.md", REPO / "config" / "README.md",
             *[p for p in (REPO / "docs").glob("*.md") if p.name != "performance.md"]]
    for page in pages:
        text = page.read_text()
        assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), page
        assert not re.search(r"\bcommits? `?[0-9a-f]{7,40}\b", text), page
        assert "../shared" not in text and "/work/" not in text, page

"""Offline proxy corpora, built from the real installed packages and the real standard library."""

from __future__ import annotations

import ast
import inspect
import re
import shlex
import sys
import textwrap

import pytest

from harness.data import offline_corpora as oc

FENCE_OPEN, FENCE_CLOSE = "```python\n", "\n```"


@pytest.fixture(scope="module")
def packages() -> list[dict]:
    return oc.package_summaries()


@pytest.fixture(scope="module")
def functions() -> list[dict]:
    return oc.stdlib_functions()


def _code(row: dict) -> str:
    out = row["output"]
    assert out.startswith(FENCE_OPEN) and out.endswith(FENCE_CLOSE)
    return out[len(FENCE_OPEN) : -len(FENCE_CLOSE)]


def test_labels_name_the_real_data_sets():
    from harness import benchmarks

    labels = {b.data.name: b.data.proxy_label for b in benchmarks.all_benchmarks() if b.data.proxy_builder}
    assert set(labels) == {"arxiv", "code"}
    assert "ccdv/arxiv-summarization" in labels["arxiv"] and "nvidia/OpenCodeInstruct" in labels["code"]
    assert all(label.startswith("offline proxy:") for label in labels.values())


# --- package summaries -----------------------------------------------------------------------------


def test_packages_deterministic(packages):
    assert oc.package_summaries() == packages


def test_packages_rows_have_arxivs_shape(packages):
    assert len(packages) >= 100
    ids = [r["id"] for r in packages]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len({r["article"] for r in packages}) == len({r["abstract"] for r in packages}) == len(packages)
    assert {i.split(":")[0] for i in ids} == {"pkg", "doc"}
    for r in packages:
        assert set(r) == {"id", "article", "abstract"}
        assert r["id"].startswith(("pkg:", "doc:"))
        words, article_words = len(r["abstract"].split()), len(r["article"].split())
        # A multi-sentence abstract of a longer text, as arXiv's: not a one-line summary.
        assert words >= 40 and len(re.findall(r"[.!?](?:\s|$)", r["abstract"])) >= 2, r["id"]
        assert article_words >= max(100, 8 * words), r["id"]
        code = [line for line in r["article"].splitlines() if line.lstrip("> \t").startswith(("```", "~~~", ">>> "))]
        assert not code, r["id"]  # prose, not code
        # The abstract is not in its article, and links are text.
        assert r["abstract"].splitlines()[0] not in r["article"], r["id"]
        assert "](" not in r["abstract"] and ">`_" not in r["abstract"], r["id"]
        assert "\x00" not in r["article"]


def test_packages_have_arxivs_length_ratio(packages):
    """Long text to a short abstract: the real arXiv sample's median is 32 article words per abstract word."""
    ratios = sorted(len(r["article"].split()) / len(r["abstract"].split()) for r in packages)
    assert 16 <= ratios[len(ratios) // 2] <= 48
    assert sorted(len(r["article"].split()) for r in packages)[len(packages) // 2] >= 1000


def test_packages_read_readmes_and_docstrings(packages):
    import difflib

    by_id = {r["id"]: r for r in packages}
    row = by_id["doc:difflib"]  # the stdlib's own docstrings: the same wherever this Python runs
    paragraphs = [" ".join(p.split()) for p in inspect.getdoc(difflib).split("\n\n")]
    assert row["abstract"].splitlines() == paragraphs[: len(row["abstract"].splitlines())]
    # After the module's own text, the documentation of its classes and functions, as prose.
    member = " ".join(inspect.getdoc(difflib.SequenceMatcher).split("\n\n")[0].split())
    assert member in row["article"].split("\n\n")
    assert "Args:" not in row["article"] and "Parameters\n---" not in row["article"]
    assert any(r["id"].startswith("pkg:") for r in packages)


def test_packages_each_source_file_feeds_one_row(packages):
    """A distribution with a README row owns its modules: none of them is also a docstring row, whose
    abstract would otherwise sit inside the README row's article (a target leaked into an input)."""
    import importlib.metadata

    owners = importlib.metadata.packages_distributions()
    pkg_names = {r["id"][4:] for r in packages if r["id"].startswith("pkg:")}
    for r in packages:
        if r["id"].startswith("doc:"):
            top = r["id"][4:].split(".")[0]
            assert not {oc._normalize_name(d) for d in owners.get(top, [])} & pkg_names, r["id"]
    abstracts = {r["abstract"].splitlines()[0]: r["id"] for r in packages}
    for r in packages:
        leaked = [i for first, i in abstracts.items() if i != r["id"] and first in r["article"]]
        assert len(leaked) <= 1, (r["id"], leaked)  # a family shares a line at most (decontamination drops it)


def test_source_prose_skips_argument_sections(tmp_path):
    source = textwrap.dedent(
        '''
        """Shapes on the plane and what they measure, for drawing programs."""

        def area(width, height):
            """Compute the area of a rectangle from its sides.

            The sides are measured in the same unit, and the area is in that unit squared.

            Args:
                width: the first side, any positive number.
                height: the second side, any positive number.

            Returns:
                The product of the two sides, as a number.
            """

        def _hidden():
            """A private helper that has no place in the documentation at all."""

        class Shape:
            """A shape drawn on the plane, with an area and a perimeter."""

            def grow(self, k):
                """Scale the shape by the factor k in both directions."""
        '''
    )
    path = tmp_path / "shapes.py"
    path.write_text(source, encoding="utf-8")
    members = [
        "Compute the area of a rectangle from its sides.",
        "The sides are measured in the same unit, and the area is in that unit squared.",
        "A shape drawn on the plane, with an area and a perimeter.",
        "Scale the shape by the factor k in both directions.",
    ]
    assert oc._source_prose(path) == ["Shapes on the plane and what they measure, for drawing programs.", *members]
    assert oc._source_prose(path, module_doc=False) == members


def test_packages_length_and_cap(packages):
    longer = oc.package_summaries(min_article_words=1000)
    assert 0 < len(longer) < len(packages)
    assert all(len(r["article"].split()) >= 1000 for r in longer)
    capped = oc.package_summaries(max_rows=10)
    assert len(capped) == 10 and capped == oc.package_summaries(max_rows=10)
    assert all(r in packages for r in capped)
    # The cap spreads over the alphabet instead of keeping the first ten ids.
    assert [r["id"] for r in capped] != [r["id"] for r in packages[:10]]


def test_clean_description_strips_light_markup():
    raw = (
        "# demo\n\n"
        "[![PyPI](https://img.shields.io/pypi/v/demo.svg)](https://pypi.org/project/demo/)\n"
        '<p align="center">\n  <img src="logo.png"\n       alt="logo">\n</p>\n'
        "<!-- a comment -->\n"
        ".. image:: https://example.org/badge.svg\n   :target: https://example.org\n\n"
        "|build| |docs|\n\n"
        "Some <b>real</b> text with a <https://example.org> link.\n\n\n\n"
        "```python\nx = 1 < 2\n```\n"
        "[pypi-badge]: https://img.shields.io/pypi/v/demo.svg\n"
    )
    assert oc._clean_description(raw) == ("# demo\n\nSome real text with a <https://example.org> link.\n\n```python\nx = 1 < 2\n```")


def test_blocks_keep_a_fence_whole():
    text = "Intro line\n```py\nx = 1\n\ny = 2\n```\nAfter.\n\n> ```sh\n> pip install x\n> ```"
    assert oc._blocks(text) == ["Intro line", "```py\nx = 1\n\ny = 2\n```", "After.", "> ```sh\n> pip install x\n> ```"]
    assert [oc._is_code(b) for b in oc._blocks(text)] == [False, True, False, True]


def test_plain_links_keep_their_text():
    assert oc._plain_links("See [the docs](https://x.org/a_(b)) and [ref][1].") == "See the docs and ref."
    assert oc._plain_links("A `wrapper <https://x.org>`_ for **fast** IO.") == "A wrapper for fast IO."


PARAGRAPH = "This library parses things quickly and it does so with very little memory at all."


def test_split_overview_takes_the_first_prose_run():
    text = "\n\n".join(
        [
            "Demo\n====",  # title: dropped
            "A tagline.",  # too short to be prose: dropped
            PARAGRAPH,
            PARAGRAPH.replace("parses", "writes"),
            PARAGRAPH.replace("parses", "reads"),
            "- a list ends the overview",
            PARAGRAPH.replace("parses", "checks"),
        ]
    )
    overview, rest = oc._split_overview(oc._blocks(text))
    assert overview.splitlines() == [PARAGRAPH, PARAGRAPH.replace("parses", "writes"), PARAGRAPH.replace("parses", "reads")]
    assert rest == ["- a list ends the overview", PARAGRAPH.replace("parses", "checks")]
    # One sentence, or too few words, is no overview.
    assert oc._split_overview(oc._blocks(f"{PARAGRAPH}\n\n## Install\n\n{PARAGRAPH}")) is None
    # A docstring's one-line summary opens the run even though it is short.
    docstring = f"Tiny summary.\n\n{PARAGRAPH} {PARAGRAPH} {PARAGRAPH}\n\n::\n\n  code"
    overview, rest = oc._split_overview(oc._blocks(docstring), skip_first=True)
    assert overview.splitlines()[0] == "Tiny summary." and rest == ["::", "  code"]


def test_module_docstring_read_from_the_file_head(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n\nr"""Doc with \\d.\n\n    More."""\nimport os\n')
    assert oc._module_docstring(path) == "Doc with \\d.\n\nMore."
    path.write_text('import os\n"""Not a docstring."""\n')
    assert oc._module_docstring(path) is None
    path.write_text('"""Never closed\n')
    assert oc._module_docstring(path) is None


# --- standard-library functions --------------------------------------------------------------------


def test_functions_deterministic(functions):
    assert oc.stdlib_functions() == functions


def test_functions_rows_well_formed(functions):
    assert len(functions) >= 300
    ids = [r["id"] for r in functions]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert len({r["output"] for r in functions}) == len(functions)
    for r in functions:
        assert set(r) == {"id", "input", "output", "module"}
        assert all(isinstance(v, str) and v.strip() for v in r.values())
        name = r["id"].removeprefix("stdlib:").removeprefix(r["module"] + ".")
        assert r["id"] == f"stdlib:{r['module']}.{name}" and not name.startswith("_")
        parts = r["module"].split(".")
        assert not any(p.startswith("_") for p in parts)
        assert not set(parts) & {"test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip"}
        assert r["input"].startswith(("Write a Python function `", "Write an async Python function `"))
        assert f"`{name}(" in r["input"]


def test_functions_outputs_parse_without_docstring(functions):
    for r in functions:
        code = _code(r)
        tree = ast.parse(code)
        assert len(tree.body) == 1, r["id"]
        fn = tree.body[0]
        assert isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)), r["id"]
        assert r["id"].endswith("." + fn.name)
        assert ast.get_docstring(fn) is None, r["id"]
        assert 3 <= len(code.splitlines()) <= 40, r["id"]


def test_known_functions_present(functions):
    by_id = {r["id"]: r for r in functions}
    for fn, row_id in ((textwrap.dedent, "stdlib:textwrap.dedent"), (shlex.quote, "stdlib:shlex.quote")):
        row = by_id[row_id]
        assert inspect.getdoc(fn) in row["input"]
        assert f"`{fn.__name__}(" in row["input"]
        code = _code(row)
        assert code.startswith(f"def {fn.__name__}(")
        assert inspect.getdoc(fn).splitlines()[0] not in code
    # Comments of the original source survive (the docstring is cut line-wise, not re-printed).
    assert "# Look for the longest leading string" in by_id["stdlib:textwrap.dedent"]["output"]


def test_functions_are_parsed_not_imported(functions):
    # antigravity.geohash is documented, so its module was read; importing it would open a browser.
    assert "stdlib:antigravity.geohash" in {r["id"] for r in functions}
    assert "antigravity" not in sys.modules


def test_functions_filters_and_cap(functions):
    strict = oc.stdlib_functions(min_doc_chars=200, max_lines=10)
    assert 0 < len(strict) < len(functions)
    for r in strict:
        assert len(_code(r).splitlines()) <= 10
    capped = oc.stdlib_functions(max_rows=25)
    assert len(capped) == 25 and all(r in functions for r in capped)
    assert len({r["module"].split(".")[0] for r in capped}) > 5


def test_function_source_fallback_when_docstring_shares_a_line():
    src = 'def f(x):  "Doc string that is long enough."; return x + 1\n'
    node = ast.parse(src).body[0]
    assert oc._function_source(src.splitlines(), node) == "def f(x):\n    return x + 1"
    src = '@deco\ndef g(a, *, b=2):\n    """Doc."""\n\n    # keep me\n    return a\n'
    node = ast.parse(src).body[0]
    assert oc._function_source(src.splitlines(), node) == "@deco\ndef g(a, *, b=2):\n    # keep me\n    return a"

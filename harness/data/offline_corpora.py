"""Offline PROXY corpora: real, deterministic text for a demo when the real data sets cannot be had.

These are NOT the benchmark data sets. They stand in for them only when neither the Hugging Face
hub nor a local copy of the real data is available, so that a demo can still train and evaluate
LoRA adapters on real (human-written) text. Every result produced from them must be labelled with
its declared proxy label (`data.proxy.label` in ``lm_eval_tasks/*.benchmark.yml``), never reported
as an arXiv or OpenCodeInstruct number.

* ``package_summaries`` stands in for ``ccdv/arxiv-summarization`` (``article`` -> ``abstract``):
  installed documentation in the shape of a paper and its abstract. Two kinds of row:

  - ``pkg:<distribution>``: the long description (README) of an installed Python distribution;
  - ``doc:<module>``: the docstring of a standard-library module, or of an installed module whose
    distribution gave no README row (read from the file head, never imported).

  The abstract is the text's own opening overview: its first run of prose paragraphs (a
  docstring's summary line opens it), cut at the paragraph where it reaches 200 words, kept when
  it has at least 40 words and two sentences, one paragraph per line. The article is the text
  after the overview without its code, shell, doctest, table and directive blocks (an arXiv
  article is prose, its math cut to ``@xmath`` placeholders; and the first 256 tokens, all the
  embedded recipe reads, would otherwise often be ``pip install``), then the code's own
  documentation: the prose of the docstrings of the distribution's sources (a ``pkg`` row: each
  file's module docstring, then its public classes, functions and methods; tests, examples and
  vendored copies left out) or of the module's public members (a ``doc`` row), without their
  argument, return and example sections. It is read until the article has 32 words per abstract
  word (the real arXiv sample's median ratio) and kept at 8 or more; what came before the overview
  (title, badges, tagline) is dropped, as an arXiv article carries no title or abstract. A source
  file feeds one row at most: a distribution with a README row owns its modules, so no docstring
  row's abstract sits in a README row's article. The metadata's one-line ``Summary`` is not the
  target: adapters trained on it learn to answer in a line (a median of 10 words on the proxy,
  where arXiv's abstracts have 162), so the proxy said they beat their base while on real arXiv
  rows they did not (``benchmarks/RESULTS.md``, "Proxy transfer"); and with the README's prose
  alone the articles were 3.4 times their abstracts, where arXiv's are 32.
* ``stdlib_functions`` stands in for ``nvidia/OpenCodeInstruct`` (``input`` -> ``output``):
  documented public top-level functions of the Python standard library, found by *parsing* the
  source with :mod:`ast` (never importing: ``antigravity`` opens a browser, ``this`` prints) ->
  an instruction built from the signature and docstring, and the function's source without it.

Both are deterministic for a given interpreter and environment (sorted by ``id``; ``max_rows``
picks rows by a hash of the id, not by position, so a cap does not keep only ``a*`` modules), use
nothing but the standard library, and log how many rows were kept and why others were dropped.

Choices, documented once here:

* Description clean-up is light and regex-based: HTML comments, a whitelist of HTML tags (their
  inner text is kept) and Markdown images/badges are cut; a line they were cut from is unindented
  and dropped if nothing but ``|``/``-`` is left. RST ``image``/``figure`` directives (with their
  indented options), lines made only of ``|subst|`` references and Markdown link definitions
  pointing at badge images are dropped. Runs of blank lines
  collapse to one. Links then keep only their text (Markdown inline and reference links, RST
  ``text <url>`_``) and ``**bold**`` its words: URLs say nothing a summary would and eat the
  article's token budget. Nothing else of the Markdown/RST is touched.
* A prose paragraph is a blank-line-separated block of at least 8 words that ends like a sentence
  and is not a heading (or RST-underlined), an indented, list, table, quote, directive or
  ``::`` literal block.
* Distributions seen twice under one normalized name (PEP 503): the first on ``sys.path`` wins
  (the one ``importlib.metadata.distribution`` would return). Rows sharing an article or an
  abstract (package families, vendored copies): the first id in sorted order wins.
* Only functions directly in a module's body count (not those under a module-level ``if``/``try``);
  a name bound twice keeps its last definition, the one Python keeps. The output keeps the
  original text (comments, formatting, decorators) with the docstring lines cut out; when that
  cannot be done line-wise (docstring sharing a line with code) or the result does not parse back
  to the same tree, it falls back to ``ast.unparse`` of the tree without the docstring.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import importlib.metadata
import inspect
import io
import logging
import os
import re
import sysconfig
import tokenize
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

_MIN_PARAGRAPH_WORDS = 8  # shorter blocks are taglines or captions
_MIN_OVERVIEW_WORDS = 40
_OVERVIEW_WORDS = 200  # paragraphs are added until the overview has this many words
_MIN_RATIO = 8  # article words per overview word, at least (arXiv: 32, see _RATIO)
# Article words per abstract word, at most: the median of the real arXiv sample is 32 (4035 and 162
# words; `benchmarks/proxy_transfer.py`, "Median words per whole test document").
_RATIO = 32
# Not a distribution's own documentation: examples, vendored copies of other projects.
_NOT_OWN_DIRS = frozenset({"examples", "example", "_vendor", "vendor", "vendored", "third_party"})


# --------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------


def _cap(rows: list[dict], max_rows: int | None) -> list[dict]:
    """Rows sorted by id; with a cap, the ``max_rows`` with the smallest sha256(id), still sorted by id."""
    rows = sorted(rows, key=lambda r: r["id"])
    if max_rows is None or len(rows) <= max_rows:
        return rows
    if max_rows < 0:
        raise ValueError(f"max_rows must be >= 0, got {max_rows}")
    chosen = sorted(rows, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())[:max_rows]
    return sorted(chosen, key=lambda r: r["id"])


def _log_counts(what: str, kept: int, dropped: Counter, capped: int) -> None:
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(dropped.items())) or "none"
    log.info(
        "%s: kept %d rows (dropped %d: %s)%s",
        what,
        kept,
        sum(dropped.values()),
        reasons,
        f"; capped from {capped}" if capped != kept else "",
    )


# --------------------------------------------------------------------------------------------------
# Package summaries (proxy for ccdv/arxiv-summarization)
# --------------------------------------------------------------------------------------------------

_HTML_TAGS = (
    "a|abbr|b|blockquote|br|center|code|dd|details|div|dl|dt|em|figcaption|figure|font|h[1-6]|hr|i|img|"
    "kbd|li|ol|p|picture|pre|s|small|source|span|strong|sub|summary|sup|table|tbody|td|th|thead|tr|tt|u|ul|video"
)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HTML_TAG = re.compile(rf"</?(?:{_HTML_TAGS})(?:\s[^<>]*)?/?>", re.IGNORECASE)  # may span lines
# Markdown images, linked images (badges) and their reference-style forms; targets may span lines.
_MD_IMAGE = re.compile(
    r"\[!\[[^\]]*\]\([^)]*\)\](?:\([^)]*\)|\[[^\]]*\])|\[!\[[^\]]*\]\[[^\]]*\]\](?:\([^)]*\)|\[[^\]]*\])"
    r"|!\[[^\]]*\]\([^)]*\)|!\[[^\]]*\]\[[^\]]*\]"
)
_CUT = "\x00"  # marks where markup was cut, so the line can be tidied
_RST_IMAGE = re.compile(r"^\.\.\s+(?:\|[^|]+\|\s+)?(?:image|figure)::")
_RST_SUBST_ONLY = re.compile(r"^\s*(?:\|[^|\s][^|]*\|_{0,2}\s*)+$")
_BADGE_REF_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*\S*(?:shields\.io|badge|\.svg)\S*\s*$", re.IGNORECASE)
_BLANK_RUNS = re.compile(r"\n{3,}")


def _normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _unfold_description_header(text: str) -> str:
    """Undo the RFC 822 folding of an old-style ``Description:`` header (8 spaces or ``       |``)."""
    lines = text.splitlines()
    out = lines[:1]
    for line in lines[1:]:
        if line.startswith(("       |", " " * 8)):
            line = line[8:]
        out.append(line)
    return "\n".join(out)


def _clean_description(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace(_CUT, "")
    text = _HTML_COMMENT.sub(_CUT, text)
    text = _HTML_TAG.sub(_CUT, text)
    text = _MD_IMAGE.sub(_CUT, text)
    out: list[str] = []
    in_rst_image = False
    for line in text.split("\n"):
        if in_rst_image and line[:1] in (" ", "\t") and line.strip():
            continue  # an option of the image directive (:target:, :alt:, ...)
        in_rst_image = False
        if _RST_IMAGE.match(line):
            in_rst_image = True
            continue
        if _CUT in line:
            # A line markup was cut from: drop what only held markup, unindent the rest (HTML layout).
            line = line.replace(_CUT, "").strip()
            if not line.strip("|- \t"):
                continue
        if _RST_SUBST_ONLY.match(line) or _BADGE_REF_DEF.match(line):
            continue
        out.append(line.rstrip())
    return _BLANK_RUNS.sub("\n\n", "\n".join(out)).strip()


_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")
# Links keep their text: a URL says nothing a summary would, and eats the article's token budget.
_MD_LINK = re.compile(r"\[([^\[\]]+)\]\((?:[^()\s]|\([^()]*\))*\)")
_MD_REF_LINK = re.compile(r"\[([^\[\]]+)\]\[[^\[\]]*\]")
_RST_LINK = re.compile(r"`([^`<]+?)\s*<[^<>`]*>`_{1,2}")
_MD_STRONG = re.compile(r"\*\*([^*\n]+)\*\*")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_NOT_PROSE_START = ("#", "```", "~~~", "|", "+-", "..", ">>>", "$ ", "- ", "* ", "+ ", ":", "[")
_FENCED = re.compile(r"^[ \t>]*(```|~~~).*?^[ \t>]*\1[^\n]*$", re.M | re.S)  # also inside a > quote
_CODE_START = ("```", "~~~", "|", "+-", "..", ">>>", "$ ")
_ORDERED_ITEM = re.compile(r"^\d+[.)]\s")


def _plain_links(text: str) -> str:
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_REF_LINK.sub(r"\1", text)
    text = _RST_LINK.sub(r"\1", text)
    return _MD_STRONG.sub(r"\1", text)


def _blocks(text: str) -> list[str]:
    """Blank-line-separated blocks; a fenced code span (blank lines inside, or none around it) is one block."""

    def isolate(m: re.Match) -> str:  # blank lines inside the fence are held by _CUT while splitting
        return "\n\n" + re.sub(r"\n[ \t]*(?=\n)", "\n" + _CUT, m.group(0).strip("\n")) + "\n\n"

    text = _FENCED.sub(isolate, text)
    return [b.strip("\n").replace(_CUT, "") for b in re.split(r"\n[ \t]*\n", text) if b.strip()]


def _is_prose(block: str) -> bool:
    """A paragraph of running text: not a heading, list, table, code, directive or a short tagline."""
    lines = block.split("\n")
    if any(_RST_UNDERLINE.match(line) for line in lines) or lines[0][:1] in (" ", "\t"):
        return False
    first = lines[0]
    if first.startswith(_NOT_PROSE_START) or _ORDERED_ITEM.match(first) or block.rstrip().endswith("::"):
        return False
    text = " ".join(line.strip() for line in lines)
    return len(text.split()) >= _MIN_PARAGRAPH_WORDS and text.rstrip()[-1:] in ".!?:)"


def _is_code(block: str) -> bool:
    """Code, shell sessions, tables, directives, or a block holding a fence or doctest: not prose."""
    first = block.split("\n")[0]
    holds_code = any(line.lstrip("> \t").startswith(("```", "~~~", ">>> ")) for line in block.split("\n"))
    return holds_code or first.startswith(_CODE_START) or first[:1] in (" ", "\t") or block.rstrip().endswith("::")


def _split_overview(blocks: list[str], skip_first: bool = False) -> tuple[str, list[str]] | None:
    """(overview, the blocks after it): the first run of prose paragraphs, up to ~_OVERVIEW_WORDS words.

    What comes before the run (title, badges, a tagline) is dropped, as an arXiv article carries
    no title; ``skip_first`` also lets a docstring's one-line summary open the run.
    """
    i = 0
    while i < len(blocks) and not _is_prose(blocks[i]) and not (skip_first and i == 0):
        i += 1
    taken: list[str] = []
    words = 0
    while i < len(blocks) and (_is_prose(blocks[i]) or (skip_first and i == 0)) and words < _OVERVIEW_WORDS:
        paragraph = " ".join(_plain_links(blocks[i]).split())
        taken.append(paragraph)
        words += len(paragraph.split())
        i += 1
    overview = "\n".join(taken)
    if len(overview.split()) < _MIN_OVERVIEW_WORDS or len(_SENTENCE_END.findall(overview + " ")) < 2:
        return None
    return overview, blocks[i:]


# A docstring's argument, return and example sections (Google and NumPy style): lists, not prose.
_DOC_SECTION = re.compile(
    r"^(?:Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Kwargs|Other Parameters|Returns?|Raises|"
    r"Yields?|Examples?|Attributes|Methods|See Also|References)\s*(?::|\n[-=]{3,})",
    re.IGNORECASE,
)


def _docstring_prose(doc: str) -> list[str]:
    """A docstring's prose paragraphs, a line each; its summary line counts (a sentence, if a short one)."""
    out = []
    for i, block in enumerate(_blocks(_clean_description(doc))):
        if _DOC_SECTION.match(block) or _is_code(block):
            continue
        flat = " ".join(_plain_links(block).split())
        summary = i == 0 and "\n" not in block and not block.startswith(_NOT_PROSE_START) and flat[-1:] in ".!?"
        if _is_prose(block) or (summary and len(flat.split()) >= 3):
            out.append(flat)
    return out


def _source_prose(path: Path, module_doc: bool = True) -> list[str]:
    """A source file's documentation as prose paragraphs, a line each, in source order: its module
    docstring's (unless ``module_doc`` is false), then its public classes', functions' and methods'.

    A docstring's summary line counts (it is a sentence, if a short one); its argument, return and
    example sections, field lists and tables do not.
    """
    source = _read_source(path)
    if source is None:
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in old sources
            tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    own = ast.get_docstring(tree) if module_doc else None
    out: list[str] = _docstring_prose(own) if own else []

    def visit(body: list[ast.stmt], in_class: bool) -> None:
        for node in body:
            if not isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("_"):
                continue
            doc = ast.get_docstring(node)
            if doc:
                out.extend(_docstring_prose(doc))
            if isinstance(node, ast.ClassDef) and not in_class:
                visit(node.body, True)

    visit(tree.body, False)
    return out


def _summary_row(
    row_id: str, blocks: list[str], more: Iterable[list[str]], min_article_words: int, dropped: Counter, skip_first: bool = False
) -> dict | None:
    """A row from a text's blocks: its overview is the abstract; the prose after it, then the
    paragraphs ``more`` yields (the code's own documentation), make the article, up to
    ``_RATIO`` times the abstract's words."""
    split = _split_overview(blocks, skip_first)
    if split is None:
        dropped["no_overview"] += 1
        return None
    overview, rest = split
    target = _RATIO * len(overview.split())
    parts = [b for b in rest if not _is_code(b)]
    words = sum(len(b.split()) for b in parts)
    for paragraphs in more:  # lazily: a big package's sources are read only as far as needed
        if words >= target:
            break
        for paragraph in paragraphs:
            if words >= target:
                break
            if any(line in paragraph for line in overview.splitlines()):
                continue  # a class docstring repeating the module's summary: the answer, in the input
            parts.append(paragraph)
            words += len(paragraph.split())
    article = _plain_links("\n\n".join(parts))
    n_article = len(article.split())
    if n_article < max(min_article_words, _MIN_RATIO * len(overview.split())):
        dropped["short_article"] += 1
        return None
    return {"id": row_id, "article": article, "abstract": overview}


def _description_of(metadata: Any) -> str:
    payload = metadata.get_payload()
    if isinstance(payload, str) and payload.strip():
        return payload
    header = metadata.get("Description")
    return _unfold_description_header(header) if isinstance(header, str) else ""


def _distribution_sources(dist: importlib.metadata.Distribution) -> list[Path]:
    """The distribution's own Python sources (not its tests, examples or vendored copies), sorted."""
    out = []
    for f in dist.files or ():
        if f.suffix == ".py" and not any(part in _SKIP_DIRS or part in _NOT_OWN_DIRS for part in f.parts[:-1]):
            out.append(Path(dist.locate_file(f)))
    return sorted(out)


def _readme_rows(min_article_words: int, dropped: Counter) -> tuple[list[dict], set[Path]]:
    """The README rows, and every source file of the distributions they came from (resolved)."""
    by_name: dict[str, tuple[str, importlib.metadata.Distribution]] = {}
    for dist in importlib.metadata.distributions():
        md = dist.metadata
        raw_name = md.get("Name") if md is not None else None
        if not raw_name:
            dropped["no_name"] += 1
            continue
        name = _normalize_name(raw_name)
        if name in by_name:
            dropped["duplicate_name"] += 1  # shadowed by an earlier sys.path entry
            continue
        text = _clean_description(_description_of(md))
        by_name[name] = ("" if text.strip().upper() == "UNKNOWN" else text, dist)
    rows, claimed = [], set()
    for name in sorted(by_name):
        text, dist = by_name[name]
        sources = _distribution_sources(dist)
        row = _summary_row(f"pkg:{name}", _blocks(text), map(_source_prose, sources), min_article_words, dropped)
        if row:
            rows.append(row)
            claimed.update(p.resolve() for p in sources)
    return rows, claimed


_MODULE_DOCSTRING = re.compile(r"\A(?:[ \t]*(?:#[^\n]*)?\n)*[ \t]*([rRuU]?)(\"\"\"|\'\'\')")


def _module_docstring(path: Path) -> str | None:
    """The module's docstring, read from the head of the file (parsing torch's sources whole takes a minute)."""
    source = _read_source(path)
    if source is None:
        return None
    head = _MODULE_DOCSTRING.match(source)
    if head is None:
        return None
    close = source.find(head.group(2), head.end())
    if close < 0:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in old docstrings
            value = ast.literal_eval(source[head.start(1) : close + 3])
    except (SyntaxError, ValueError):
        return None
    return inspect.cleandoc(value) if isinstance(value, str) else None


def _library_modules() -> list[tuple[str, Path]]:
    """(dotted name, path) of the stdlib's and the installed packages' public modules, sorted."""
    found = _modules_under(Path(sysconfig.get_paths()["stdlib"]))
    seen_roots = {Path(sysconfig.get_paths()["stdlib"]).resolve()}
    for key in ("purelib", "platlib"):
        root = Path(sysconfig.get_paths()[key])
        if root.resolve() in seen_roots or not root.is_dir():
            continue
        seen_roots.add(root.resolve())
        found += _modules_under(root, skip=_SKIP_DIRS - {"site-packages", "dist-packages"})
    return sorted(set(found))


def _docstring_rows(min_article_words: int, dropped: Counter, claimed: set[Path]) -> list[dict]:
    rows = []
    for module, path in _library_modules():
        doc = _module_docstring(path)
        if not doc or len(doc.split()) < _MIN_OVERVIEW_WORDS or path.resolve() in claimed:
            continue  # most modules: not counted as dropped, they never were candidates
        # Its members, parsed only if the docstring has an overview and is short of the ratio.
        members = (_source_prose(p, module_doc=False) for p in [path])
        row = _summary_row(f"doc:{module}", _blocks(_clean_description(doc)), members, min_article_words, dropped, skip_first=True)
        if row:
            rows.append(row)
    return rows


def package_summaries(min_article_words: int = 100, max_rows: int | None = None) -> list[dict]:
    """Summarization pairs from installed documentation, in arXiv's shape (a PROXY, see module docstring).

    Each row is ``{"id": "pkg:<normalized-name>" | "doc:<module>", "article": <the text after the
    overview, then the code's documentation>, "abstract": <the overview paragraphs, one per line>}``,
    sorted by id.
    """
    dropped: Counter = Counter()
    readme_rows, claimed = _readme_rows(min_article_words, dropped)
    rows = readme_rows + _docstring_rows(min_article_words, dropped, claimed)
    unique: dict[str, dict] = {}
    seen_abstracts: set[str] = set()
    for row in sorted(rows, key=lambda r: r["id"]):
        # Vendored copies (pip's, setuptools' ...) and package families share text: first id wins.
        if row["article"] in unique or row["abstract"] in seen_abstracts:
            dropped["duplicate_text"] += 1
            continue
        unique[row["article"]] = row
        seen_abstracts.add(row["abstract"])
    kept = list(unique.values())
    capped = _cap(kept, max_rows)
    _log_counts("package_summaries", len(capped), dropped, len(kept))
    return capped


# --------------------------------------------------------------------------------------------------
# Standard-library functions (proxy for nvidia/OpenCodeInstruct)
# --------------------------------------------------------------------------------------------------

_SKIP_DIRS = frozenset(
    {
        "site-packages",
        "dist-packages",
        "test",
        "tests",
        "idlelib",
        "tkinter",
        "turtledemo",
        "lib2to3",
        "ensurepip",
        "pydoc_data",
        "__pycache__",
    }
)


def _modules_under(root_dir: Path, skip: frozenset[str] = _SKIP_DIRS) -> list[tuple[str, Path]]:
    """(dotted module name, path) of the public source files under a library root, sorted by module name."""
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(root_dir):
        rel = Path(root).relative_to(root_dir)
        # Only importable packages: identifier names, not private, not excluded, with __init__.py.
        dirs[:] = sorted(
            d for d in dirs if d not in skip and d.isidentifier() and not d.startswith("_") and (Path(root) / d / "__init__.py").is_file()
        )
        for fname in sorted(files):
            if not fname.endswith(".py"):
                continue
            stem = fname[:-3]
            if stem == "__init__":
                parts = rel.parts
            elif stem.startswith("_") or not stem.isidentifier():
                continue
            else:
                parts = (*rel.parts, stem)
            if parts:
                found.append((".".join(parts), Path(root) / fname))
    return sorted(found)


def _read_source(path: Path) -> str | None:
    try:
        data = path.read_bytes()
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError) as exc:
        log.debug("skipping %s: %s", path, exc)
        return None


def _without_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.FunctionDef | ast.AsyncFunctionDef:
    bare = copy.deepcopy(node)
    bare.body = bare.body[1:]
    return bare


def _same_tree(a: ast.AST, b: ast.AST) -> bool:
    return ast.dump(a, include_attributes=False) == ast.dump(b, include_attributes=False)


def _function_source(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """Original text of ``node`` (decorators included) with its docstring lines cut out."""
    bare = _without_docstring(node)
    doc = node.body[0]
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    text = None
    # Line-wise cut only when the docstring has its own lines (nothing before or after it on them);
    # the docstring being the first statement, it always comes after the header's colon.
    if node.body[1].lineno > doc.end_lineno:
        before = lines[first - 1 : doc.lineno - 1]
        after = lines[doc.end_lineno : node.end_lineno]
        tail = lines[doc.end_lineno - 1][doc.end_col_offset :].strip()
        head = lines[doc.lineno - 1][: doc.col_offset].strip()
        if not tail and not head:
            while after and not after[0].strip():
                after = after[1:]
            text = "\n".join(line.rstrip() for line in before + after)
            try:
                parsed = ast.parse(text).body
            except SyntaxError:
                parsed = []
            if len(parsed) != 1 or not _same_tree(parsed[0], bare):
                text = None
    if text is None:
        text = ast.unparse(bare)
    return text.strip("\n")


def _instruction(node: ast.FunctionDef | ast.AsyncFunctionDef, doc: str) -> str:
    signature = f"{node.name}({ast.unparse(node.args)})"
    if node.returns is not None:
        signature += f" -> {ast.unparse(node.returns)}"
    kind = "an async Python function" if isinstance(node, ast.AsyncFunctionDef) else "a Python function"
    return f"Write {kind} `{signature}` that does the following:\n\n{doc}"


def stdlib_functions(min_doc_chars: int = 40, min_lines: int = 3, max_lines: int = 40, max_rows: int | None = None) -> list[dict]:
    """Code pairs from documented public top-level stdlib functions (a PROXY, see module docstring).

    Each row is ``{"id": "stdlib:<module>.<func>", "input": <instruction from signature + docstring>,
    "output": "```python\\n<source without docstring>\\n```", "module": <module>}``, sorted by id.
    The source files are parsed with :mod:`ast`, never imported.
    """
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    dropped: Counter = Counter()
    rows: list[dict] = []
    for module, path in _modules_under(stdlib):
        source = _read_source(path)
        if source is None:
            dropped["unreadable_file"] += 1
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. SyntaxWarning for invalid escapes in old files
                tree = ast.parse(source, filename=str(path))
        except (SyntaxError, ValueError) as exc:
            log.debug("skipping %s: %s", path, exc)
            dropped["unparsable_file"] += 1
            continue
        lines = source.splitlines()
        last: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                if node.name in last:
                    dropped["redefined"] += 1
                last[node.name] = node
        for name, node in last.items():
            doc = ast.get_docstring(node, clean=True)
            if not doc or len(doc.strip()) < min_doc_chars:
                dropped["short_or_no_docstring"] += 1
                continue
            if len(node.body) < 2:
                dropped["docstring_only"] += 1
                continue
            code = _function_source(lines, node)
            n_lines = code.count("\n") + 1
            if not min_lines <= n_lines <= max_lines:
                dropped["length"] += 1
                continue
            rows.append(
                {
                    "id": f"stdlib:{module}.{name}",
                    "input": _instruction(node, doc.strip()),
                    "output": f"```python\n{code}\n```",
                    "module": module,
                }
            )

    unique: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: r["id"]):
        if row["output"] in unique:
            dropped["duplicate_output"] += 1
            continue
        unique[row["output"]] = row
    kept = list(unique.values())
    capped = _cap(kept, max_rows)
    _log_counts("stdlib_functions", len(capped), dropped, len(kept))
    return capped

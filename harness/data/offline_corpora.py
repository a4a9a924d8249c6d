"""Offline PROXY corpora: real, deterministic text for a demo when the real data sets cannot be had.

These are NOT the benchmark data sets. They stand in for them only when neither the Hugging Face
hub nor a local copy of the real data is available, so that a demo can still train and evaluate
LoRA adapters on real (human-written) text. Every result produced from them must be labelled with
its declared proxy label (`data.proxy.label` in ``lm_eval_tasks/*.benchmark.yml``), never reported as an arXiv or OpenCodeInstruct number.

* ``package_summaries`` stands in for ``ccdv/arxiv-summarization`` (``article`` -> ``abstract``):
  the long description (README) of every installed Python distribution -> its one-line ``Summary``.
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
  collapse to one. Nothing else of the Markdown/RST is touched.
* Many READMEs repeat the summary verbatim in their first lines. Such rows are KEPT, but that one
  copy (if it starts within the first 200 characters of the cleaned text) is cut from the article,
  with its line when only markup is left on it (and an RST title underline below), as arXiv
  articles do not contain their abstract; otherwise the task would be a copy. Later mentions in
  the prose stay. The length threshold applies after clean-up.
* Distributions seen twice under one normalized name (PEP 503): the first on ``sys.path`` wins
  (the one ``importlib.metadata.distribution`` would return). Identical articles (families such as
  ``nvidia-*`` share one README): the lexicographically first normalized name wins.
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
import io
import logging
import os
import re
import sysconfig
import tokenize
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_MIN_SUMMARY_CHARS = 20
_SUMMARY_SEARCH_CHARS = 200


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
        if line.startswith("       |"):
            line = line[8:]
        elif line.startswith(" " * 8):
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


_MARKUP_ONLY = " \t#*_`:.,;!-=~|>"
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def _cut_summary(article: str, summary: str) -> tuple[str, bool]:
    """Cut one verbatim copy of ``summary`` starting in the first 200 characters of ``article``.

    When only markup is left on its line (``# ``, ``**``...), the line goes, with an RST title
    underline right below it. Returns the new article and whether a copy was cut.
    """
    at = article.find(summary, 0, _SUMMARY_SEARCH_CHARS - 1 + len(summary))
    if at < 0:
        return article, False
    end = at + len(summary)
    line_start = article.rfind("\n", 0, at) + 1
    line_end = article.find("\n", end)
    line_end = len(article) if line_end < 0 else line_end
    left, right = article[line_start:at].rstrip(), article[end:line_end].strip()
    if (left + right).strip(_MARKUP_ONLY):
        line = f"{left} {right}" if left and right else (left or right).strip()
        article = article[:line_start] + line + article[line_end:]
    else:
        below = article[line_end + 1 :].split("\n", 1)
        if line_end < len(article) and _RST_UNDERLINE.match(below[0]):
            line_end += 1 + len(below[0])
        article = article[:line_start] + article[line_end + 1 :]
    return _BLANK_RUNS.sub("\n\n", article).strip(), True


def _description_of(metadata: Any) -> str:
    payload = metadata.get_payload()
    if isinstance(payload, str) and payload.strip():
        return payload
    header = metadata.get("Description")
    return _unfold_description_header(header) if isinstance(header, str) else ""


def package_summaries(min_description_chars: int = 400, max_rows: int | None = None) -> list[dict]:
    """Summarization pairs from the installed distributions' metadata (a PROXY, see module docstring).

    Each row is ``{"id": "pkg:<normalized-name>", "article": <cleaned long description>,
    "abstract": <one-line Summary>}``, sorted by id.
    """
    dropped: Counter = Counter()
    by_name: dict[str, dict] = {}
    summary_cut = 0
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
        summary = " ".join((md.get("Summary") or "").split())
        if summary.upper() == "UNKNOWN" or len(summary) < _MIN_SUMMARY_CHARS:
            dropped["short_summary"] += 1
            by_name[name] = {}  # still claims the name: the shadowed copy must not stand in
            continue
        article = _clean_description(_description_of(md))
        if article.strip().upper() == "UNKNOWN":
            article = ""
        article, cut = _cut_summary(article, summary)
        summary_cut += cut
        if len(article) < min_description_chars:
            dropped["short_description"] += 1
            by_name[name] = {}
            continue
        by_name[name] = {"id": f"pkg:{name}", "article": article, "abstract": summary}

    by_article: dict[str, dict] = {}
    for name in sorted(by_name):
        row = by_name[name]
        if not row:
            continue
        if row["article"] in by_article:
            dropped["duplicate_description"] += 1
            continue
        by_article[row["article"]] = row
    rows = list(by_article.values())
    capped = _cap(rows, max_rows)
    log.debug("package_summaries: verbatim summary cut from %d articles", summary_cut)
    _log_counts("package_summaries", len(capped), dropped, len(rows))
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


def _stdlib_modules(stdlib: Path) -> list[tuple[str, Path]]:
    """(dotted module name, path) of the public stdlib source files, sorted by module name."""
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(stdlib):
        rel = Path(root).relative_to(stdlib)
        # Only importable packages: identifier names, not private, not excluded, with __init__.py.
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in _SKIP_DIRS and d.isidentifier() and not d.startswith("_") and (Path(root) / d / "__init__.py").is_file()
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
    for module, path in _stdlib_modules(stdlib):
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

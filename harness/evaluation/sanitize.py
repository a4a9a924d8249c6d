"""Pull runnable Python out of a chat model's answer (the EvalPlus "sanitize" step, on `ast`).

A chat answer is prose around one or more fenced code blocks, sometimes an unterminated block cut
by the token limit, sometimes bare code, sometimes just a function body continuing the prompt. The
steps, each a function of its own:

1. `extract_code`: choose the code: a fenced block in Python (or untagged) that defines the wanted
   entry point, else the longest one; with no fences, the longest syntactically valid run of lines
   that starts like code. Either is cut back to its longest parseable prefix if needed.
2. `keep_definitions`: keep what a test can call and nothing that runs on import: imports,
   functions, classes, and module-level assignments that a kept definition reads. Example usage,
   prints, asserts, `if __name__ == "__main__":` blocks and stray expressions are dropped.
3. `humaneval_solution`: for HumanEval, put back what the prompt gave (its imports and helper
   functions such as `is_palindrome` in HumanEval/10) unless the answer redefines them, or, when
   the answer is a bare body continuing the prompt's signature, append it to the prompt.

Sanitizing never runs the code.
"""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Iterable

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)
PYTHON_TAGS = {"", "python", "py", "python3", "py3", "pycon", "ipython"}
CODE_START = re.compile(r"^(?:def |async def |class |import |from \S+ import |@)")
KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _names(entry_point: str | Iterable[str] | None) -> set[str]:
    if entry_point is None:
        return set()
    if isinstance(entry_point, str):
        return {entry_point}
    return set(entry_point)


def parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def longest_parseable_prefix(code: str) -> str:
    """The longest run of leading lines that parses ('' if none does)."""
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end])
        if candidate.strip() and parses(candidate):
            return candidate
    return ""


def defined_names(code: str) -> set[str]:
    """Top-level function and class names defined by `code` (empty if it does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return set()
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of every fenced block, the last one possibly unterminated."""
    return [(m.group(1).lower(), m.group(2)) for m in FENCE.finditer(text)]


def _bare_code(text: str) -> str:
    """Longest parseable run of lines starting at a line that looks like the start of code."""
    lines = text.splitlines()
    best = ""
    for start, line in enumerate(lines):
        if not CODE_START.match(line):
            continue
        for end in range(len(lines), start, -1):
            candidate = "\n".join(lines[start:end])
            if len(candidate) <= len(best):
                break
            if parses(candidate):
                best = candidate
                break
    return best


def extract_code(text: str, entry_point: str | Iterable[str] | None = None) -> str:
    """The code in a model answer, as text (see the module docstring for the rules)."""
    wanted = _names(entry_point)
    blocks = fenced_blocks(text)
    python = [body for tag, body in blocks if tag in PYTHON_TAGS] or [body for _, body in blocks]
    if python:
        cleaned = []
        for body in python:
            body = textwrap.dedent(body).strip("\n")
            cleaned.append(body if parses(body) else longest_parseable_prefix(body))
        cleaned = [c for c in cleaned if c.strip()]
        if not cleaned:
            return ""
        if wanted:
            defining = [c for c in cleaned if defined_names(c) & wanted]
            if defining:
                return max(defining, key=len)
        return max(cleaned, key=len)
    return _bare_code(text)


def _loaded_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def _targets(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    else:
        return set()
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def keep_definitions(code: str) -> str:
    """Imports, functions, classes and the module constants they read; drop everything else."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return code
    kept = [n for n in tree.body if isinstance(n, KEEP)]
    used: set[str] = set()
    for node in kept:
        used |= _loaded_names(node)
    assigns = [n for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign)) and _targets(n) & used]
    # Constants may read other constants (A = 1; B = A + 1): close over them.
    changed = True
    while changed:
        changed = False
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node not in assigns:
                if _targets(node) & set().union(*(_loaded_names(a) for a in assigns), used):
                    assigns.append(node)
                    changed = True
    keep_ids = {id(n) for n in kept} | {id(n) for n in assigns}
    lines = code.splitlines()
    out = []
    for node in tree.body:
        if id(node) not in keep_ids:
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        out.append("\n".join(lines[start - 1 : node.end_lineno]))
    return "\n\n".join(out) + ("\n" if out else "")


def sanitize(text: str, entry_point: str | Iterable[str] | None = None) -> str:
    """Code extracted from `text` and reduced to its definitions (may be '' when there is none)."""
    code = extract_code(text, entry_point)
    return keep_definitions(code) if code.strip() else ""


def _prompt_preamble(prompt: str, entry_point: str, redefined: set[str]) -> str:
    """The prompt's imports and helper definitions, minus the entry point and what is redefined."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return ""
    lines = prompt.splitlines()
    parts = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            parts.append(ast.get_source_segment(prompt, node) or "")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign)):
            name = getattr(node, "name", None)
            if name == entry_point or (name and name in redefined) or (_targets(node) & redefined):
                continue
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            parts.append("\n".join(lines[start - 1 : node.end_lineno]))
    return "\n\n".join(p for p in parts if p)


def _continuation(text: str) -> str:
    """An answer that continues the prompt's signature: the indented body, without fences."""
    blocks = fenced_blocks(text)
    body = blocks[0][1] if blocks else text
    lines = body.splitlines()
    out = []
    for line in lines:
        if line.strip() and not line[:1].isspace() and out:
            break  # the body ended: a new top-level statement (often example usage) starts
        out.append(line)
    return "\n".join(out).rstrip() + "\n"


def humaneval_solution(prompt: str, answer: str, entry_point: str) -> str:
    """A complete program defining `entry_point` from a HumanEval prompt and a model's answer."""
    code = sanitize(answer, entry_point)
    defined = defined_names(code)
    if entry_point in defined:
        preamble = _prompt_preamble(prompt, entry_point, defined)
        return (preamble + "\n\n\n" + code) if preamble else code
    continued = prompt + _continuation(answer)
    if parses(continued):
        return continued
    prefix = longest_parseable_prefix(continued)
    if entry_point in defined_names(prefix):
        return prefix + "\n"
    # Nothing usable: the test will fail with a NameError, which is the honest result.
    return code

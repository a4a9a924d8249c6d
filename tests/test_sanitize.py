"""The sanitizer pulls runnable code out of chat answers, without running anything."""

from __future__ import annotations

from harness.evaluation import sanitize as s

PROMPT_10 = '''

def is_palindrome(string: str) -> bool:
    """ Test if given string is a palindrome """
    return string == string[::-1]


def make_palindrome(string: str) -> str:
    """ Find the shortest palindrome that begins with a supplied string.
    >>> make_palindrome('cat')
    'catac'
    """
'''

PROMPT_0 = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if in given list of numbers, are any two numbers closer to each other than
    given threshold.
    """
'''


def test_fenced_block_inside_prose():
    answer = "Sure! Here is the code:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nIt adds two numbers."
    assert s.sanitize(answer, "add") == "def add(a, b):\n    return a + b\n"


def test_picks_the_block_that_defines_the_entry_point():
    answer = (
        "First a helper you might like:\n```python\ndef unrelated_but_much_longer_helper(x):\n    y = x * 2\n    z = y + 1\n    return z\n```\n"
        "And the answer:\n```python\ndef solve(x):\n    return x + 1\n```\n"
    )
    assert s.defined_names(s.sanitize(answer, "solve")) == {"solve"}
    # Without an entry point the longest block wins.
    assert "unrelated_but_much_longer_helper" in s.sanitize(answer)


def test_other_languages_are_skipped_when_python_is_there():
    answer = "Run:\n```bash\npip install nothing\n```\n```py\ndef f():\n    return 1\n```"
    assert s.sanitize(answer, "f") == "def f():\n    return 1\n"


def test_untagged_fence_and_dedent():
    answer = "```\n    def f(x):\n        return -x\n```"
    assert s.sanitize(answer, "f") == "def f(x):\n    return -x\n"


def test_unterminated_block_cut_by_the_token_limit():
    answer = "```python\ndef f(x):\n    return x * 3\n\n\ndef g(y):\n    return f(y) +"
    code = s.sanitize(answer, "f")
    assert code == "def f(x):\n    return x * 3\n"
    assert s.parses(code)


def test_bare_code_after_prose():
    answer = "The function below solves it.\nimport math\ndef area(r):\n    return math.pi * r ** 2\nThat is all."
    code = s.sanitize(answer, "area")
    assert code == "import math\n\ndef area(r):\n    return math.pi * r ** 2\n"


def test_drops_example_usage_main_blocks_prints_and_asserts():
    answer = """```python
import re
PATTERN = re.compile(r"a+")
UNUSED = 3
LIMIT = 10
BIG = LIMIT * 2

def count(text):
    return len(PATTERN.findall(text)) + BIG

print(count("aaa"))
assert count("a") == 21
result = count("b")
for i in range(3):
    print(i)

if __name__ == "__main__":
    count(input())
```"""
    code = s.sanitize(answer, "count")
    assert s.parses(code)
    assert "import re" in code and "def count" in code
    assert "PATTERN = " in code and "BIG = " in code and "LIMIT = " in code  # read by count, directly or not
    for gone in ("UNUSED", "print(", "assert ", "result =", "__main__", "input()"):
        assert gone not in code


def test_decorators_and_classes_are_kept():
    answer = "```python\nimport functools\n\n@functools.lru_cache(None)\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\nclass Box:\n    pass\n```"
    code = s.sanitize(answer, "fib")
    assert code.startswith("import functools") and "@functools.lru_cache(None)\ndef fib" in code and "class Box" in code


def test_nothing_usable_gives_empty_code():
    assert s.sanitize("I cannot help with that.") == ""
    assert s.sanitize("") == ""
    assert s.sanitize("```python\n```") == ""


def test_sanitizing_never_runs_the_code(tmp_path):
    marker = tmp_path / "ran"
    answer = f"```python\nopen({str(marker)!r}, 'w').write('x')\nimport sys\nsys.exit(3)\ndef f():\n    return 1\n```"
    assert s.sanitize(answer, "f") == "import sys\n\ndef f():\n    return 1\n"
    assert not marker.exists()


def test_humaneval_full_function_gets_the_prompt_imports():
    answer = "```python\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    return False\n```"
    code = s.humaneval_solution(PROMPT_0, answer, "has_close_elements")
    assert code.startswith("from typing import List")
    assert s.defined_names(code) == {"has_close_elements"}


def test_humaneval_keeps_prompt_helpers_unless_redefined():
    answer = "```python\ndef make_palindrome(string: str) -> str:\n    return string + string[::-1]\n```"
    code = s.humaneval_solution(PROMPT_10, answer, "make_palindrome")
    assert s.defined_names(code) == {"is_palindrome", "make_palindrome"}
    assert code.count("def make_palindrome") == 1
    redefined = "```python\ndef is_palindrome(s):\n    return True\n\ndef make_palindrome(string):\n    return string\n```"
    code = s.humaneval_solution(PROMPT_10, redefined, "make_palindrome")
    assert code.count("def is_palindrome") == 1 and "return True" in code


def test_humaneval_body_only_answer_continues_the_prompt():
    body = "    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n            if abs(a - b) < threshold:\n                return True\n    return False\n\nprint(has_close_elements([1.0], 0.5))\n"
    code = s.humaneval_solution(PROMPT_0, body, "has_close_elements")
    assert code.startswith(PROMPT_0) and s.parses(code)
    assert "print(" not in code
    fenced = "```python\n" + body + "```"
    assert s.humaneval_solution(PROMPT_0, fenced, "has_close_elements") == code


def test_humaneval_garbage_answer_still_gives_a_program():
    code = s.humaneval_solution(PROMPT_0, "I don't know.", "has_close_elements")
    assert s.parses(code)  # the tests will fail on it, which is the honest result

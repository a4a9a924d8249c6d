"""Glue between lm-eval's YAML (`!function utils.NAME`) and the tested code in harness.evaluation.

Nothing is computed here: every name is defined and tested in `harness/evaluation/tasks.py`.
"""

import sys
from pathlib import Path

try:
    import harness  # noqa: F401  (installed with the project)
except ImportError:  # lm_eval run from a checkout without `uv sync`/`pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.evaluation.tasks import (  # noqa: E402,F401
    corpus_bleu,
    corpus_codebleu,
    execute_code,
    execute_humaneval,
    humaneval_prompt,
    load_rows,
    score_arxiv,
    score_code,
    score_humaneval,
    single_label,
)

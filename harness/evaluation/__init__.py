"""Evaluation: the lm-eval tasks' data, sandboxed execution of generated code, and metrics.

Rooms kept apart (as in EvalPlus):
  task_data     eval rows from `lorabench prepare-data` (HumanEval prepared on the fly, offline)
  sanitize      code pulled out of chat answers (never runs it)
  sandbox       runs untrusted Python in a limited, isolated child process
  execution     HumanEval / unit-test checks through the sandbox, in parallel
  metrics_text  BLEU, ROUGE, BERTScore (backbone is a setting, recorded with every score)
  metrics_code  pass@k (unbiased estimator), CodeBLEU
  tasks         what `lm_eval_tasks/*.yaml` call (prompts, filters, per-sample scores)
  api           metric names, directions and per-sample access for the leaderboard
"""

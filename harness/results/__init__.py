"""Evaluation results: the SQLite store, provenance and the statistics behind the leaderboard."""

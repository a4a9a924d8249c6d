"""Retrieval over prepared corpora: token-aware chunks, dense (sentence-transformers, in Qdrant) and
sparse (BM25) indexes, and hybrid search. `harness/commands/index.py` builds one."""

"""Data sets: sources, splits, chat formatting and manifests."""

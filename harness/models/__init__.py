"""Base models: the named registry and the embedded model's GGUF conversion."""

"""lorabench: LoRA adapters vs their base, measured."""

__version__ = "0.1.0"

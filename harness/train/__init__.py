"""Training: Axolotl recipes (`recipes`), runs (`runner`), training records (`record`), adapters
(`adapters`: load with a base check, merge and export)."""

"""Synthetic spine data with known truth, in the layouts of SPIDER, RSNA 2024 and the Phenikaa export."""

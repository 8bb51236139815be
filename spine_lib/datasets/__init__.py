"""Dataset builders: each turns raw sources into a training-ready dataset (one config + one function)."""

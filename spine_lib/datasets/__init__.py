"""Dataset builders: each turns raw sources into a training-ready dataset (one config + one function)."""

from spine_lib.datasets.rsna import get_series_type, load_series_mapping

__all__ = ["get_series_type", "load_series_mapping"]

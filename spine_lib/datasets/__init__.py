"""Dataset builders: each turns raw sources into a training-ready dataset (one config + one function).

- :mod:`spine_lib.datasets.nnunet`: SPIDER -> nnU-Net v2 raw dataset.
- :mod:`spine_lib.datasets.ivd_coords`: RSNA (+ Lumbar Coords) -> the IVD localization dataset.
- :mod:`spine_lib.datasets.phenikaa`: the hospital export -> report fields, matched patients, labels, images.

The RSNA series helpers of the spec are re-exported here from their home, :mod:`spine_lib.sources.rsna`.
"""

from spine_lib.sources.rsna import get_series_type, load_series_mapping

__all__ = ["get_series_type", "load_series_mapping"]

"""The on-disk formats of the project's products, one module each: the one place their files and columns are spelt.

- :mod:`spine_lib.formats.nnunet`: nnU-Net v2's raw dataset (written from SPIDER, read by nnU-Net and viewers).
- :mod:`spine_lib.formats.ivd_coords`: the IVD localization dataset (written from RSNA, read by training).

Writers (:mod:`spine_lib.datasets`), readers (:mod:`spine_lib.training`) and checks all import them from here, so
they sit below both.
"""

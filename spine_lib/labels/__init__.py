"""Label schemas, remapping, and the grading-table column conventions."""

from spine_lib.labels.mapping import LabelSchema, builtin_schemas, load_label_schema, remap_labels

__all__ = ["LabelSchema", "builtin_schemas", "load_label_schema", "remap_labels"]

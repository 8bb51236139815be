"""Label schemas: which label values a source uses and how they map to training targets.

A schema is a YAML file (built-in ones live in ``schemas/``). Remapping is a lookup table, so a 3D mask of
millions of voxels is remapped in one gather. A value the schema does not map is an error, never background.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from spine_lib.errors import InputPathError, LabelSchemaError

BACKGROUND = "background"
IGNORE = "ignore"
SCHEMA_PACKAGE = "spine_lib.labels.schemas"


class LabelSchema(BaseModel):
    """Source label values, target label values (consecutive from 0) and the mapping between them.

    Invariants (checked on construction): every source value is mapped, every mapped value is a target
    value, targets run 0..N-1 with ``background`` = 0, and an ``ignore`` target (voxels nnU-Net leaves out
    of the loss) is the highest value.

    Args:
        name: the schema's name, used in error messages.
        source_labels: name -> value of every label the source masks hold.
        target_labels: name -> value of the training targets.
        mapping: source value -> target value.
        metadata: free-form notes (description, policies).

    Raises:
        pydantic.ValidationError: an invariant does not hold.

    Example:
        >>> schema = LabelSchema(
        ...     name="discs",
        ...     source_labels={"background": 0, "disc_1": 201, "disc_2": 202},
        ...     target_labels={"background": 0, "disc": 1},
        ...     mapping={0: 0, 201: 1, 202: 1},
        ... )
        >>> schema.num_classes, schema.source_name(202), schema.target_name(schema.mapping[202])
        (2, 'disc_2', 'disc')
        >>> LabelSchema(  # doctest: +ELLIPSIS
        ...     name="discs",
        ...     source_labels={"background": 0, "disc_1": 201, "disc_2": 202},
        ...     target_labels={"background": 0, "disc": 1},
        ...     mapping={0: 0, 201: 1},
        ... )
        Traceback (most recent call last):
            ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for LabelSchema
          Value error, source values without a mapping: [202] ...
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source_labels: dict[str, int]
    target_labels: dict[str, int]
    mapping: dict[int, int]
    metadata: dict[str, Any] = {}

    @model_validator(mode="after")
    def check_consistency(self) -> LabelSchema:
        for field_name in ("source_labels", "target_labels"):
            labels: dict[str, int] = getattr(self, field_name)
            values = list(labels.values())
            if len(set(values)) != len(values):
                twice = sorted({v for v in values if values.count(v) > 1})
                raise ValueError(f"{field_name}: values used by more than one name: {twice}")
            if any(v < 0 for v in values):
                raise ValueError(f"{field_name}: negative label values are not allowed")
        sources = set(self.source_labels.values())
        targets = set(self.target_labels.values())
        if unmapped := sorted(sources - set(self.mapping)):
            raise ValueError(f"source values without a mapping: {unmapped}")
        if unknown := sorted(set(self.mapping) - sources):
            raise ValueError(f"mapping keys that are not source values: {unknown}")
        if bad := sorted(set(self.mapping.values()) - targets):
            raise ValueError(f"mapping to values that are not target values: {bad}")
        if self.target_labels.get(BACKGROUND) != 0:
            raise ValueError("target_labels must map 'background' to 0")
        if sorted(targets) != list(range(len(targets))):
            raise ValueError(f"target values must be consecutive from 0, got {sorted(targets)}")
        if IGNORE in self.target_labels and self.target_labels[IGNORE] != max(targets):
            raise ValueError("the 'ignore' target must be the highest target value")
        return self

    @property
    def num_classes(self) -> int:
        """Number of target values, background (and ignore) included."""
        return len(self.target_labels)

    def target_name(self, value: int) -> str:
        """Name of a target value."""
        for name, v in self.target_labels.items():
            if v == value:
                return name
        raise LabelSchemaError(self.name, f"no target label with value {value}")

    def source_name(self, value: int) -> str:
        """Name of a source value."""
        for name, v in self.source_labels.items():
            if v == value:
                return name
        raise LabelSchemaError(self.name, f"no source label with value {value}")


def builtin_schemas() -> list[str]:
    """Names of the schemas shipped with spine_lib.

    Example:
        >>> builtin_schemas()
        ['spider', 'spider_groups', 'spider_ignore_partial']
    """
    folder = resources.files(SCHEMA_PACKAGE)
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_label_schema(name_or_path: str | Path) -> LabelSchema:
    """Load a built-in schema by name (``"spider"``) or a schema YAML file by path.

    Args:
        name_or_path: a name from :func:`builtin_schemas`, or the path of a ``.yaml``/``.yml`` file.

    Returns:
        The validated schema.

    Raises:
        InputPathError: the YAML file does not exist.
        LabelSchemaError: neither a built-in name nor a YAML file, invalid YAML, or a malformed schema; the
            message names the file (or the built-in schema) and the cause.

    Example:
        SPIDER's targets: background 0, vertebrae 1-25, canal 26, discs 27-51. Partially visible vertebrae
        (100 + N) merge into vertebra N, or become ``ignore`` (the highest target) in ``spider_ignore_partial``:

        >>> spider = load_label_schema("spider")
        >>> spider.num_classes, spider.mapping[100], spider.mapping[201], spider.mapping[225], spider.mapping[103]
        (52, 26, 27, 51, 3)
        >>> ignore_partial = load_label_schema("spider_ignore_partial")
        >>> ignore_partial.target_name(ignore_partial.mapping[103]), ignore_partial.mapping[103]
        ('ignore', 52)

        A schema file is validated like a built-in one, and its errors name the file:

        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "discs.yaml"
        >>> schema = {"name": "discs", "source_labels": {"background": 0, "disc": 201},
        ...           "target_labels": {"background": 0, "disc": 1}, "mapping": {0: 0, 201: 2}}
        >>> _ = path.write_text(yaml.safe_dump(schema))
        >>> load_label_schema(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        spine_lib.errors.LabelSchemaError: .../discs.yaml: malformed label schema: ... not target values: [2]
    """
    text: str
    origin: str | Path
    as_path = Path(name_or_path)
    if isinstance(name_or_path, str) and as_path.suffix == "" and name_or_path in builtin_schemas():
        resource = resources.files(SCHEMA_PACKAGE) / f"{name_or_path}.yaml"
        text, origin = resource.read_text(encoding="utf-8"), f"built-in schema {name_or_path!r}"
    elif as_path.suffix.lower() in (".yaml", ".yml") or as_path.exists():
        if not as_path.is_file():
            raise InputPathError(as_path, "label schema file does not exist")
        text, origin = as_path.read_text(encoding="utf-8"), as_path
    else:
        raise LabelSchemaError(
            str(name_or_path), f"neither a built-in schema ({', '.join(builtin_schemas())}) nor a YAML file"
        )
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # C parser when built
    except yaml.YAMLError as error:
        raise LabelSchemaError(origin, f"invalid YAML: {error}") from error
    if not isinstance(data, dict):
        raise LabelSchemaError(origin, "a label schema must be a YAML mapping")
    try:
        return LabelSchema.model_validate(data)
    except ValidationError as error:
        causes = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'schema'}: {e['msg']}" for e in error.errors())
        raise LabelSchemaError(origin, f"malformed label schema: {causes}") from error


def lookup_table(mapping: dict[int, int]) -> tuple[npt.NDArray[np.integer], npt.NDArray[np.bool_]]:
    """The remapping as a dense table over 0..max(source) and a mask of which entries are defined."""
    size = max(mapping) + 1
    out_dtype = np.min_scalar_type(max(mapping.values()))
    table = np.zeros(size, dtype=out_dtype)
    known = np.zeros(size, dtype=bool)
    keys = np.fromiter(mapping.keys(), dtype=np.int64)
    table[keys] = np.fromiter(mapping.values(), dtype=np.int64)
    known[keys] = True
    return table, known


def remap_array(
    mask: npt.NDArray[Any], mapping: dict[int, int], source: str | Path | None = None
) -> npt.NDArray[np.integer]:
    """Remap an integer array through ``mapping``; unmapped values raise :class:`LabelSchemaError`."""
    return remap_array_with_counts(mask, mapping, source)[0]


def remap_array_with_counts(
    mask: npt.NDArray[Any], mapping: dict[int, int], source: str | Path | None = None
) -> tuple[npt.NDArray[np.integer], dict[int, int]]:
    """:func:`remap_array` plus the voxel count of every target value present (one histogram pass serves both
    the check for unmapped values and the counts)."""
    array = np.asarray(mask)
    if array.dtype.kind == "f":
        if not np.all(np.mod(array, 1) == 0):
            raise LabelSchemaError(source, "label mask holds non-integer values")
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iub":
        raise LabelSchemaError(source, f"label mask must hold integers, got {array.dtype}")
    table, known = lookup_table(mapping)
    if array.size == 0:
        return array.astype(table.dtype), {}
    if array.dtype.kind == "i" and int(array.min()) < 0:
        raise_unknown(np.unique(array[array < 0]), source)
    histogram = np.bincount(array.ravel())
    present = np.flatnonzero(histogram)
    unknown = present[(present >= table.size) | ~known[np.minimum(present, table.size - 1)]]
    if unknown.size:
        raise_unknown(unknown, source)
    counts: dict[int, int] = {}
    for value in present:
        target = int(table[value])
        counts[target] = counts.get(target, 0) + int(histogram[value])
    return table[array], counts


def raise_unknown(values: npt.NDArray[Any], source: str | Path | None) -> None:
    shown = ", ".join(str(int(v)) for v in values[:20])
    raise LabelSchemaError(source, f"label value(s) not in the schema's mapping: {shown}")


def remap_labels(
    mask: npt.NDArray[Any] | sitk.Image,
    mapping: dict[int, int] | LabelSchema,
    source: str | Path | None = None,
) -> Any:
    """Remap label values of a numpy array or a SimpleITK image (geometry kept) via a lookup table.

    ``mapping`` is a ``{source: target}`` dict or a :class:`LabelSchema`. ``source`` names the mask in error
    messages (e.g. its file path).

    Args:
        mask: an integer label array (floats holding whole numbers are accepted) or a SimpleITK image.
        mapping: ``{source value: target value}``, or a schema whose ``mapping`` is used.
        source: what the mask is (its file path), for error messages.

    Returns:
        The remapped array (the smallest unsigned type holding the targets), or an image with the
        geometry of ``mask``.

    Raises:
        LabelSchemaError: the mask holds a value the mapping does not list (never silently background), or
            values that are not integers.

    Example:
        >>> mask = np.array([[0, 201], [100, 102]], dtype=np.uint8)
        >>> remap_labels(mask, {0: 0, 100: 26, 102: 2, 201: 27})
        array([[ 0, 27],
               [26,  2]], dtype=uint8)
        >>> remap_labels(np.array([0, 7, 201]), {0: 0, 201: 27}, source="masks/1_t2.mha")
        Traceback (most recent call last):
            ...
        spine_lib.errors.LabelSchemaError: masks/1_t2.mha: label value(s) not in the schema's mapping: 7

        An image keeps its geometry:

        >>> image = sitk.GetImageFromArray(np.array([[[0, 201, 101]]], dtype=np.uint8))
        >>> image.SetSpacing((0.5, 0.5, 3.0))
        >>> remapped = remap_labels(image, load_label_schema("spider"))
        >>> sitk.GetArrayFromImage(remapped).tolist(), remapped.GetSpacing()
        ([[[0, 27, 1]]], (0.5, 0.5, 3.0))
    """
    table = mapping.mapping if isinstance(mapping, LabelSchema) else mapping
    if isinstance(mask, sitk.Image):
        result = sitk.GetImageFromArray(remap_array(sitk.GetArrayViewFromImage(mask), table, source))
        result.CopyInformation(mask)
        return result
    return remap_array(mask, table, source)

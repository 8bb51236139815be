"""SPIDER -> nnU-Net v2 raw dataset (``DatasetXXX_Name/{imagesTr,labelsTr,dataset.json}``).

Each SPIDER series ``images/<patient>_<sequence>.mha`` with its mask ``masks/<same name>`` becomes one case
``<patient>_<sequence>``: ``imagesTr/<case>_0000.nii.gz`` (the image, voxels and geometry unchanged) and
``labelsTr/<case>.nii.gz`` (the mask remapped through a label schema, on the image's grid). ``dataset.json``
lists the schema's consecutive targets. With the built-in ``spider`` schema the partially visible vertebrae
(101-125) are merged into their vertebra; ``spider_ignore_partial`` turns them into nnU-Net's ``ignore`` label.

The package is cut by stage: :mod:`.config`, :mod:`.cases` (finding the cases), :mod:`.convert` (the job),
:mod:`.audit` (checks); nnU-Net's files and the data version are spelt in :mod:`spine_lib.formats.nnunet`.

A case whose image or mask is not a 3-D volume of one value per voxel, whose image and mask disagree in
geometry, whose mask holds a value the schema does not map, whose mask is missing or whose files cannot be read
is rejected with a reason (``rejects.csv`` in the dataset folder), and so is every other entry of ``images/``
and ``masks/`` (a file of another format or name, a folder, a mask without an image); the others are converted.
An output path that cannot hold the dataset, or an input without a single series, fails before anything is
written; a run that converts no case leaves a previous dataset as it was.

Cases are converted in parallel processes that end with the job (a ``kill -9`` leaves no worker behind);
every file is written atomically, and the temporaries of an interrupted run are removed when the next one
starts. ``conversion_manifest.json`` in the dataset folder records each case's input fingerprint (size and
mtime of image and mask, schema, options) and result, so a rerun converts only the cases whose inputs changed
and removes the cases whose inputs disappeared.
"""

from spine_lib.datasets.nnunet.audit import check_images_have_labels, check_labels_consecutive
from spine_lib.datasets.nnunet.cases import CaseResult, CaseSource, find_cases, same_geometry
from spine_lib.datasets.nnunet.config import ConvertConfig
from spine_lib.datasets.nnunet.convert import ConversionReport, convert_case, convert_to_nnunet
from spine_lib.formats.nnunet import dataset_version, image_path, label_path, read_dataset_json

__all__ = [
    "CaseResult",
    "CaseSource",
    "ConversionReport",
    "ConvertConfig",
    "check_images_have_labels",
    "check_labels_consecutive",
    "convert_case",
    "convert_to_nnunet",
    "dataset_version",
    "find_cases",
    "image_path",
    "label_path",
    "main",
    "read_dataset_json",
    "same_geometry",
]


def main(config: ConvertConfig) -> ConversionReport:
    """The spec's entry point: convert the dataset."""
    return convert_to_nnunet(config)

"""The public API's docstrings: every example in them runs, and every public name documents its arguments.

Only the modules below are imported (not all of spine_lib: some modules need nnU-Net or torch). A job config's
``Args:`` section is made from its fields' help texts (``BaseConfig``), so it always matches its fields. Examples that
call ``tempfile.mkdtemp()`` write under the test's ``tmp_path``. The same examples also run with
``pytest --doctest-modules <module file>``.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
import tempfile
from pathlib import Path

import pytest

#: The public API that README.md's "Library at a glance" shows, and every job config, by the module that defines it.
PUBLIC_API: dict[str, tuple[str, ...]] = {
    "spine_assets.demo": ("DemoConfig",),
    "spine_lib.datasets.ivd_coords.config": ("IVDDatasetConfig",),
    "spine_lib.datasets.nnunet.config": ("ConvertConfig",),
    "spine_lib.datasets.phenikaa.config": ("PreprocessConfig",),
    "spine_lib.segmentation.training": ("SegmentationTrainConfig",),
    "spine_lib.synthetic.config": ("SynthConfig",),
    "spine_lib.training.config": ("LocalizationConfig", "ModelTestConfig", "TrainingConfig"),
    "spine_lib.visualization.segmentation_viewer": ("VisualizeConfig",),
    "spine_lib.core.checks": ("CheckOutcome",),
    "spine_lib.core.layout": ("DataLayout",),
    "spine_lib.core.markdown": ("markdown_list", "markdown_table"),
    "spine_lib.errors": ("SpineVisionError",),
    "spine_lib.io.readers": ("read_medical_image",),
    "spine_lib.io.records": ("read_records_csv", "write_records_csv"),
    "spine_lib.io.tabular": ("TabularData", "load_tabular_data"),
    "spine_lib.io.transforms": ("normalize_to_uint8",),
    "spine_lib.io.writers": ("write_medical_image",),
    "spine_lib.labels.mapping": ("LabelSchema", "builtin_schemas", "load_label_schema", "remap_labels"),
    "spine_lib.levels": (
        "check_level",
        "level_from_phenikaa_ivd_label",
        "level_from_spider_ivd_label",
        "phenikaa_ivd_label",
        "rsna_level_suffix",
        "spider_disc_value",
        "spider_ivd_label",
        "spider_vertebra_number",
        "vertebrae_of",
    ),
}
PUBLIC_NAMES = [f"{module}.{name}" for module, names in PUBLIC_API.items() for name in names]


def docstring_examples() -> list[doctest.DocTest]:
    """Every docstring holding examples in the modules of :data:`PUBLIC_API`, module docstrings included."""
    finder = doctest.DocTestFinder()
    found: list[doctest.DocTest] = []
    for module in PUBLIC_API:
        found += [test for test in finder.find(importlib.import_module(module)) if test.examples]
    return found


def documented_args(doc: str) -> set[str]:
    """The argument names of a Google-style ``Args:`` section (entries indented under the header)."""
    section = re.search(r"^Args:\n((?:[ \t]+\S.*\n|[ \t]*\n)*)", doc + "\n", re.MULTILINE)
    return set(re.findall(r"^ {4}(\w+):", section.group(1), re.MULTILINE)) if section else set()


def run_examples(test: doctest.DocTest) -> None:
    """Run one docstring's examples in a fresh namespace; fail with doctest's report if any fails."""
    fresh = doctest.DocTest(
        test.examples, dict(test.globs), test.name, test.filename, test.lineno, test.docstring
    )
    report: list[str] = []
    result = doctest.DocTestRunner().run(fresh, out=report.append)
    if result.failed:
        pytest.fail("".join(report), pytrace=False)


@pytest.mark.parametrize("example", docstring_examples(), ids=lambda test: test.name)
def test_docstring_example_runs(
    example: doctest.DocTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    run_examples(example)


@pytest.mark.parametrize("qualname", PUBLIC_NAMES)
def test_public_name_documents_args_and_example(qualname: str) -> None:
    module, name = qualname.rsplit(".", 1)
    obj = getattr(importlib.import_module(module), name)
    doc = inspect.getdoc(obj) or ""
    assert re.search(r"^Example:\n(?:.*\n)*?\s+>>> ", doc, re.MULTILINE), f"{qualname}: no Example: with >>>"
    assert documented_args(doc) == set(inspect.signature(obj).parameters), f"{qualname}: Args: != signature"


def test_documented_args_reads_google_style_sections() -> None:
    doc = "Summary.\n\nArgs:\n    path: the file.\n        More on path.\n\n    flag: a switch.\n\nReturns:\n    x: no arg."
    assert documented_args(doc) == {"path", "flag"}
    assert documented_args("Summary.\n\nReturns:\n    path: not an argument.") == set()


def test_failing_example_fails_with_expected_and_got() -> None:
    broken = doctest.DocTestParser().get_doctest(">>> 1 + 1\n3\n", {}, "broken", "broken.py", 0)
    with pytest.raises(pytest.fail.Exception, match=r"Expected:\n    3\nGot:\n    2"):
        run_examples(broken)

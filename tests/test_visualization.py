"""The slice viewer: traces, frames, legend names and colours, HTML output, batches and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk

from spine_lib.errors import ConfigError, MedicalImageError
from spine_lib.labels import load_label_schema
from spine_lib.visualization import PlotlyViewer
from spine_lib.visualization.plotly_viewer import IMAGE_TRACE, LABEL_TRACE, label_colour
from tests.conftest import make_volume


def labelled_pair() -> tuple[sitk.Image, sitk.Image]:
    """A 6-slice volume and a mask with a vertebra (1) on slices 1-4, a disc (27) on slice 2, the canal (26) on 3."""
    image = make_volume((6, 20, 16))
    labels = np.zeros((6, 20, 16), dtype=np.uint8)
    labels[1:5, 2:8, 3:9] = 1
    labels[2, 10:13, 4:10] = 27
    labels[3, 14:18, 12:15] = 26
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(image)
    return image, mask


def traces(figure: Any) -> list[Any]:
    """The figure's traces (plotly's own annotations confuse type checkers)."""
    return list(figure.data)


def test_figure_has_image_labels_legend_and_one_frame_per_slice() -> None:
    image, mask = labelled_pair()
    figure: Any = PlotlyViewer(output_mode="html").figure(image, mask, "case 1")
    names = [t.name for t in traces(figure)]
    assert names == [IMAGE_TRACE, LABEL_TRACE, "vertebra_1", "spinal_canal", "disc_1"]
    assert [t.marker.color for t in traces(figure)[2:]] == [label_colour(1), label_colour(26), label_colour(27)]
    assert len(figure.frames) == 6
    assert len(figure.layout.sliders[0].steps) == 6 and figure.layout.sliders[0].active == 3
    # the overlay of slice 2 shows the vertebra and the disc where the mask has them, nothing elsewhere
    overlay = np.array(figure.frames[2].data[1].z, dtype=float)
    labels = sitk.GetArrayFromImage(mask)[2]
    assert np.array_equal(np.isnan(overlay), labels == 0)
    assert set(np.unique(overlay[~np.isnan(overlay)]).tolist()) == {0.0, 2.0}  # indices of vertebra_1 and disc_1
    # the image frame is the slice itself, scaled to 0..255
    pixels = np.array(figure.frames[4].data[0].z)
    source = sitk.GetArrayFromImage(image)[4]
    assert pixels.shape == source.shape
    assert np.corrcoef(pixels.ravel(), source.ravel())[0, 1] > 0.95


def test_html_file_holds_the_traces(tmp_path: Path) -> None:
    image, mask = labelled_pair()
    path = PlotlyViewer(tmp_path, "html").visualize(image, mask, title="patient 7 / t2")
    assert path is not None and path == tmp_path / "patient_7_t2.html"
    html = path.read_text(encoding="utf-8")
    assert "plotly" in html.lower()
    for name in ("vertebra_1", "spinal_canal", "disc_1", LABEL_TRACE):
        assert f'"name":"{name}"' in html
    assert len(re.findall(r'"name":"\d+"', html)) >= 6  # the frames, named by slice
    assert not list(tmp_path.glob(".*tmp*"))


def test_labels_from_a_dataset_json_and_unknown_values() -> None:
    image, mask = labelled_pair()
    figure = PlotlyViewer(labels={"background": 0, "bone": 1, "canal": 26}).figure(image, mask)
    assert [t.name for t in traces(figure)[2:]] == ["bone", "canal", "label 27"]


def test_image_without_mask_has_only_the_image_trace() -> None:
    image, _ = labelled_pair()
    figure: Any = PlotlyViewer().figure(image, None)
    assert [t.name for t in traces(figure)] == [IMAGE_TRACE]
    assert len(figure.frames) == 6


def test_batch_writes_one_file_per_volume(tmp_path: Path) -> None:
    image, mask = labelled_pair()
    paths = PlotlyViewer(tmp_path, "html").visualize_batch([image, image], [mask, None], ["a", "b"])
    assert paths == [tmp_path / "a.html", tmp_path / "b.html"]
    first, second = (Path(str(p)) for p in paths)
    assert '"name":"disc_1"' in first.read_text() and '"name":"disc_1"' not in second.read_text()
    with pytest.raises(ConfigError):
        PlotlyViewer(tmp_path).visualize_batch([image], [mask, mask])


def test_bad_input_is_refused() -> None:
    image, _ = labelled_pair()
    with pytest.raises(ConfigError, match="output mode"):
        PlotlyViewer(output_mode="pdf")  # type: ignore[arg-type]
    small = sitk.GetImageFromArray(np.zeros((6, 10, 16), dtype=np.uint8))
    with pytest.raises(MedicalImageError, match="differs"):
        PlotlyViewer().figure(image, small)


def test_schema_colours_are_distinct_for_neighbouring_labels() -> None:
    schema = load_label_schema("spider")
    lumbar = [schema.target_labels[n] for n in ("vertebra_1", "vertebra_2", "spinal_canal", "disc_1", "disc_2")]
    assert len({label_colour(v) for v in lumbar}) == len(lumbar)
    assert json.dumps([label_colour(v) for v in lumbar])  # plain strings

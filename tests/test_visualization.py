"""The slice viewer: traces, frames, legend names and colours, HTML output, batches and bad input."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest
import SimpleITK as sitk

from spine_lib.errors import ConfigError, MedicalImageError
from spine_lib.labels import load_label_schema
from spine_lib.levels import LEVELS, VERTEBRAE, spider_ivd_label, spider_vertebra_number
from spine_lib.visualization import PlotlyViewer
from spine_lib.visualization.plotly_viewer import IMAGE_TRACE, LABEL_TRACE
from tests.conftest import make_volume

HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
#: CIE76 colour difference above which two colours read as different ones, not shades (2.3 is barely noticeable)
DISTINCT_DELTA_E = 20.0


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


def legend_colours(figure: Any) -> dict[str, str]:
    """Legend entry name -> its marker colour."""
    return {t.name: t.marker.color for t in traces(figure)[2:]}


def colour_at(trace: Any, value: float) -> str:
    """The colour a heatmap trace paints ``value`` with: the stop of its colour scale at that value's position,
    which must not be a blend of two colours (the stops on both sides agree)."""
    position = (value - trace.zmin) / (trace.zmax - trace.zmin)
    below = [colour for at, colour in trace.colorscale if at <= position]
    above = [colour for at, colour in trace.colorscale if at >= position]
    assert below and above and below[-1] == above[0], (value, trace.colorscale)
    return str(below[-1])


def lab(colour: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of a ``#rrggbb`` sRGB colour."""
    srgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in srgb)
    xyz = ((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b,
           (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883)
    fx, fy, fz = (t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116 for t in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def delta_e(first: str, second: str) -> float:
    """CIE76 difference of two colours."""
    return math.dist(lab(first), lab(second))


def spider_lumbar_names() -> tuple[list[str], list[str]]:
    """The spider schema's target names of the lumbar vertebrae with the sacrum (top-down: L1 .. S1) and of the
    lumbar discs (top-down: L1/L2 .. L5/S1), from SPIDER's bottom-up numbering."""
    return ([f"vertebra_{spider_vertebra_number(v)}" for v in VERTEBRAE],
            [f"disc_{spider_ivd_label(level)}" for level in LEVELS])


def lumbar_neighbours() -> list[tuple[str, str]]:
    """Structures that touch on a lumbar sagittal view: consecutive vertebrae, each disc with the vertebrae above
    and below it and with the next disc, and the canal with every vertebra and disc."""
    vertebrae, discs = spider_lumbar_names()
    pairs = list(itertools.pairwise(vertebrae)) + list(itertools.pairwise(discs))
    pairs += [(disc, vertebra) for i, disc in enumerate(discs) for vertebra in vertebrae[i : i + 2]]
    pairs += [("spinal_canal", name) for name in vertebrae + discs]
    return pairs


def lumbar_figure() -> Any:
    """A figure whose mask holds every lumbar structure of the spider schema, each in a square of its own."""
    schema = load_label_schema("spider")
    vertebrae, discs = spider_lumbar_names()
    values = [schema.target_labels[name] for name in (*vertebrae, *discs, "spinal_canal")]
    image = make_volume((2, 16, 12))
    array = np.zeros((2, 16, 12), dtype=np.uint8)
    for n, value in enumerate(values):
        row, column = divmod(n, 3)
        array[:, 4 * row : 4 * row + 3, 4 * column : 4 * column + 3] = value
    mask = sitk.GetImageFromArray(array)
    mask.CopyInformation(image)
    return PlotlyViewer(labels="spider").figure(image, mask)


def test_figure_has_image_labels_legend_and_one_frame_per_slice() -> None:
    image, mask = labelled_pair()
    figure: Any = PlotlyViewer(output_mode="html").figure(image, mask, "case 1")
    names = [t.name for t in traces(figure)]
    assert names == [IMAGE_TRACE, LABEL_TRACE, "vertebra_1", "spinal_canal", "disc_1"]
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


def test_a_label_has_the_legend_colour_in_every_frame_and_background_is_not_drawn() -> None:
    image, mask = labelled_pair()
    figure: Any = PlotlyViewer().figure(image, mask)
    legend = legend_colours(figure)
    assert len(set(legend.values())) == len(legend) == 3  # one entry per label present, no background entry
    names = {1: "vertebra_1", 26: "spinal_canal", 27: "disc_1"}
    labels = sitk.GetArrayFromImage(mask)
    for k, frame in enumerate(figure.frames):
        overlay = frame.data[1]
        z = np.array(overlay.z, dtype=float)
        assert np.array_equal(np.isnan(z), labels[k] == 0), k  # background is transparent (not drawn)
        for value in np.unique(labels[k][labels[k] > 0]).tolist():
            drawn = np.unique(z[labels[k] == value])
            assert len(drawn) == 1, (k, value)
            assert colour_at(overlay, float(drawn[0])) == legend[names[value]], (k, value)


def test_colours_are_hex_colours_plotly_accepts() -> None:
    for name, colour in legend_colours(lumbar_figure()).items():
        assert isinstance(colour, str) and HEX_COLOUR.fullmatch(colour), (name, colour)
        go.Scatter(marker={"color": colour})  # plotly's own validation refuses what it cannot draw


def test_a_label_value_keeps_its_colour_across_figures_and_schemas() -> None:
    image, mask = labelled_pair()
    full = legend_colours(PlotlyViewer().figure(image, mask))
    canal_only = sitk.GetImageFromArray((sitk.GetArrayFromImage(mask) == 26).astype(np.uint8) * 26)
    canal_only.CopyInformation(image)
    alone = legend_colours(PlotlyViewer(labels={"background": 0, "canal": 26}).figure(image, canal_only))
    assert alone == {"canal": full["spinal_canal"]}  # first and only entry here, second one above
    renamed = legend_colours(PlotlyViewer(labels=None).figure(image, mask))
    assert renamed == {"label 1": full["vertebra_1"], "label 26": full["spinal_canal"], "label 27": full["disc_1"]}


def test_colour_difference_of_reference_colours() -> None:
    """The helper below against published CIE L*a*b* values of sRGB white, red and mid grey."""
    np.testing.assert_allclose(lab("#ffffff"), (100.0, 0.0, 0.0), atol=0.05)
    np.testing.assert_allclose(lab("#ff0000"), (53.24, 80.09, 67.20), atol=0.05)
    np.testing.assert_allclose(lab("#808080"), (53.59, 0.0, 0.0), atol=0.05)
    assert delta_e("#000000", "#ffffff") == pytest.approx(100.0, abs=0.05)


@pytest.mark.parametrize("pair", lumbar_neighbours(), ids="-".join)
def test_neighbouring_lumbar_structures_have_visibly_different_colours(pair: tuple[str, str]) -> None:
    colours = legend_colours(lumbar_figure())
    first, second = pair
    assert delta_e(colours[first], colours[second]) > DISTINCT_DELTA_E, (pair, colours[first], colours[second])

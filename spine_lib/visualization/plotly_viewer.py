"""An interactive slice viewer: an image with its label mask overlaid, a slider over slices, a legend of labels.

One figure per volume: a grey heatmap of the image, one heatmap of the labels (background transparent, each label
in its own colour) and one legend entry per label present, named from the label schema. Slices are animation
frames driven by a slider. Output: an HTML file (self-contained), a PNG of the middle slice, or the browser.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from spine_lib.errors import ConfigError, MedicalImageError
from spine_lib.io.atomic import atomic_path
from spine_lib.io.transforms import normalize_to_uint8

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from spine_lib.labels import LabelSchema

OutputMode = Literal["browser", "html", "image"]
IMAGE_TRACE = "image"
LABEL_TRACE = "labels"
#: Distinct colours, cycled by label value. 27 of them, ordered so that the lumbar structures of the spider schema
#: that touch (consecutive vertebrae 1-6 and discs 27-31, each disc and its two vertebrae, the canal 26 and all of
#: them) are at least 60 CIE76 units apart; no two of those values are a multiple of 27 apart.
PALETTE = [
    "#800000", "#3cb44b", "#4363d8", "#e6194b", "#bcf60c", "#fabebe", "#ffd8b1", "#42d4f4", "#911eb4", "#008080",
    "#808000", "#fffac8", "#dcbeff", "#469990", "#9a6324", "#ffffff", "#f58231", "#f032e6", "#e6beff", "#000075",
    "#ffe119", "#f0e442", "#aaffc3", "#46f0f0", "#0072b2", "#000000", "#a9a9a9",
]


def label_colour(value: int) -> str:
    return PALETTE[(value - 1) % len(PALETTE)]


def slug(text: str) -> str:
    """A file-name-safe version of a title."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "volume"


class PlotlyViewer:
    """Write (or show) slice-by-slice views of images with their segmentations.

    ``labels`` names label values: a schema name (``"spider"``), a :class:`LabelSchema`, a ``{name: value}``
    dict (e.g. an nnU-Net dataset.json's labels), or None (values shown as numbers).
    """

    def __init__(
        self,
        output_path: Path = Path("results/segmentation"),
        output_mode: OutputMode = "html",
        labels: str | LabelSchema | dict[str, int] | None = "spider",
        opacity: float = 0.45,
        max_size: int = 512,
    ) -> None:
        if output_mode not in ("browser", "html", "image"):
            raise ConfigError("output_mode", f"unknown output mode {output_mode!r}: use browser, html or image")
        self.output_path = Path(output_path)
        self.output_mode = output_mode
        self.label_names = self._label_names(labels)
        self.opacity = opacity
        self.max_size = max_size

    @staticmethod
    def _label_names(labels: str | LabelSchema | dict[str, int] | None) -> dict[int, str]:
        from spine_lib.labels import LabelSchema, load_label_schema

        if labels is None:
            return {}
        if isinstance(labels, str):
            labels = load_label_schema(labels)
        targets = labels.target_labels if isinstance(labels, LabelSchema) else labels
        return {int(v): name for name, v in targets.items()}

    def figure(self, image: sitk.Image, mask: sitk.Image | None = None, title: str = "Segmentation") -> go.Figure:
        """The figure: image and label heatmaps, one frame per slice (last image axis), legend of labels present."""
        import plotly.graph_objects as go

        volume, labels, spacing = self._arrays(image, mask)
        slices = volume.shape[0]
        present = [int(v) for v in np.unique(labels) if v != 0] if labels is not None else []
        index_of = {v: i for i, v in enumerate(present)}
        colours = [label_colour(v) for v in present]
        lut = np.full(int(max(present, default=0)) + 1, np.nan)
        for v, i in index_of.items():
            lut[v] = i

        def frame_data(k: int) -> list[Any]:
            data: list[Any] = [go.Heatmap(z=volume[k], colorscale="gray", showscale=False, name=IMAGE_TRACE,
                                          dx=spacing[0], dy=spacing[1], zmin=0, zmax=255, hoverinfo="skip")]
            if labels is not None and present:
                overlay = lut[labels[k]]
                names = np.vectorize(lambda v: self.name_of(int(v)) if v else "", otypes=[object])(labels[k])
                scale = [item for i, c in enumerate(colours)
                         for item in ((i / len(colours), c), ((i + 1) / len(colours), c))]
                data.append(go.Heatmap(z=overlay, colorscale=scale, zmin=-0.5, zmax=len(colours) - 0.5,
                                       showscale=False, opacity=self.opacity, name=LABEL_TRACE, dx=spacing[0],
                                       dy=spacing[1], customdata=names, hovertemplate="%{customdata}<extra></extra>"))
            return data

        legend = [go.Scatter(x=[None], y=[None], mode="markers", marker={"size": 10, "color": c, "symbol": "square"},
                             name=self.name_of(v), showlegend=True, legendgroup=str(v))
                  for v, c in zip(present, colours, strict=True)]
        middle = slices // 2
        frames = [go.Frame(data=frame_data(k), name=str(k), traces=list(range(2 if present else 1)))
                  for k in range(slices)]
        figure = go.Figure(data=[*frame_data(middle), *legend], frames=frames)
        steps = [{"label": str(k), "method": "animate",
                  "args": [[str(k)], {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
                                      "transition": {"duration": 0}}]} for k in range(slices)]
        figure.update_layout(
            title=title, sliders=[{"active": middle, "steps": steps, "currentvalue": {"prefix": "slice "}}],
            yaxis={"autorange": "reversed", "scaleanchor": "x", "showgrid": False, "title": "mm"},
            xaxis={"showgrid": False, "title": "mm"}, legend={"title": {"text": "labels"}},
            plot_bgcolor="black", margin={"l": 40, "r": 20, "t": 50, "b": 40},
        )
        return figure

    def name_of(self, value: int) -> str:
        return self.label_names.get(value, f"label {value}")

    def _arrays(self, image: sitk.Image, mask: sitk.Image | None) -> tuple[
        npt.NDArray[np.uint8], npt.NDArray[np.int64] | None, tuple[float, float]
    ]:
        if image.GetDimension() != 3:
            raise MedicalImageError("image", f"the viewer shows 3D images, got {image.GetDimension()}D")
        if mask is not None and mask.GetSize() != image.GetSize():
            raise MedicalImageError("mask", f"size {mask.GetSize()} differs from the image's {image.GetSize()}")
        volume = normalize_to_uint8(sitk.GetArrayFromImage(image), percentiles=(0.5, 99.5))
        labels = sitk.GetArrayFromImage(mask).astype(np.int64) if mask is not None else None
        step = max(1, int(np.ceil(max(volume.shape[1:]) / self.max_size)))
        spacing = (image.GetSpacing()[0] * step, image.GetSpacing()[1] * step)
        volume = volume[:, ::step, ::step]
        if labels is not None:
            labels = labels[:, ::step, ::step]
        return volume, labels, spacing

    def visualize(self, image: sitk.Image, mask: sitk.Image | None = None, title: str = "Segmentation") -> Path | None:
        """Write ``<output_path>/<title>.html`` (or ``.png`` of the middle slice), or open it in the browser.

        Returns the written file (None in browser mode).
        """
        figure = self.figure(image, mask, title)
        if self.output_mode == "browser":
            figure.show()
            return None
        suffix = ".html" if self.output_mode == "html" else ".png"
        target = self.output_path / f"{slug(title)}{suffix}"
        with atomic_path(target) as tmp:
            if self.output_mode == "html":
                figure.write_html(str(tmp), include_plotlyjs=True, auto_play=False, full_html=True)
            else:
                try:
                    figure.write_image(str(tmp), format="png")
                except Exception as error:  # kaleido needs a Chrome; say so instead of a traceback
                    raise ConfigError("output_mode", f"static image export failed ({error}); use --output-mode html") from error
        return target

    def visualize_batch(
        self,
        images: Sequence[sitk.Image],
        masks: Sequence[sitk.Image | None] | None = None,
        titles: Sequence[str] | None = None,
    ) -> list[Path | None]:
        """:meth:`visualize` each image (with its mask and title, when given)."""
        masks = list(masks) if masks is not None else [None] * len(images)
        titles = list(titles) if titles is not None else [f"volume_{i:03d}" for i in range(len(images))]
        if not len(images) == len(masks) == len(titles):
            raise ConfigError("batch", f"{len(images)} images, {len(masks)} masks and {len(titles)} titles")
        return [self.visualize(i, m, t) for i, m, t in zip(images, masks, titles, strict=True)]

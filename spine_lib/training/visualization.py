"""Training plots: loss/metric curves, predictions drawn on images, error distributions (plotly).

``output_mode="html"`` writes standalone pages (plotly.js written once beside them, so they open offline);
``"image"`` writes PNGs through kaleido (needs a Chrome/Chromium). With a wandb run the figures are logged too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from spine_lib.io.atomic import atomic_path
from spine_lib.levels import IDX_TO_LEVEL

TARGET_COLOR = "#2ca02c"
PREDICTION_COLOR = "#d62728"


class TrainingVisualizer:
    """Writes figures under ``output_path`` and, when a wandb run is given (or ``use_wandb``), logs them."""

    def __init__(self, output_path: Path, output_mode: Literal["html", "image"] = "html", use_wandb: bool = False,
                 wandb_run: Any = None) -> None:
        self.output_path = Path(output_path)
        self.output_mode = output_mode
        self.wandb_run = wandb_run
        if use_wandb and wandb_run is None:
            import wandb

            self.wandb_run = wandb.run

    def save(self, figure: Any, name: str) -> Path:
        """Write ``figure`` as ``<name>.html`` or ``<name>.png``; log it to wandb when a run is active."""
        self.output_path.mkdir(parents=True, exist_ok=True)
        if self.output_mode == "image":
            path = self.output_path / f"{name}.png"
            with atomic_path(path) as tmp:
                figure.write_image(str(tmp))
        else:
            path = self.output_path / f"{name}.html"
            with atomic_path(path) as tmp:
                figure.write_html(str(tmp), include_plotlyjs="directory", full_html=True)
        if self.wandb_run is not None:
            self.wandb_run.log({name: figure})
        return path

    def training_curves_figure(self, history: Mapping[str, Sequence[float]]) -> Any:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        epochs = list(history.get("epoch", range(1, len(history.get("train_loss", [])) + 1)))
        metric_keys = [k for k in history if k not in ("epoch", "train_loss", "val_loss", "lr") and "/" not in k
                       and k != "count"]
        figure = make_subplots(rows=1, cols=3, subplot_titles=("Loss", "Validation metrics", "Learning rate"))
        for key in ("train_loss", "val_loss"):
            if key in history:
                figure.add_trace(go.Scatter(x=epochs, y=list(history[key]), name=key, mode="lines+markers"), 1, 1)
        for key in metric_keys:
            figure.add_trace(go.Scatter(x=epochs, y=list(history[key]), name=key, mode="lines"), 1, 2)
        if "lr" in history:
            figure.add_trace(go.Scatter(x=epochs, y=list(history["lr"]), name="lr", mode="lines"), 1, 3)
        figure.update_yaxes(type="log", row=1, col=1)
        figure.update_xaxes(title_text="epoch")
        figure.update_layout(title="Training curves", height=420, width=1300)
        return figure

    def plot_training_curves(self, history: Mapping[str, Sequence[float]], name: str = "training_curves") -> Path:
        return self.save(self.training_curves_figure(history), name)

    def head_curves_figure(self, history: Mapping[str, Sequence[float]],
                           metric: str = "balanced_accuracy") -> Any:
        """One validation curve per head or output (``<head>/<metric>`` keys of the history), baselines dashed."""
        import plotly.graph_objects as go

        epochs = list(history.get("epoch", []))
        figure = go.Figure()
        for key in sorted(k for k in history if k.endswith(f"/{metric}") and "/baseline_" not in k):
            head = key.rsplit("/", 1)[0]
            figure.add_trace(go.Scatter(x=epochs, y=list(history[key]), name=head, mode="lines"))
            baseline = history.get(f"{head}/baseline_{metric}")
            if baseline is not None:
                figure.add_trace(go.Scatter(x=epochs, y=list(baseline), name=f"{head} baseline", mode="lines",
                                            line={"dash": "dash"}, opacity=0.5))
        figure.update_layout(title=f"Validation {metric.replace('_', ' ')} per head (dashed: majority baseline)",
                             xaxis_title="epoch", yaxis_title=metric, height=460, width=900)
        return figure

    def plot_head_curves(self, history: Mapping[str, Sequence[float]], metric: str = "balanced_accuracy",
                         name: str = "head_curves") -> Path:
        return self.save(self.head_curves_figure(history, metric), name)

    def confusion_figure(self, matrix: np.ndarray, title: str, labels: Sequence[str] | None = None) -> Any:
        """A confusion matrix (rows: truth, columns: prediction) as an annotated heatmap."""
        import plotly.graph_objects as go

        matrix = np.asarray(matrix)
        names = list(labels) if labels is not None else [str(i) for i in range(matrix.shape[0])]
        figure = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", text=matrix,
                                      texttemplate="%{text}", showscale=False))
        figure.update_layout(title=title, xaxis_title="predicted", yaxis_title="true", height=360, width=420,
                             yaxis={"autorange": "reversed"})
        return figure

    def plot_confusion_matrices(self, matrices: Mapping[str, np.ndarray],
                                labels: Mapping[str, Sequence[str]] | None = None) -> dict[str, Path]:
        """One figure per head or output: ``confusion_<name>``; returns their paths by name."""
        return {f"confusion_{name}": self.save(self.confusion_figure(m, name, (labels or {}).get(name)),
                                                f"confusion_{name.replace('/', '_')}")
                for name, m in matrices.items()}

    def plot_predictions(self, images: Sequence[np.ndarray], predictions: Any, targets: Any | None = None,
                         levels: Sequence[int | str] | None = None, name: str = "predictions",
                         max_images: int = 12, columns: int = 4) -> Path:
        """Images (2-D uint8) with the predicted point (red x) and the target (green o), relative coordinates."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        count = min(len(images), max_images)
        rows = max(1, -(-count // columns))
        pred = np.asarray(predictions, dtype=np.float64).reshape(-1, 2)
        targ = None if targets is None else np.asarray(targets, dtype=np.float64).reshape(-1, 2)
        titles = [self._level_name(levels[i]) if levels is not None else f"#{i}" for i in range(count)]
        figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.02,
                               vertical_spacing=0.06)
        for i in range(count):
            image = np.asarray(images[i])
            height, width = image.shape[:2]
            row, col = i // columns + 1, i % columns + 1
            figure.add_trace(go.Heatmap(z=image, colorscale="gray", showscale=False, hoverinfo="skip"), row, col)
            figure.add_trace(go.Scatter(x=[pred[i, 0] * width], y=[pred[i, 1] * height], mode="markers",
                                        marker={"symbol": "x", "size": 9, "color": PREDICTION_COLOR},
                                        name="prediction", showlegend=i == 0), row, col)
            if targ is not None:
                figure.add_trace(go.Scatter(x=[targ[i, 0] * width], y=[targ[i, 1] * height], mode="markers",
                                            marker={"symbol": "circle-open", "size": 11, "color": TARGET_COLOR},
                                            name="target", showlegend=i == 0), row, col)
            figure.update_yaxes(autorange="reversed", scaleanchor=f"x{i + 1 if i else ''}", showticklabels=False,
                                row=row, col=col)
            figure.update_xaxes(showticklabels=False, row=row, col=col)
        figure.update_layout(title=name.replace("_", " "), height=260 * rows + 60, width=260 * columns)
        return self.save(figure, name)

    def plot_multi_points(self, image: np.ndarray, points: Any, levels: Sequence[int | str], name: str) -> Path:
        """One image with several predicted points (relative coordinates), each labelled with its level."""
        import plotly.graph_objects as go

        height, width = image.shape[:2]
        xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        figure = go.Figure(go.Heatmap(z=image, colorscale="gray", showscale=False, hoverinfo="skip"))
        figure.add_trace(go.Scatter(x=xy[:, 0] * width, y=xy[:, 1] * height, mode="markers+text",
                                    text=[self._level_name(level) for level in levels], textposition="middle right",
                                    marker={"symbol": "x", "size": 10, "color": PREDICTION_COLOR},
                                    textfont={"color": PREDICTION_COLOR}))
        figure.update_yaxes(autorange="reversed", scaleanchor="x")
        figure.update_layout(title=name, width=600, height=620, showlegend=False)
        return self.save(figure, name)

    def plot_error_distribution(self, predictions: Any, targets: Any, levels: Sequence[int | str] | None = None,
                                image_size: tuple[int, int] = (224, 224), name: str = "error_distribution") -> Path:
        """Histogram of pixel errors (at ``image_size``) and a box per level."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        pred = np.asarray(predictions, dtype=np.float64).reshape(-1, 2)
        targ = np.asarray(targets, dtype=np.float64).reshape(-1, 2)
        height, width = image_size
        errors = np.hypot((pred[:, 0] - targ[:, 0]) * width, (pred[:, 1] - targ[:, 1]) * height)
        figure = make_subplots(rows=1, cols=2, subplot_titles=("Error (px)", "Error per level (px)"))
        figure.add_trace(go.Histogram(x=errors, nbinsx=40, name="all"), 1, 1)
        if levels is not None:
            names = [self._level_name(level) for level in levels]
            for level in sorted(set(names)):
                figure.add_trace(go.Box(y=errors[np.array([n == level for n in names])], name=level), 1, 2)
        figure.update_layout(title=f"Localization error at {width}x{height}", height=420, width=1100, showlegend=False)
        return self.save(figure, name)

    @staticmethod
    def _level_name(level: int | str) -> str:
        return IDX_TO_LEVEL.get(int(level), str(level)) if isinstance(level, int | np.integer) else str(level)

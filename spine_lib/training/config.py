"""Configurations of training and model testing (pure pydantic: importing them never imports torch).

The CLI (``spine-vision train localization``, ``spine-vision test``) and the Dagster assets build these; the
trainers in :mod:`spine_lib.training.trainers` consume them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import tyro
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from spine_lib.core.config import BaseConfig
from spine_lib.core.layout import DEFAULT_LAYOUT, DataLayout
from spine_lib.formats.classification import SOURCES

SchedulerType = Literal["cosine", "step", "plateau", "none"]
LossType = Literal["mse", "smooth_l1", "huber"]
HeadType = Literal["mlp", "linear", "attention", "residual", "conv", "heatmap"]
Task = Literal["localization", "classification", "mtl_classification"]

#: ConvNeXt variant names -> timm model names. ``atto``/``femto``/``pico``/``nano`` are the CPU-sized ones.
CONVNEXT_VARIANTS: dict[str, str] = {
    "atto": "convnext_atto",
    "femto": "convnext_femto",
    "pico": "convnext_pico",
    "nano": "convnext_nano",
    "tiny": "convnext_tiny",
    "small": "convnext_small",
    "base": "convnext_base",
    "large": "convnext_large",
    "xlarge": "convnext_xlarge",
    "v2_atto": "convnextv2_atto",
    "v2_femto": "convnextv2_femto",
    "v2_pico": "convnextv2_pico",
    "v2_nano": "convnextv2_nano",
    "v2_tiny": "convnextv2_tiny",
    "v2_small": "convnextv2_small",
    "v2_base": "convnextv2_base",
    "v2_large": "convnextv2_large",
    "v2_huge": "convnextv2_huge",
}
#: The point kinds of the IVD coordinates dataset that lie at a disc on the mid-sagittal slice (RSNA's canal point;
#: a pretraining picture's disc point): what the disc detector learns by default.
DISC_POINT_KINDS: tuple[str, ...] = ("canal", "disc")
#: Vision Transformer variants -> timm model names.
VIT_VARIANTS: dict[str, str] = {
    "tiny": "vit_tiny_patch16_224",
    "small": "vit_small_patch16_224",
    "base": "vit_base_patch16_224",
    "large": "vit_large_patch16_224",
}
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def new_run_id() -> str:
    """A sortable, unique-enough run identifier: ``20261126-174212-3fa9c1``."""
    import uuid

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


class HeadConfig(BaseModel):
    """The prediction head on top of a backbone: its type, hidden sizes, dropout, activations."""

    model_config = ConfigDict(extra="forbid")

    head_type: HeadType = "mlp"
    hidden_dims: list[int] = Field(default_factory=lambda: [256])
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    activation: Literal["gelu", "relu", "silu", "tanh"] = "gelu"
    use_layer_norm: bool = True
    output_activation: Literal["none", "sigmoid", "softmax", "tanh"] = "none"
    num_heads: int = Field(default=4, ge=1, description="Attention heads (head_type='attention').")
    num_blocks: int = Field(default=2, ge=1, description="Residual blocks (head_type='residual').")


class TrainingConfig(BaseConfig):
    """What every training run shares: data, output, optimisation, schedule, early stopping, device, tracking.

    The best checkpoint is the epoch that scores best on the validation split. A split that leaves validation
    empty (a dataset of one study or patient, or ``val_fraction=0``) still trains, with a warning: its best model
    is then the epoch of lowest training loss, the result says so (``validation: none``), and
    ``<weights>/<task>/latest.json`` keeps pointing at the previous validated run, so that nothing downstream
    picks up a model no held-out data has scored.

    Example:
        >>> run = TrainingConfig(task="demo", run_id="r1", weights_path=Path("/srv/weights")).resolved()
        >>> run.output_path  # <weights>/<task>/<run_id>
        PosixPath('/srv/weights/demo/r1')
    """

    task: Annotated[str, tyro.conf.arg(help="Task name; output goes to <weights-path>/<task>/<run_id>.")] = "base"
    data_path: Annotated[Path, tyro.conf.arg(help="Training dataset folder.")] = DEFAULT_LAYOUT.processed
    output_path: Annotated[
        Path | None, tyro.conf.arg(help="Training output folder (default <weights-path>/<task>/<run_id>).")
    ] = None
    weights_path: Annotated[Path, tyro.conf.arg(help="Root of the weights folders.")] = DEFAULT_LAYOUT.weights
    run_id: Annotated[str | None, tyro.conf.arg(help="Unique run identifier (auto-generated).")] = None
    resume_from: Annotated[Path | None, tyro.conf.arg(help="Checkpoint (.pt) to resume training from.")] = None
    seed: Annotated[int, tyro.conf.arg(help="Seed of weights init, shuffling, augmentation, splits.")] = 42

    batch_size: Annotated[int, tyro.conf.arg(help="Training batch size.")] = Field(default=32, ge=1)
    num_epochs: Annotated[int, tyro.conf.arg(help="Number of training epochs.")] = Field(default=100, ge=1)
    learning_rate: Annotated[float, tyro.conf.arg(help="Peak learning rate (AdamW).")] = Field(default=1e-4, gt=0)
    weight_decay: Annotated[float, tyro.conf.arg(help="AdamW weight decay.")] = Field(default=1e-4, ge=0)
    scheduler_type: Annotated[SchedulerType, tyro.conf.arg(help="Learning-rate schedule.")] = "cosine"
    warmup_epochs: Annotated[int, tyro.conf.arg(help="Linear warm-up epochs (cosine only).")] = Field(default=0, ge=0)
    step_size: Annotated[int, tyro.conf.arg(help="Epochs between decays (step scheduler).")] = Field(default=30, ge=1)
    gamma: Annotated[float, tyro.conf.arg(help="Decay factor (step and plateau schedulers).")] = 0.1
    min_lr: Annotated[float, tyro.conf.arg(help="Floor of the cosine/plateau schedules.")] = 1e-7
    grad_clip_norm: Annotated[float | None, tyro.conf.arg(help="Clip gradients to this norm.")] = 1.0
    freeze_backbone_epochs: Annotated[int, tyro.conf.arg(help="Epochs to keep the backbone frozen.")] = Field(
        default=0, ge=0
    )

    early_stopping: Annotated[
        bool, tyro.conf.arg(help="Stop once the checkpoint metric has not improved for --patience epochs.")
    ] = True
    patience: Annotated[int, tyro.conf.arg(help="Early stopping patience (epochs).")] = Field(default=20, ge=1)
    min_delta: Annotated[float, tyro.conf.arg(help="Smallest change that counts as an improvement.")] = 0.0
    max_train_minutes: Annotated[
        float | None,
        tyro.conf.arg(help="Training time limit: no epoch starts that would end past it at the mean epoch time; "
                      "the cosine schedule spans the epochs that fit."),
    ] = None
    save_every: Annotated[int, tyro.conf.arg(help="Write checkpoint_epoch_N.pt every N epochs (0: never).")] = Field(
        default=0, ge=0
    )

    device: Annotated[str, tyro.conf.arg(help="auto, cpu, cuda or cuda:N.")] = "auto"
    mixed_precision: Annotated[
        bool, tyro.conf.arg(help="Train in fp16 mixed precision (CUDA only, via Accelerate).")
    ] = True
    num_workers: Annotated[int, tyro.conf.arg(help="DataLoader worker processes.")] = Field(default=0, ge=0)

    visualize_predictions: Annotated[
        bool, tyro.conf.arg(help="Write prediction plots every --visualize-every epochs.")
    ] = True
    visualize_every: Annotated[int, tyro.conf.arg(help="Epochs between prediction plots.")] = Field(default=10, ge=1)
    output_mode: Annotated[Literal["html", "image"], tyro.conf.arg(help="Plot format (image needs kaleido).")] = "html"

    use_wandb: Annotated[bool, tyro.conf.arg(help="Log to Weights & Biases.")] = False
    wandb_mode: Annotated[Literal["offline", "online"], tyro.conf.arg(help="wandb mode when enabled.")] = "offline"
    wandb_project: Annotated[str, tyro.conf.arg(help="wandb project name.")] = "spine-vision"
    wandb_run_name: Annotated[str | None, tyro.conf.arg(help="wandb run name (default: the run id).")] = None
    wandb_tags: Annotated[list[str], tyro.conf.arg(help="wandb tags.")] = Field(default_factory=list)

    @classmethod
    def layout_paths(cls, layout: DataLayout) -> dict[str, Path]:
        return {"weights_path": layout.weights}

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, value: str | None) -> str | None:
        if value is not None and not _RUN_ID.match(value):
            raise ValueError(f"run id {value!r} must be letters, digits, '.', '_' or '-' (it names a folder)")
        return value

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> TrainingConfig:
        val, test = getattr(self, "val_fraction", 0.0), getattr(self, "test_fraction", 0.0)
        if val + test >= 1:
            raise ValueError(f"val_fraction + test_fraction must be below 1 (got {val} + {test}): "
                             "nothing would be left to train on")
        return self

    def resolved(self) -> TrainingConfig:
        """A copy with ``run_id`` and ``output_path`` filled in (what the trainer runs and saves)."""
        run_id = self.run_id or new_run_id()
        output = self.output_path or self.weights_path / self.task / run_id
        return self.model_copy(update={"run_id": run_id, "output_path": output})


class LocalizationConfig(TrainingConfig):
    """Train a model that finds one point per (image, disc level): ConvNeXt or ViT with a level embedding.

    Example:
        >>> config = LocalizationConfig.for_layout(DataLayout(root=Path("/srv/spine"), weights=Path("/srv/w")),
        ...                                        model_variant="atto", image_size=[128, 128])
        >>> config.data_path, config.image_size, config.head_config().head_type
        (PosixPath('/srv/spine/processed/ivd_coords'), (128, 128), 'heatmap')
    """

    task: Annotated[str, tyro.conf.arg(help="Task name (output folder).")] = "localization"
    data_path: Annotated[Path, tyro.conf.arg(help="IVD coordinates dataset (images/ + annotations.csv).")] = (
        DEFAULT_LAYOUT.ivd_coords
    )
    model_name: Annotated[
        Literal["convnext_localization", "convnext_disc_detector", "vit_localization"],
        tyro.conf.arg(help="Registered model: level-free (convnext_disc_detector, the default: every disc a "
                           "heatmap peak, the levels counted up from L5/S1) or level-conditioned "
                           "(convnext_localization, vit_localization: a level embedding names the disc asked for)."),
    ] = "convnext_disc_detector"
    model_variant: Annotated[str, tyro.conf.arg(help=f"Backbone variant ({', '.join(CONVNEXT_VARIANTS)}).")] = "base"
    pretrained: Annotated[
        bool, tyro.conf.arg(help="Start from ImageNet weights (the local HF cache or --weights-file).")
    ] = False
    weights_file: Annotated[Path | None, tyro.conf.arg(help="Local backbone weights (.safetensors/.pth).")] = None
    loss_type: Annotated[LossType, tyro.conf.arg(help="Coordinate loss.")] = "smooth_l1"
    heatmap_loss_weight: Annotated[
        float, tyro.conf.arg(help="Weight of the heatmap head's own loss (a Gaussian at the true point); 0: off.")
    ] = 0.0
    use_level_embedding: Annotated[bool, tyro.conf.arg(help="Condition the model on the disc level.")] = True
    num_levels: Annotated[int, tyro.conf.arg(help="Number of disc levels.")] = 5
    offset_head: Annotated[bool, tyro.conf.arg(
        help="Disc detector: also learn where in its heatmap cell (4 input pixels) each point lies.")] = False
    head_type: Annotated[HeadType, tyro.conf.arg(help="Head: heatmap (soft-argmax) or a pooled-feature head.")] = (
        "heatmap"
    )
    head_hidden_dims: Annotated[list[int], tyro.conf.arg(help="Hidden sizes of the head.")] = Field(
        default_factory=lambda: [256]
    )
    head_dropout: Annotated[float, tyro.conf.arg(help="Dropout of the head.")] = 0.1
    series_types: Annotated[list[str] | None, tyro.conf.arg(help="Only these series types (sag_t1 sag_t2).")] = None
    levels: Annotated[list[str] | None, tyro.conf.arg(help="Only these levels (L4/L5 L5/S1).")] = None
    points: Annotated[list[str] | None, tyro.conf.arg(
        help="Only these point kinds (canal foramen_left foramen_right disc; rows of a table without kinds are "
             "kept). Default: the model's own: the disc detector learns the points at the discs on the "
             "mid-sagittal slice (canal, disc), the level-conditioned models every kind.")] = None
    image_size: Annotated[tuple[int, int], tyro.conf.arg(help="Model input size (H W).")] = (224, 224)
    augment: Annotated[bool, tyro.conf.arg(help="Augment training images (points move with the image).")] = True
    augmentation: Annotated[
        Literal["light", "scanner", "any_contrast"],
        tyro.conf.arg(help="How much: light (small pose/intensity changes), scanner (field of view and scale "
                           "0.6-1.6x, rotation +-20 deg, position, gamma, inverted contrast, blur, noise, bias) or "
                           "any_contrast (scanner, and random intensity curves in half the items)."),
    ] = "scanner"
    group_levels: Annotated[
        bool, tyro.conf.arg(help="Train on every level of an image at once (one backbone pass per image).")
    ] = True
    val_fraction: Annotated[
        float, tyro.conf.arg(help="Share of studies for validation (none left: a warning, and latest.json is kept).")
    ] = Field(default=0.2, ge=0.0, lt=1.0)
    test_fraction: Annotated[float, tyro.conf.arg(help="Share of studies held out for testing.")] = Field(
        default=0.0, ge=0.0, lt=1.0)
    pck_thresholds: Annotated[list[float], tyro.conf.arg(help="PCK thresholds (fractions of image size).")] = Field(
        default_factory=lambda: [0.02, 0.05, 0.10]
    )
    checkpoint_metric: Annotated[str, tyro.conf.arg(help="Validation metric choosing the best model.")] = "mean_error_px"

    @classmethod
    def layout_paths(cls, layout: DataLayout) -> dict[str, Path]:
        return {"data_path": layout.ivd_coords, "weights_path": layout.weights}

    def head_config(self) -> HeadConfig:
        return HeadConfig(head_type=self.head_type, hidden_dims=self.head_hidden_dims, dropout=self.head_dropout)

    @property
    def point_kinds(self) -> list[str] | None:
        """The point kinds trained on: ``points``, else the model's own (None: every kind)."""
        if self.points is not None:
            return list(self.points)
        return list(DISC_POINT_KINDS) if self.model_name == "convnext_disc_detector" else None


class ClassificationConfig(TrainingConfig):
    """Train the disc-grading classifier on the IVD crops: a multi-task ResNet50 (six heads: Pfirrmann, Modic,
    herniation and bulging, endplates, spondylolisthesis, narrowing) or a single-task ConvNeXt.

    The best checkpoint is the epoch with the highest ``checkpoint_metric`` on the validation split (by default
    the mean balanced accuracy over every head and output: rare grades count as much as common ones).

    Example:
        >>> config = ClassificationConfig.for_layout(DataLayout(root=Path("/srv/spine"), weights=Path("/srv/w")),
        ...                                          backbone="resnet18", levels=["L4/L5", "L5/S1"])
        >>> config.data_path, config.output_size, config.label_smoothing, config.checkpoint_metric
        (PosixPath('/srv/spine/processed/classification'), (224, 224), 0.1, 'mean_balanced_accuracy')
    """

    task: Annotated[str, tyro.conf.arg(help="Task name (output folder).")] = "classification"
    data_path: Annotated[Path, tyro.conf.arg(help="IVD crops dataset (images/ + annotations.csv).")] = (
        DEFAULT_LAYOUT.classification
    )
    model_name: Annotated[
        Literal["resnet50_mtl", "convnext_classifier"],
        tyro.conf.arg(help="Registered model: the multi-task grader or a single-task ConvNeXt."),
    ] = "resnet50_mtl"
    backbone: Annotated[str, tyro.conf.arg(help="timm backbone of the multi-task model (resnet18 for CPU runs).")] = (
        "resnet50"
    )
    model_variant: Annotated[str, tyro.conf.arg(help="ConvNeXt variant of the single-task model.")] = "atto"
    target: Annotated[
        Literal["pfirrmann", "modic"], tyro.conf.arg(help="The single-task model's grade (convnext_classifier).")
    ] = "pfirrmann"
    num_classes: Annotated[int | None, tyro.conf.arg(help="Classes of the single-task model (default: the grade's).")] = (
        None
    )
    pretrained: Annotated[bool, tyro.conf.arg(help="Start from ImageNet weights (local HF cache or --weights-file).")] = (
        False
    )
    weights_file: Annotated[Path | None, tyro.conf.arg(help="Local backbone weights (.safetensors/.pth).")] = None
    output_size: Annotated[tuple[int, int], tyro.conf.arg(help="Model input size (H W).")] = (224, 224)
    levels: Annotated[list[str] | None, tyro.conf.arg(help="Only these levels (L4/L5 L5/S1).")] = None
    sources: Annotated[list[str] | None, tyro.conf.arg(help="Only these sources (spider phenikaa).")] = None
    dropout: Annotated[float, tyro.conf.arg(help="Dropout before each head.")] = Field(default=0.3, ge=0.0, lt=1.0)
    label_smoothing: Annotated[float, tyro.conf.arg(help="Label smoothing of the multiclass heads' cross-entropy.")] = (
        Field(default=0.1, ge=0.0, lt=1.0)
    )
    head_weights: Annotated[
        dict[str, float] | None, tyro.conf.arg(help="Loss weight per head (default 1 each).")
    ] = None
    class_balance: Annotated[
        Literal["weights", "sampler", "none"],
        tyro.conf.arg(help="weights: rare classes weigh more in each head's loss (inverse frequency); sampler: "
                           "discs of a rare class are drawn more often (with replacement, each disc by its rarest "
                           "label), the loss unweighted; none."),
    ] = "weights"
    augment: Annotated[bool, tyro.conf.arg(help="Augment training crops (small pose and intensity changes).")] = True
    tune_thresholds: Annotated[
        bool, tyro.conf.arg(help="Set each binary output's decision threshold where the best model's validation "
                                 "macro-F1 is highest (stored in the checkpoint); off: probability 0.5.")
    ] = True
    val_fraction: Annotated[
        float, tyro.conf.arg(help="Share of patients for validation (none left: a warning, and latest.json is kept).")
    ] = Field(default=0.2, ge=0.0, lt=1.0)
    test_fraction: Annotated[float, tyro.conf.arg(help="Share of patients held out for testing.")] = Field(
        default=0.0, ge=0.0, lt=1.0)
    checkpoint_metric: Annotated[
        str, tyro.conf.arg(help="Validation metric choosing the best model (higher is better for every grading "
                                "metric), e.g. mean_balanced_accuracy, pfirrmann/qwk, val_loss.")
    ] = "mean_balanced_accuracy"

    @classmethod
    def layout_paths(cls, layout: DataLayout) -> dict[str, Path]:
        return {"data_path": layout.classification, "weights_path": layout.weights}

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (unknown := sorted(set(value) - set(SOURCES))):
            raise ValueError(f"unknown source(s) {', '.join(unknown)}; expected {', '.join(SOURCES)}")
        return value


class ModelTestConfig(BaseConfig):
    """Run a trained model on images or DICOM files and print (or save) its predictions as JSON.

    Every input is in the result: its predictions, or a row of ``errors`` naming it and saying why it could not
    be predicted (missing, unreadable, not an image of the kind the model takes); the other inputs are predicted
    all the same. Exit status: 0 when at least one input was predicted, 2 when none was, when ``--strict`` is
    given and any input failed, or when the checkpoint or the options cannot work.

    Example:
        >>> config = ModelTestConfig(model_path=Path("best_model.pt"), inputs=[Path("a.png")], level_indices=[3])
        >>> config.task, config.level_indices  # L4/L5 only (levels count from 0 = L1/L2)
        ('localization', [3])
    """

    model_path: Annotated[Path, tyro.conf.arg(help="Trained checkpoint (best_model.pt).")]
    inputs: Annotated[list[Path], tyro.conf.arg(help="Input images or DICOM files.")]
    task: Annotated[Task, tyro.conf.arg(help="Task of the model.")] = "localization"
    model_variant: Annotated[str | None, tyro.conf.arg(help="Backbone variant (default: from the checkpoint).")] = None
    level_indices: Annotated[list[int] | None, tyro.conf.arg(help="Disc levels (0=L1/L2 .. 4=L5/S1).")] = None
    test_all_levels: Annotated[
        bool, tyro.conf.arg(help="Without --level-indices, test every level per image (off: L1/L2 only).")
    ] = True
    num_levels: Annotated[int, tyro.conf.arg(help="Disc levels the model was trained on.")] = 5
    use_level_embedding: Annotated[bool, tyro.conf.arg(help="The model was trained with a level embedding.")] = True
    num_classes: Annotated[int, tyro.conf.arg(help="Classes (classification).")] = 4
    class_names: Annotated[list[str] | None, tyro.conf.arg(help="Class names for the output.")] = None
    image_size: Annotated[
        tuple[int, int] | None, tyro.conf.arg(help="Model input size (H W); default: the training size, else 224.")
    ] = None
    device: Annotated[str, tyro.conf.arg(help="auto, cpu, cuda or cuda:N.")] = "auto"
    output_path: Annotated[
        Path | None, tyro.conf.arg(help="Write the results here: JSON, or CSV rows (.csv, the grading model).")
    ] = None
    visualize: Annotated[bool, tyro.conf.arg(help="Draw the predictions on the images (beside the JSON).")] = False
    localization_model_path: Annotated[
        Path | None,
        tyro.conf.arg(help="Grading a sagittal series: the localizer that finds its discs (default: the newest run)."),
    ] = None
    strict: Annotated[
        bool, tyro.conf.arg(help="Exit with status 2 when any input could not be predicted (default: only when none "
                                 "could).")
    ] = False

    @model_validator(mode="after")
    def _levels_the_model_has(self) -> ModelTestConfig:
        outside = [i for i in self.level_indices or [] if not 0 <= i < self.num_levels]
        if outside:
            raise ValueError(f"level indices {outside} outside 0..{self.num_levels - 1} (0=L1/L2 .. 4=L5/S1)")
        return self

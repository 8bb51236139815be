"""Writing the dataset's images: each labelled DICOM instance or picture as an 8-bit PNG, in parallel when many."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from spine_lib.formats.ivd_coords import NORMALIZE_PERCENTILES

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

PARALLEL_MIN_IMAGES = 256  # below this, starting worker processes costs more than it saves (measured)


@dataclass
class ImageTask:
    """One output image and where it comes from.

    A new image is written to ``staging`` (when given) and moved to ``output`` only once the whole build has
    succeeded; an up-to-date ``output`` is reused as it is.
    """

    output: Path
    source: Path
    kind: str  # dicom | picture
    staging: Path | None = None


def read_dicom_pixels(path: Path) -> npt.NDArray[np.float32]:
    """The pixels of one DICOM instance as a 2D float array (first frame; MONOCHROME1 inverted)."""
    import numpy as np
    import pydicom

    dataset = pydicom.dcmread(path)
    pixels = np.asarray(dataset.pixel_array, dtype=np.float32)
    if pixels.ndim == 3:
        pixels = pixels[0]
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2D image, got shape {pixels.shape}")
    if str(dataset.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        pixels = pixels.max() - pixels
    return pixels


def read_picture(path: Path) -> npt.NDArray[np.uint8]:
    """A Lumbar Coords picture (JPEG/PNG, or ``.npy`` array) as 8-bit grayscale."""
    import cv2
    import numpy as np

    from spine_lib.io.transforms import normalize_to_uint8

    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False)
        if array.ndim == 3:
            array = array[..., 0] if array.shape[-1] in (1, 3, 4) else array[0]
        return normalize_to_uint8(array) if array.dtype != np.uint8 else array
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError("not a readable picture")
    return np.asarray(image, dtype=np.uint8)


def write_png(array: npt.NDArray[np.uint8], target: Path) -> None:
    import cv2

    from spine_lib.io.atomic import atomic_path

    with atomic_path(target) as tmp:
        if not cv2.imwrite(str(tmp), array):
            raise OSError(f"cannot write {target}")


def existing_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of an image written by an earlier build, None when it cannot be read (it is rewritten)."""
    from PIL import Image

    try:
        with Image.open(path) as existing:
            existing.verify()
            width, height = existing.size
    except Exception:  # a truncated or foreign file under the image's name
        return None
    return int(width), int(height)


def convert_image(task: ImageTask) -> tuple[int, int, bool] | str:
    """Write one image (unless an up-to-date one exists); return (width, height, written) or an error text
    (patient-like names in it redacted)."""
    try:
        if task.output.is_file() and task.output.stat().st_mtime_ns >= task.source.stat().st_mtime_ns:
            size = existing_size(task.output)
            if size is not None:
                return size[0], size[1], False
        if task.kind == "dicom":
            from spine_lib.io.transforms import normalize_to_uint8

            array = normalize_to_uint8(read_dicom_pixels(task.source), percentiles=NORMALIZE_PERCENTILES)
        else:
            array = read_picture(task.source)
        write_png(array, task.staging or task.output)
        return int(array.shape[1]), int(array.shape[0]), True
    except Exception as error:  # any unreadable file becomes a reject, never a crash
        from spine_lib.core.phi import redact

        return redact(f"{type(error).__name__}: {str(error)[:200]}")


def convert_images(tasks: list[ImageTask], workers: int, verbose: bool) -> list[tuple[int, int, bool] | str]:
    """Convert every image, in ``workers`` processes when there are enough of them."""
    from spine_lib.core.progress import track

    if workers > 1 and len(tasks) >= PARALLEL_MIN_IMAGES:
        from spine_lib.core.processes import worker_pool

        with worker_pool(workers, [__name__]) as pool:
            chunk = max(1, len(tasks) // (workers * 8))
            return list(track(pool.map(convert_image, tasks, chunksize=chunk), "Images", total=len(tasks),
                              enabled=verbose))
    return [convert_image(t) for t in track(tasks, "Images", enabled=verbose)]


def remove_orphans(images_dir: Path, used: set[str]) -> int:
    """Delete images of an earlier build that no annotation uses any more (and stray temporary files)."""
    removed = 0
    for path in images_dir.iterdir():
        if path.is_file() and path.name not in used:
            path.unlink(missing_ok=True)
            removed += not path.name.startswith(".")
    return removed

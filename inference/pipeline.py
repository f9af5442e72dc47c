"""predict.py's library: any fundus image in, probability / binary / overlay PNGs out."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from data.fov import generate_fov_mask
from data.io import file_stem, is_image_name, read_image, read_mask
from inference.outputs import overlay_vessels, probability_png
from inference.segment import segment
from utils.errors import UserError
from utils.io import write_image


def collect_inputs(inputs: list[str]) -> list[Path]:
    """Image files named directly or found (sorted, not recursively) in the named folders."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and is_image_name(p.name))
            if not found:
                raise UserError(
                    f"folder {path} holds no image files (expected .png, .jpg, .tif, .gif, .ppm, ...)"
                )
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(
                f"input {path} does not exist; expected an image file or a folder of images"
            )
    return files


def predict_files(
    files: list[Path],
    weights: Path,
    out_dir: Path,
    threshold: float = 0.5,
    engine: str = "auto",
    mask_path: Path | None = None,
    use_fov: bool = True,
    scale: str | float = "auto",
) -> list[Path]:
    """Segment each file; returns the written binary-map paths.

    scale: "auto" (each photograph resampled so its field of view is as wide
    as the weights' training images', `data.scale`; the probabilities are
    resampled back and thresholded at the input's size) or a factor (1: off).
    """
    from data.scale import (
        fov_diameter,
        image_factor,
        prediction_factors,
        training_fov_diameter,
        weights_config,
    )
    from inference.engines import make_predictor
    from models import load_model

    images = [
        (path, read_image(path)) for path in files
    ]  # read all first: a bad file fails before any output
    mask = read_mask(mask_path) if mask_path else None
    predictor = make_predictor(load_model(weights), engine)
    train_diameter = training_fov_diameter(weights_config(weights))
    written = []
    for path, image in images:
        fov = mask if mask is not None else generate_fov_mask(image)
        if fov.shape != image.shape[:2]:
            raise UserError(
                f"mask {mask_path} is {fov.shape[1]} x {fov.shape[0]}, but image {path} is {image.shape[1]} x {image.shape[0]}"
            )
        factor = image_factor(scale, fov, train_diameter, str(path))
        start = time.perf_counter()
        prob = segment(predictor, image, factor=prediction_factors(scale, factor))
        seconds = time.perf_counter() - start
        vessels = prob > threshold
        if use_fov:
            vessels &= fov
        stem = out_dir / file_stem(path.name)
        write_image(f"{stem}_prob.png", probability_png(prob))
        write_image(f"{stem}_binary.png", vessels.astype(np.uint8) * 255)
        write_image(f"{stem}_overlay.png", overlay_vessels(image, vessels))
        write_image(f"{stem}_fov.png", fov.astype(np.uint8) * 255)
        written.append(Path(f"{stem}_binary.png"))
        share = vessels[fov].mean() if fov.any() else 0.0
        diameter = fov_diameter(fov)
        where = f"FOV {diameter:.0f} px across" if diameter else "no FOV found"
        scales = " and ".join(f"{f:.3f}" for f in prediction_factors(scale, factor))
        print(
            f"{path}: {image.shape[1]} x {image.shape[0]}, {where}, scale factor {scales}, "
            f"vessels {100 * share:.1f} % of the FOV, {seconds:.2f} s ({predictor.name}) "
            f"-> {stem}_*.png"
        )
    return written

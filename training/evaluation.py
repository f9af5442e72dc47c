"""Segment images with a trained model and score them (SPEC.md section 5).

`segment` pads an image to the network's size (the dataset's paper size, or
the next multiple of 8), predicts and crops back: the one place where the
pad/predict/crop protocol lives, used by evaluate.py, predict.py and the end
of train.py.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from data.geometry import crop_to, pad_shape_for, pad_to, padded_shape
from data.io import to_unit_float
from data.scale import SECOND_SCALE, resize_image, resize_probability, scaled_shape
from metrics import METRIC_KEYS, METRIC_LABELS, PROTOCOLS, format_table, summarize
from utils.io import write_image, write_json, write_text

# Overlay colours (RGB): true positives, false positives, false negatives.
TP_COLOUR = (0, 200, 0)
FP_COLOUR = (255, 40, 40)
FN_COLOUR = (40, 120, 255)
VESSEL_COLOUR = (0, 230, 0)
# Larger images are predicted in tiles: a 20-megapixel photograph at factor 1 would need
# about 8 GB in one piece. A DRIVE test image upsampled x4 (5.3 Mpx) still goes whole.
MAX_WHOLE_PIXELS = 3072 * 3072
TILE, TILE_MARGIN = 1024, 64


def segment(
    predictor,
    image: np.ndarray,
    pad_shape: tuple[int, int] | None = None,
    factor: float | tuple[float, ...] = 1.0,
) -> np.ndarray:
    """Vessel probability of one image.

    image: uint8 (H, W, 3). pad_shape: (Hp, Wp) >= (H, W), multiples of 8
    (None: the next multiples of 8). factor: the image is resampled by it
    (`data.scale.resize_image`), predicted at that size (padded to multiples
    of 8) and the probabilities resampled back to (H, W); 1: predicted as it
    is; a tuple of factors (`data.scale.prediction_factors`): the mean of their
    maps. Over MAX_WHOLE_PIXELS it is predicted in tiles. Returns float32 (H, W) in [0, 1].
    """
    if isinstance(factor, tuple):
        maps = [segment(predictor, image, pad_shape, f) for f in factor]
        return maps[0] if len(maps) == 1 else np.mean(maps, axis=0, dtype=np.float32)
    height, width = image.shape[:2]
    if factor != 1.0:
        scaled = resize_image(image, scaled_shape((height, width), factor))
        return resize_probability(segment(predictor, scaled), (height, width))
    if height * width > MAX_WHOLE_PIXELS:
        return _segment_tiles(predictor, image)
    return _predict_whole(predictor, image, pad_shape)


def _predict_whole(predictor, image: np.ndarray, pad_shape=None) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (H, W): padded (bottom/right) to `pad_shape`, predicted, cropped."""
    height, width = image.shape[:2]
    pad_shape = pad_shape or padded_shape((height, width))
    batch = to_unit_float(pad_to(image, pad_shape)[None])
    prob = np.asarray(predictor.predict(batch), dtype="float32")[0, ..., 0]
    return crop_to(prob, (height, width))


def _segment_tiles(predictor, image: np.ndarray) -> np.ndarray:
    """`segment` of a large image in TILE x TILE tiles; each keeps its centre, TILE_MARGIN px of
    context on every side are predicted but dropped (so memory is bounded by one tile)."""
    height, width = image.shape[:2]
    step = TILE - 2 * TILE_MARGIN
    prob = np.zeros((height, width), dtype=np.float32)
    for top in range(0, height, step):
        for left in range(0, width, step):
            y0, x0 = max(0, top - TILE_MARGIN), max(0, left - TILE_MARGIN)
            y1, x1 = min(height, top + step + TILE_MARGIN), min(width, left + step + TILE_MARGIN)
            tile = _predict_whole(predictor, image[y0:y1, x0:x1])
            bottom, right = min(height, top + step), min(width, left + step)
            prob[top:bottom, left:right] = tile[top - y0 : bottom - y0, left - x0 : right - x0]
    return prob


def probability_png(prob: np.ndarray) -> np.ndarray:
    """(H, W) probabilities -> uint8 grey image 0..255."""
    return np.clip(np.rint(prob * 255.0), 0, 255).astype(np.uint8)


def overlay_errors(image: np.ndarray, pred: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Fundus image with true positives, false positives and false negatives in three colours."""
    out = (image.astype(np.float32) * 0.55).astype(np.uint8)
    pred, label = pred.astype(bool), label.astype(bool)
    out[pred & label] = TP_COLOUR
    out[pred & ~label] = FP_COLOUR
    out[~pred & label] = FN_COLOUR
    return out


def overlay_vessels(image: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Fundus image with the predicted vessels drawn in one colour."""
    out = image.copy()
    out[pred.astype(bool)] = VESSEL_COLOUR
    return out


def per_image_csv(summary: dict[str, Any]) -> str:
    """CSV text: one row per image, columns <protocol>_<metric>."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image"] + [f"{p}_{k}" for p in PROTOCOLS for k in METRIC_KEYS])
    for entry in summary["per_image"]:
        writer.writerow(
            [entry["name"]] + [f"{entry[p][k]:.6f}" for p in PROTOCOLS for k in METRIC_KEYS]
        )
    return buffer.getvalue()


def results_markdown(title: str, summary: dict, second: dict | None, reference: str | None) -> str:
    """Markdown report: per-image means (the paper's protocol), pooled values, second observer."""
    parts = [
        f"# {title}\n",
        f"Threshold {summary['threshold']}, {summary['n_images']} test images.\n",
    ]
    scaling = summary.get("scaling")
    if scaling:
        line = describe_factors(scaling["scale"], scaling["factors"], scaling["train_fov_diameter"])
        parts.append(f"Scale: {line}.\n")
    parts += ["## Mean over images (the paper's protocol)\n", format_table(summary)]
    parts += ["\n## Standard deviation over images\n", format_table(summary, stat="std")]
    parts += ["\n## Pooled over all pixels\n", format_table(summary, stat="pooled")]
    if second is not None:
        parts += [f"\n## Second human observer ({reference}), same code, mean over images\n"]
        parts += [format_table(second)]
    return "".join(parts)


def print_per_image(summary: dict[str, Any], protocol: str = "whole_image") -> None:
    keys = METRIC_KEYS
    print(f"{'image':<14}" + "".join(f"{METRIC_LABELS[k]:>9}" for k in keys) + f"   ({protocol})")
    for entry in summary["per_image"]:
        print(f"{entry['name']:<14}" + "".join(f"{entry[protocol][k]:>9.4f}" for k in keys))


def evaluate_predictions(
    samples: list,
    probs: list[np.ndarray],
    out_dir: Path,
    threshold: float,
    title: str,
    save_images: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score `probs` against the samples' labels and write the report files into `out_dir`.

    `extra` items (e.g. timing) are added to the summary and metrics.json.
    """
    out_dir = Path(out_dir)
    names = [s.name for s in samples]
    summary = summarize(
        probs, [s.label for s in samples], [s.mask for s in samples], threshold, names
    )
    second = None
    if all(s.second is not None for s in samples):
        second = summarize(
            [s.second for s in samples],
            [s.label for s in samples],
            [s.mask for s in samples],
            names=names,
            binary=True,
        )
        summary["second_observer"] = {p: second[p] for p in PROTOCOLS}
    summary.update(extra or {})
    write_json(out_dir / "metrics.json", summary)
    write_text(out_dir / "per_image.csv", per_image_csv(summary))
    write_text(out_dir / "results.md", results_markdown(title, summary, second, "second manual"))
    if save_images:
        for sample, prob in zip(samples, probs, strict=True):
            pred = prob > threshold
            write_image(out_dir / "images" / f"{sample.name}_prob.png", probability_png(prob))
            write_image(
                out_dir / "images" / f"{sample.name}_binary.png", pred.astype(np.uint8) * 255
            )
            write_image(
                out_dir / "images" / f"{sample.name}_overlay.png",
                overlay_errors(sample.image, pred, sample.label),
            )
    return summary


def describe_factors(scale, factors: dict[str, float], train_diameter: float | None) -> str:
    """One line: the scale mode and the factors used (min-max, how many images were resampled)."""
    values = list(factors.values())
    resampled = sum(value != 1.0 for value in values)
    shrunk = sum(value < 1.0 for value in values)
    if scale != "auto":
        mode = f"--scale {scale:g}"
    elif train_diameter is None:
        mode = "--scale auto (the weights' training scale is not recorded: factor 1)"
    else:
        mode = f"--scale auto (weights trained at a FOV diameter of {train_diameter:.1f} px)"
    second = (
        f"; the {shrunk} shrunk also at {SECOND_SCALE:.2f} times their factor, maps averaged"
        if scale == "auto" and shrunk
        else ""
    )
    return (
        f"{mode}: factor {min(values):.3f}-{max(values):.3f}, "
        f"{resampled} of {len(values)} images resampled{second}"
    )


def evaluate_checkpoint(
    cfg: dict[str, Any],
    weights: str | Path,
    out_dir: str | Path,
    engine: str | None = None,
    verbose: bool = True,
    scale: str | float | None = None,
    upsample: int = 1,
) -> dict[str, Any]:
    """Predict the config's test split with `weights` and write the evaluation into `out_dir`.

    scale: "auto" (each image brought to the FOV diameter the weights were
    trained at, `data.scale`), or a factor; None: `evaluate.scale`.
    upsample: test images enlarged this many times first (`data.scale.upsample_sample`,
    a stand-in for a high-resolution camera).
    """
    from data import load_dataset
    from data.scale import (
        image_factor,
        parse_scale,
        prediction_factors,
        training_fov_diameter,
        upsample_sample,
        weights_config,
    )
    from inference.engines import make_predictor
    from models import load_model

    scale = parse_scale(scale if scale is not None else cfg["evaluate"]["scale"])
    train_diameter = training_fov_diameter(weights_config(weights))
    dataset = load_dataset(cfg["dataset"])
    samples = [upsample_sample(sample, upsample) for sample in dataset.test]
    model = load_model(weights)
    predictor = make_predictor(model, engine or cfg["evaluate"]["engine"])
    factors = {s.name: image_factor(scale, s.mask, train_diameter, s.name) for s in samples}
    start = time.perf_counter()
    probs = [
        segment(
            predictor,
            sample.image,
            pad_shape_for(dataset.name, sample.image.shape[:2]),
            prediction_factors(scale, factors[sample.name]),
        )
        for sample in samples
    ]
    seconds = time.perf_counter() - start
    threshold = cfg["evaluate"]["threshold"]
    title = f"{cfg['model']['name']} on {dataset.name} test ({Path(weights).name})"
    if upsample != 1:
        title += f", images upsampled x{upsample}"
    timing = {
        "engine": predictor.name,
        "images": len(probs),
        "predict_seconds": round(seconds, 3),
        "seconds_per_image": round(seconds / max(len(probs), 1), 4),
    }
    scaling = {
        "scale": scale,
        "train_fov_diameter": train_diameter,
        "upsample": upsample,
        "factors": factors,
    }
    summary = evaluate_predictions(
        samples,
        probs,
        Path(out_dir),
        threshold,
        title,
        save_images=cfg["evaluate"]["save_images"],
        extra={"timing": timing, "scaling": scaling},
    )
    if verbose:
        print_per_image(summary)
        print()
        print((Path(out_dir) / "results.md").read_text(encoding="utf-8"))
        print(describe_factors(scale, factors, train_diameter))
        print(
            f"{len(probs)} images predicted in {seconds:.1f} s with the {predictor.name} engine; "
            f"report in {out_dir}"
        )
    return summary

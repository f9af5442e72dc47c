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
from metrics import METRIC_KEYS, METRIC_LABELS, PROTOCOLS, format_table, summarize
from utils.io import write_image, write_json, write_text

# Overlay colours (RGB): true positives, false positives, false negatives.
TP_COLOUR = (0, 200, 0)
FP_COLOUR = (255, 40, 40)
FN_COLOUR = (40, 120, 255)
VESSEL_COLOUR = (0, 230, 0)


def segment(predictor, image: np.ndarray, pad_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Vessel probability of one image.

    image: uint8 (H, W, 3). pad_shape: (Hp, Wp) >= (H, W), multiples of 8
    (None: the next multiples of 8). Returns float32 (H, W) in [0, 1].
    """
    height, width = image.shape[:2]
    pad_shape = pad_shape or padded_shape((height, width))
    batch = to_unit_float(pad_to(image, pad_shape)[None])
    prob = np.asarray(predictor.predict(batch), dtype="float32")[0, ..., 0]
    return crop_to(prob, (height, width))


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


def evaluate_checkpoint(
    cfg: dict[str, Any],
    weights: str | Path,
    out_dir: str | Path,
    engine: str | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Predict the config's test split with `weights` and write the evaluation into `out_dir`."""
    from data import load_dataset
    from inference.engines import make_predictor
    from models import load_model

    dataset = load_dataset(cfg["dataset"])
    model = load_model(weights)
    predictor = make_predictor(model, engine or cfg["evaluate"]["engine"])
    start = time.perf_counter()
    probs = [
        segment(predictor, sample.image, pad_shape_for(dataset.name, sample.image.shape[:2]))
        for sample in dataset.test
    ]
    seconds = time.perf_counter() - start
    threshold = cfg["evaluate"]["threshold"]
    title = f"{cfg['model']['name']} on {dataset.name} test ({Path(weights).name})"
    timing = {
        "engine": predictor.name,
        "images": len(probs),
        "predict_seconds": round(seconds, 3),
        "seconds_per_image": round(seconds / max(len(probs), 1), 4),
    }
    summary = evaluate_predictions(
        dataset.test,
        probs,
        Path(out_dir),
        threshold,
        title,
        save_images=cfg["evaluate"]["save_images"],
        extra={"timing": timing},
    )
    if verbose:
        print_per_image(summary)
        print()
        print((Path(out_dir) / "results.md").read_text(encoding="utf-8"))
        print(
            f"{len(probs)} images predicted in {seconds:.1f} s with the {predictor.name} engine; "
            f"report in {out_dir}"
        )
    return summary

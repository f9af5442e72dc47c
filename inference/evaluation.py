"""Score a trained model on a dataset's test split (docs/paper.md section 5): evaluate.py's library.

Images are segmented by `inference.segment.segment` (the one pad/predict/crop
protocol, shared with predict.py); this module scores them and writes the report.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from data.geometry import pad_shape_for
from data.scale import SECOND_SCALE
from inference.outputs import overlay_errors, probability_png
from inference.segment import segment
from metrics import METRIC_KEYS, METRIC_LABELS, PROTOCOLS, format_table, summarize
from utils.io import write_image, write_json, write_text


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
        from data.scale import FovBand

        low, high = scaling["train_fov_diameter"], scaling.get("max_fov_diameter")
        band = None if low is None else FovBand(low, high or low)
        line = describe_factors(scaling["scale"], scaling["factors"], band)
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


def describe_factors(scale, factors: dict[str, float], train_diameter) -> str:
    """One line: the scale mode and the factors used (min-max, how many images were resampled);
    `train_diameter`: the weights' data.scale.FovBand, a diameter, or None."""
    from data.scale import as_band

    band = as_band(train_diameter)
    values = list(factors.values())
    resampled = sum(value != 1.0 for value in values)
    shrunk = sum(value < 1.0 for value in values)
    if scale != "auto":
        mode = f"--scale {scale:g}"
    elif band is None:
        mode = "--scale auto (the weights' training scale is not recorded: factor 1)"
    else:
        mode = f"--scale auto (weights trained at a FOV diameter of {band})"
    second = (
        f"; the {shrunk} shrunk also at {SECOND_SCALE:.2f} times their factor, maps averaged"
        if scale == "auto" and shrunk and band is not None and band.single
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
        training_fov_band,
        upsample_sample,
        weights_config,
    )
    from inference.engines import make_predictor
    from models import load_model

    scale = parse_scale(scale if scale is not None else cfg["evaluate"]["scale"])
    train_diameter = training_fov_band(weights_config(weights))
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
            prediction_factors(scale, factors[sample.name], train_diameter),
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
        "train_fov_diameter": train_diameter and train_diameter.low,
        "max_fov_diameter": None
        if train_diameter is None or train_diameter.single
        else train_diameter.high,
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
        print(  # results.md above already holds the scale line (describe_factors)
            f"{len(probs)} images predicted in {seconds:.1f} s with the {predictor.name} engine; "
            f"report in {out_dir}"
        )
    return summary

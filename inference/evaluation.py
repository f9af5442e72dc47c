"""Score a trained model on a dataset's test split (docs/paper.md section 5): evaluate.py's library.

Images are segmented by `inference.segment.segment` (the one pad/predict/crop
protocol, shared with predict.py); this module scores them and writes the report.

An artery/vein network (`models.is_av_model`) on an artery/vein dataset is scored twice: its
vessel channel with the vessel metrics against every labelled vessel pixel (the class map's
non-background pixels), and its class map (each vessel segment between junctions typed as a
whole, `data.av.vote_by_segment`, unless `evaluate.av_vote` is false) with both A/V protocols
(`metrics.summarize_av`, docs/arteries-veins.md), added to metrics.json under "av" and to
results.md; each image also gets `<name>_av.png`, its predicted classes painted on the
photograph (`data.av.av_overlay`).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from data.av import av_classes, av_overlay, vessel_mask, vote_by_segment
from data.geometry import pad_shape_for
from data.scale import SECOND_SCALE
from inference.outputs import overlay_errors, probability_png
from inference.segment import segment, segment_by_vessels
from metrics import (
    AV_PROTOCOLS,
    METRIC_KEYS,
    METRIC_LABELS,
    PROTOCOLS,
    calibre_table,
    f1_with_tolerance,
    format_av_table,
    format_table,
    fov_f1_by_threshold,
    sensitivity_by_calibre,
    summarize,
    summarize_av,
    threshold_table,
    tolerance_table,
)
from utils.errors import UserError
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
        f"Threshold {summary['threshold']}, {summary['n_images']} test images.\n"
        if summary["threshold"] is not None
        else f"Binary maps as written, {summary['n_images']} test images (AUC needs probabilities: n/a).\n",
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
    if "sensitivity_by_calibre" in summary:
        parts += [
            "\n## Sensitivity by the calibre of the labelled vessel (inside the FOV, pooled)\n",
            calibre_table(summary["sensitivity_by_calibre"]),
        ]
    if "f1_with_tolerance" in summary:
        rows = {"model": summary["f1_with_tolerance"]}
        if "second_observer_with_tolerance" in summary:
            rows[f"{reference} against the label"] = summary["second_observer_with_tolerance"]
        parts += [
            "\n## F1 inside the FOV with a tolerance at the borders (mean over images)\n",
            "A pixel counts as right within t px of the other map's vessels: what is left at\n"
            "1-2 px is vessels found or missed, not drawn a pixel wider or narrower.\n\n",
            tolerance_table(rows),
        ]
    if "fov_f1_by_threshold" in summary:
        parts += [
            "\n## F1 inside the FOV by threshold (mean over images)\n",
            "A diagnosis only: a threshold read off the test images is not a result.\n\n",
            threshold_table(summary["fov_f1_by_threshold"]),
        ]
    if second is not None:
        parts += [f"\n## Second human observer ({reference}), same code, mean over images\n"]
        parts += [format_table(second)]
    if "av" in summary:
        parts.append(av_markdown(summary["av"], summary.get("av_pixels")))
    return "".join(parts)


def av_markdown(av: dict[str, Any], pixels: dict[str, Any] | None = None) -> str:
    """The A/V section of results.md: both protocols of `metrics.summarize_av` output; `pixels`:
    where each vessel segment was typed as a whole (`vote_by_segment`), the protocols' means
    with each pixel typed by itself, shown beside them."""
    where = "Inside the FOV" if av["fov_mask"] else "Over the whole image"
    typed = (
        "Each vessel segment between junctions was typed as a whole (the means of its pixels). "
        if pixels is not None
        else "Each pixel was typed by itself. "
    )
    parts = [
        "\n## Arteries and veins (docs/arteries-veins.md, \"Scoring arteries and veins\")\n",
        f"{where}; crossing and uncertain reference pixels are not scored. {typed}(a): a "
        f"pixel is a vessel when p_vessel > {av['threshold']:g}, an artery when p_artery >= "
        "p_vein; (b): every reference artery or vein pixel called artery when p_artery >= "
        "p_vein. Interval: percentile bootstrap over the images.\n\n",
    ]
    for protocol in AV_PROTOCOLS:
        parts += [format_av_table(av, protocol), "\n"]
    if pixels is not None:
        seg, cls = pixels["segmentation"], pixels["classification"]
        parts.append(
            f"Each pixel typed by itself instead (means over images): (a) A/V F1 "
            f"{seg['f1_mean']:.4f} (artery {seg['f1_artery']:.4f}, vein {seg['f1_vein']:.4f}); "
            f"(b) accuracy {cls['acc']:.4f}.\n"
        )
    return "".join(parts)


SPLITS = ("test", "train")


def split_samples(dataset, split: str) -> list:
    """The samples of `dataset`'s split "test" or "train" (every training image: the validation
    images a run holds out are among them)."""
    if split not in SPLITS:
        raise UserError(f"split '{split}' is not known; expected one of {', '.join(SPLITS)}")
    return dataset.test if split == "test" else dataset.train


def vessel_samples(samples: list) -> list:
    """Samples of an artery/vein dataset with each class map replaced by its vessel map (uint8
    {0, 1}: every labelled vessel pixel, of any type), for the vessel metrics."""
    return [
        dataclasses.replace(s, label=vessel_mask(s.label).astype(np.uint8)) for s in samples
    ]


def evaluate_av_predictions(
    samples: list,
    probs: list[np.ndarray],
    out_dir: Path,
    threshold: float,
    title: str,
    save_images: bool = True,
    extra: dict[str, Any] | None = None,
    vote: bool = True,
) -> dict[str, Any]:
    """`evaluate_predictions` of the A/V network's vessel channel against the samples' vessel
    maps, with both A/V protocols of the (H, W, 3) `probs` against their class maps under "av"
    (`metrics.summarize_av`: per image, mean, std, bootstrap interval, pooled), and with
    `save_images` each image's `<name>_av.png` (`data.av.av_overlay` of `av_classes`).
    vote: each vessel segment typed as a whole first (`data.av.vote_by_segment`; the vessel
    channel is unchanged); False: each pixel as the network typed it. "av_vote" records which;
    with the vote, "av_pixels" holds both protocols' means without it, for comparison."""
    names = [s.name for s in samples]
    labels, masks = [s.label for s in samples], [s.mask for s in samples]
    more: dict[str, Any] = {"av_vote": "segments" if vote else "pixels"}
    if vote:
        pixels = summarize_av(probs, labels, masks, threshold, names)
        more["av_pixels"] = {protocol: pixels[protocol]["mean"] for protocol in AV_PROTOCOLS}
        probs = [vote_by_segment(prob, threshold) for prob in probs]
    av = summarize_av(probs, labels, masks, threshold, names)
    summary = evaluate_predictions(
        vessel_samples(samples),
        [prob[..., 0] for prob in probs],
        out_dir,
        threshold,
        title,
        save_images=save_images,
        extra={**(extra or {}), "av": av, **more},
    )
    if save_images:
        for sample, prob in zip(samples, probs, strict=True):
            painted = av_overlay(sample.image, av_classes(prob, threshold))
            write_image(Path(out_dir) / "images" / f"{sample.name}_av.png", painted)
    return summary


def print_per_image(summary: dict[str, Any], protocol: str = "whole_image") -> None:
    keys = METRIC_KEYS
    print(f"{'image':<14}" + "".join(f"{METRIC_LABELS[k]:>9}" for k in keys) + f"   ({protocol})")
    for entry in summary["per_image"]:
        print(f"{entry['name']:<14}" + "".join(f"{entry[protocol][k]:>9.4f}" for k in keys))


def print_report(
    summary: dict[str, Any], out_dir: str | Path, done: str, protocol: str = "whole_image"
) -> None:
    """The per-image table, the results.md written into `out_dir`, then `done` and where."""
    print_per_image(summary, protocol)
    print()
    print((Path(out_dir) / "results.md").read_text(encoding="utf-8"))
    print(f"{done}; report in {out_dir}")


def evaluate_predictions(
    samples: list,
    probs: list[np.ndarray],
    out_dir: Path,
    threshold: float,
    title: str,
    save_images: bool = True,
    extra: dict[str, Any] | None = None,
    binary: bool = False,
) -> dict[str, Any]:
    """Score `probs` against the samples' labels and write the report files into `out_dir`.

    `extra` items (e.g. timing) are added to the summary and metrics.json. binary: `probs`
    are vessel maps already (bool), scored as they are (threshold ignored, AUC n/a).
    """
    out_dir = Path(out_dir)
    names = [s.name for s in samples]
    labels, masks = [s.label for s in samples], [s.mask for s in samples]
    summary = summarize(probs, labels, masks, threshold, names, binary=binary)
    summary["sensitivity_by_calibre"] = sensitivity_by_calibre(
        probs, labels, masks, threshold, binary=binary
    )
    summary["f1_with_tolerance"] = f1_with_tolerance(probs, labels, masks, threshold, binary=binary)
    if not binary:
        summary["fov_f1_by_threshold"] = fov_f1_by_threshold(probs, labels, masks)
    second = None
    if all(s.second is not None for s in samples):
        seconds = [s.second for s in samples]
        summary["second_observer_with_tolerance"] = f1_with_tolerance(
            seconds, labels, masks, binary=True
        )
        second = summarize(seconds, labels, masks, names=names, binary=True)
        summary["second_observer"] = {p: second[p] for p in PROTOCOLS}
    summary.update(extra or {})
    write_json(out_dir / "metrics.json", summary)
    write_text(out_dir / "per_image.csv", per_image_csv(summary))
    write_text(out_dir / "results.md", results_markdown(title, summary, second, "second manual"))
    if save_images:
        for sample, prob in zip(samples, probs, strict=True):
            pred = np.asarray(prob, dtype=bool) if binary else prob > threshold
            if not binary:
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
    from data.scale import FovBand, as_band, by_diameter, parse_scale

    scale = parse_scale(scale)  # as recorded in metrics.json: "auto", a factor or "538px"
    band = as_band(train_diameter)
    values = list(factors.values())
    resampled = sum(value != 1.0 for value in values)
    shrunk = sum(value < 1.0 for value in values)
    if isinstance(scale, FovBand):
        mode = f"--scale {scale} (every FOV brought to that diameter)"
    elif scale == "vessels":
        mode = (
            "--scale vessels (main vessels wider than the calibre range the weights draw at "
            f"their training scale shrunk to its middle; first pass at {band})"
        )
    elif scale != "auto":
        mode = f"--scale {scale:g}"
    elif band is None:
        mode = "--scale auto (the weights' training scale is not recorded: factor 1)"
    else:
        mode = f"--scale auto (weights trained at a FOV diameter of {band})"
    second = (
        f"; the {shrunk} shrunk also at {SECOND_SCALE:.2f} times their factor, maps averaged"
        if by_diameter(scale) and shrunk and band is not None and band.single
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
    mirror: bool = False,
    split: str = "test",
) -> dict[str, Any]:
    """Predict the config's `split` ("test", or "train": every training image, validation ones
    included) with `weights` and write the evaluation into `out_dir`.

    scale: "auto" (each image brought to the FOV diameter the weights were
    trained at, `data.scale`), or a factor; None: `evaluate.scale`.
    upsample: test images enlarged this many times first (`data.scale.upsample_sample`,
    a stand-in for a high-resolution camera).
    mirror: each image also predicted mirrored left-right, the two maps averaged (`segment`).
    """
    from data import load_dataset
    from data.readers import AV_DATASETS
    from data.scale import (
        image_factor,
        parse_scale,
        prediction_factors,
        scale_text,
        upsample_sample,
        weights_config,
        weights_fov_band,
        weights_vessel_calibre,
    )
    from inference.engines import make_predictor
    from models import is_av_model, load_model

    scale = parse_scale(scale if scale is not None else cfg["evaluate"]["scale"])
    dataset = load_dataset(cfg["dataset"])
    samples = [upsample_sample(sample, upsample) for sample in split_samples(dataset, split)]
    model = load_model(weights)  # a damaged file is refused before any warning
    av = is_av_model(model)
    check_av_evaluation(av, dataset.name, scale, weights)
    if dataset.name in AV_DATASETS and not av:  # a vessel network on the A/V labels' vessels
        samples = vessel_samples(samples)
    train_diameter = weights_fov_band(weights, scale)
    predictor = make_predictor(model, engine or cfg["evaluate"]["engine"])
    factors = {s.name: image_factor(scale, s.mask, train_diameter, s.name) for s in samples}
    threshold = cfg["evaluate"]["threshold"]
    calibre_range = weights_vessel_calibre(weights) if scale == "vessels" else None
    start = time.perf_counter()
    probs = []
    for sample in samples:
        pad_shape = pad_shape_for(dataset.name, sample.image.shape[:2])
        first = prediction_factors(scale, factors[sample.name], train_diameter)
        if calibre_range is None:
            probs.append(segment(predictor, sample.image, pad_shape, first, mirror=mirror))
            continue
        prob, used = segment_by_vessels(
            predictor, sample.image, sample.mask, first, threshold, calibre_range, pad_shape,
            mirror=mirror,
        )  # fmt: skip
        probs.append(prob)
        factors[sample.name] = used[0]
    seconds = time.perf_counter() - start
    title = f"{cfg['model']['name']} on {dataset.name} {split} ({Path(weights).name})"
    if upsample != 1:
        title += f", images upsampled x{upsample}"
    if mirror:
        title += ", averaged with their mirror images (--tta)"
    folded = (weights_config(weights).get("evaluate") or {}).get("folded_threshold")
    if folded is not None:
        title += f"; the threshold {folded:.2f} chosen on their validation images is folded into them"
    timing = {
        "engine": predictor.name,
        "images": len(probs),
        "predict_seconds": round(seconds, 3),
        "seconds_per_image": round(seconds / max(len(probs), 1), 4),
    }
    scaling = {
        "scale": scale_text(scale),
        "train_fov_diameter": train_diameter and train_diameter.low,
        "max_fov_diameter": None
        if train_diameter is None or train_diameter.single
        else train_diameter.high,
        "upsample": upsample,
        "factors": factors,
    }
    score = evaluate_predictions
    if av:
        score = functools.partial(evaluate_av_predictions, vote=cfg["evaluate"]["av_vote"])
        if not cfg["evaluate"]["av_vote"]:
            title += ", each pixel typed by itself (evaluate.av_vote false)"
    summary = score(
        samples,
        probs,
        Path(out_dir),
        threshold,
        title,
        save_images=cfg["evaluate"]["save_images"],
        extra={
            "timing": timing,
            "scaling": scaling,
            "test_time_augmentation": "mirror" if mirror else None,
            "folded_threshold": folded,
        },
    )
    if verbose:  # results.md already holds the scale line (describe_factors)
        print_report(
            summary,
            out_dir,
            f"{len(probs)} images predicted in {seconds:.1f} s with the {predictor.name} engine",
        )
    return summary


def check_av_evaluation(av: bool, dataset: str, scale, weights) -> None:
    """One sentence when an artery/vein network cannot be scored as asked: on a dataset without
    artery/vein labels, or with --scale vessels (which reads a one-channel vessel map)."""
    from data.readers import AV_DATASETS

    if av and dataset not in AV_DATASETS:
        raise UserError(
            f"weights {weights} are an artery/vein network; dataset '{dataset}' has no artery/vein "
            f"labels to score it against (use one of {', '.join(AV_DATASETS)})"
        )
    if av and scale == "vessels":
        raise UserError(
            f"--scale vessels works with vessel networks; weights {weights} are an artery/vein "
            "network: use --scale auto or a factor"
        )


BINARY_SUFFIX = "_binary.png"  # predict.py's vessel map of <stem>.<ext> (inference.outputs)


def find_binary_maps(folder: Path, names: list[str]) -> dict[str, Path]:
    """{test image name: `<name>_binary.png` under `folder`, searched through its sub-folders
    (predict.py --recursive keeps them)}; a UserError names what is missing or found twice."""
    if not folder.is_dir():
        raise UserError(
            f"--predictions {folder} is not a folder; give the --out folder of predict.py"
        )
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob(f"*{BINARY_SUFFIX}")):
        found.setdefault(path.name[: -len(BINARY_SUFFIX)], []).append(path)
    missing = [name for name in names if name not in found]
    if missing:
        listed = ", ".join(f"{name}{BINARY_SUFFIX}" for name in missing[:4])
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        raise UserError(
            f"{folder} lacks the vessel maps of {len(missing)} of the {len(names)} test images "
            f"({listed}{more}); run predict.py on the test photographs with --out {folder}"
        )
    twice = [name for name in names if len(found[name]) > 1]
    if twice:
        where = " and ".join(str(p) for p in found[twice[0]][:2])
        raise UserError(
            f"{folder} holds {twice[0]}{BINARY_SUFFIX} more than once ({where}); "
            "point --predictions at the sub-folder of this dataset"
        )
    return {name: found[name][0] for name in names}


def read_binary_map(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """A predicted vessel map as bool at `shape` (the label's) and whether it was resampled
    (nearest neighbour, as the labels of datasets read at reduced size are); a map whose aspect
    ratio differs from the label's by more than 1 % is refused: it is another photograph."""
    from data.io import read_label
    from data.scale import resize_nearest

    pred = read_label(path).astype(bool)
    if pred.shape == tuple(shape):
        return pred, False
    ratios = (pred.shape[0] / shape[0], pred.shape[1] / shape[1])
    if abs(ratios[0] / ratios[1] - 1) > 0.01:
        raise UserError(
            f"{path} is {pred.shape[1]} x {pred.shape[0]} but its test image's label is "
            f"{shape[1]} x {shape[0]}, another aspect ratio: is it the prediction of this photograph?"
        )
    return resize_nearest(pred, tuple(shape)), True


def evaluate_prediction_folder(
    cfg: dict[str, Any],
    folder: str | Path,
    out_dir: str | Path,
    verbose: bool = True,
    split: str = "test",
) -> dict[str, Any]:
    """Score the vessel maps predict.py wrote into `folder` (`<name>_binary.png`, at the
    photograph's size) against the config's `split` ("test" or "train"), as they are: whatever
    weights, threshold and scale predict.py used. Maps of another size than the label (HRF's full-size
    photographs against its half-size labels) are resampled to it by nearest neighbour."""
    from data import load_dataset
    from data.readers import AV_DATASETS

    folder = Path(folder)
    dataset = load_dataset(cfg["dataset"])
    test = split_samples(dataset, split)
    test = vessel_samples(test) if dataset.name in AV_DATASETS else test
    paths = find_binary_maps(folder, [sample.name for sample in test])
    maps, resampled = [], 0
    for sample in test:
        pred, changed = read_binary_map(paths[sample.name], sample.label.shape[:2])
        maps.append(pred)
        resampled += changed
    summary = evaluate_predictions(
        test,
        maps,
        Path(out_dir),
        cfg["evaluate"]["threshold"],
        f"predict.py's vessel maps ({folder}) on {dataset.name} {split}",
        save_images=cfg["evaluate"]["save_images"],
        extra={"predictions": {"folder": str(folder), "resampled_to_label_size": resampled}},
        binary=True,
    )
    if verbose:
        note = f" ({resampled} resampled to their label's size)" if resampled else ""
        print_report(summary, out_dir, f"{len(maps)} vessel maps scored{note}", "fov")
    return summary

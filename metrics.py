"""Evaluation metrics of retinal vessel segmentation (docs/paper.md section 5). Pure functions, no I/O.

Protocol, stated once:

- A pixel is predicted vessel when ``prob > threshold`` (strictly greater,
  threshold 0.5 by default), as the SA-UNet evaluation code does with
  ``y_pred > 0.5``.
- "whole_image": every pixel of the (unpadded) image; "fov": only pixels
  where the boolean FOV mask is True.
- Per-image metrics are averaged over images ("mean", with the population
  standard deviation "std", ddof=0); "pooled" computes each metric once from
  all pixels of all images together (confusion counts summed, one AUC over
  the concatenated pixels). A NaN in any image (AUC of a one-class image)
  makes its mean and std NaN rather than silently averaging fewer images.
- Undefined ratios (0 / 0) are 0.0, like scikit-learn's default
  ``zero_division``: se with no vessel pixel, sp with no background pixel,
  F1 and Jaccard with no vessel pixel predicted or labelled, MCC when any
  marginal is empty (as ``sklearn.metrics.matthews_corrcoef``), acc with no
  pixel at all. AUC is NaN when only one class is present in the label, and
  for binary maps without probabilities (the second human observer).

Sensitivity by calibre (``sensitivity_by_calibre``): each labelled vessel
pixel inside the FOV takes the calibre (width, px at the scored size) of the
reference vessel it belongs to, the width at its nearest point of the
label's skeleton (``measurements.calibre_map``); the pixels found
(predicted vessel) over those labelled, per calibre bin, pooled over the
images. It says which vessels a model misses: capillaries or trunks.

F1 with a tolerance at the borders (``f1_with_tolerance``): inside the FOV, a
predicted vessel pixel counts as right when a labelled vessel pixel lies within
t px of it (Euclidean), and a labelled pixel as found when a predicted one lies
within t px; F1 from that precision and recall, mean over images. t = 0 is the
plain F1. It separates drawing a vessel a pixel wider or narrower than the
annotator did (gone at t = 1) from vessels found or missed (kept at any t).

Comparing two models on the same images (``paired_comparison``, used by
compare.py): per-image differences d = B - A; their mean with a paired
bootstrap confidence interval (images resampled with replacement, the same
draw for both models, percentile interval, fixed seed) and the two-sided
Wilcoxon signed-rank p-value (zero differences dropped; p = 1 when every
difference is zero).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from data.av import ARTERY, CROSSING, UNCERTAIN, VEIN, av_classes

METRIC_KEYS = ("acc", "se", "sp", "auc", "mcc", "f1", "jaccard")
METRIC_LABELS = {
    "acc": "Acc",
    "se": "Se",
    "sp": "Sp",
    "auc": "AUC",
    "mcc": "MCC",
    "f1": "F1",
    "jaccard": "Jaccard",
}
PROTOCOLS = ("whole_image", "fov")
PROTOCOL_LABELS = {"whole_image": "whole image", "fov": "inside FOV"}
DEFAULT_THRESHOLD = 0.5


def confusion(pred_bool, label_bool):
    """Confusion counts of two same-shape boolean arrays.

    Returns:
        (tp, fp, fn, tn) as Python ints (exact counts; no int64 overflow downstream).
    """
    pred = np.asarray(pred_bool, dtype=bool)
    label = np.asarray(label_bool, dtype=bool)
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
    n = pred.size
    tp = int(np.count_nonzero(pred & label))
    n_pred = int(np.count_nonzero(pred))
    n_label = int(np.count_nonzero(label))
    fp = n_pred - tp
    fn = n_label - tp
    tn = n - tp - fp - fn
    return tp, fp, fn, tn


def _ratio(numerator, denominator):
    return float(numerator) / float(denominator) if denominator > 0 else 0.0


def scores_from_confusion(tp, fp, fn, tn):
    """Threshold metrics from confusion counts (undefined ratios are 0.0, see module doc).

    Returns:
        dict with acc, se, sp, mcc, f1, jaccard as floats (no auc: it needs
        probabilities).
    """
    tp, fp, fn, tn = (float(v) for v in (tp, fp, fn, tn))
    # float before multiplying: the product of four pixel counts overflows int64
    mcc_denominator = np.sqrt((tp + fp) * (tp + fn)) * np.sqrt((tn + fp) * (tn + fn))
    return {
        "acc": _ratio(tp + tn, tp + fp + fn + tn),
        "se": _ratio(tp, tp + fn),
        "sp": _ratio(tn, tn + fp),
        "mcc": _ratio(tp * tn - fp * fn, mcc_denominator),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "jaccard": _ratio(tp, tp + fp + fn),
    }


def _auc(prob, label):
    """ROC AUC of probabilities (1-D) against boolean labels; NaN with one class."""
    n_positive = int(np.count_nonzero(label))
    if n_positive == 0 or n_positive == label.size:
        return float("nan")
    return float(roc_auc_score(label, prob))


def _squeeze(array, what):
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"{what} must be (H, W) or (H, W, 1), got shape {array.shape}")
    return array


def _pixels(prob, label, mask, binary):
    """Flattened (values, label) of the selected pixels, after checking shapes and ranges."""
    prob = _squeeze(prob, "prediction")
    label = _squeeze(label, "label")
    if prob.shape != label.shape:
        raise ValueError(f"prediction shape {prob.shape} differs from label shape {label.shape}")
    if label.dtype != bool:
        if not np.isin(label, (0, 1)).all():
            raise ValueError("label must hold only 0 and 1 (or be boolean)")
        label = label.astype(bool)
    if binary:
        if prob.dtype != bool:
            if not np.isin(prob, (0, 1)).all():
                raise ValueError("binary prediction must hold only 0 and 1 (or be boolean)")
            prob = prob.astype(bool)
    else:
        prob = prob.astype(np.float64, copy=False)
        if prob.size and not (prob.min() >= 0.0 and prob.max() <= 1.0):
            raise ValueError("probabilities must lie in [0, 1]")
    if mask is not None:
        mask = _squeeze(mask, "mask")
        if mask.shape != label.shape:
            raise ValueError(f"mask shape {mask.shape} differs from label shape {label.shape}")
        mask = mask.astype(bool)
        return prob[mask], label[mask]
    return prob.ravel(), label.ravel()


def _scores(values, label, threshold, binary):
    pred = values if binary else values > threshold
    scores = scores_from_confusion(*confusion(pred, label))
    scores["auc"] = float("nan") if binary else _auc(values, label)
    return {key: scores[key] for key in METRIC_KEYS}


def image_metrics(prob, label, mask=None, threshold=DEFAULT_THRESHOLD):
    """Metrics of one image at a threshold.

    Args:
        prob: (H, W) or (H, W, 1) float vessel probabilities in [0, 1].
        label: same shape, {0, 1} integers or bool.
        mask: same shape bool FOV mask, or None for the whole image.
        threshold: a pixel is vessel when prob > threshold.

    Returns:
        dict with the keys of METRIC_KEYS (floats; auc NaN with one class).
    """
    values, truth = _pixels(prob, label, mask, binary=False)
    return _scores(values, truth, threshold, binary=False)


def binary_scores(pred_bool, label, mask=None):
    """Metrics of a binary map without probabilities (e.g. the second observer).

    Args:
        pred_bool: (H, W) or (H, W, 1) bool or {0, 1} vessel map.
        label, mask: as in ``image_metrics``.

    Returns:
        dict with the keys of METRIC_KEYS; auc is NaN (no scores to rank).
    """
    values, truth = _pixels(pred_bool, label, mask, binary=True)
    return _scores(values, truth, None, binary=True)


def _aggregate(per_image, pooled):
    table = np.array([[scores[key] for key in METRIC_KEYS] for scores in per_image], np.float64)
    return {
        "mean": dict(zip(METRIC_KEYS, map(float, table.mean(axis=0)), strict=True)),
        "std": dict(zip(METRIC_KEYS, map(float, table.std(axis=0, ddof=0)), strict=True)),
        "pooled": pooled,
    }


def _test_set(probs, references, masks, names, what: str):
    """(probs, references, masks, names) as lists of one length n >= 1: masks [None] * n
    without masks, names "0", "1", ... without names; a ValueError where the lengths differ."""
    probs, references = list(probs), list(references)
    n = len(probs)
    if n == 0 or len(references) != n:
        raise ValueError(
            f"need one {what} per prediction, got {n} predictions and {len(references)} {what}s"
        )
    masks = list(masks) if masks is not None else [None] * n
    names = [str(i) for i in range(n)] if names is None else [str(name) for name in names]
    if len(masks) != n or len(names) != n:
        raise ValueError(f"need {n} masks and names, got {len(masks)} and {len(names)}")
    return probs, references, masks, names


def summarize(
    probs,
    labels,
    masks=None,
    threshold=DEFAULT_THRESHOLD,
    names=None,
    *,
    binary=False,
):
    """Per-image, mean, std and pooled metrics of a test set, whole image and inside the FOV.

    Args:
        probs: sequence of (H, W) or (H, W, 1) probabilities in [0, 1] (or,
            with ``binary=True``, bool / {0, 1} maps, whose AUC is NaN).
        labels: sequence of matching {0, 1} or bool labels.
        masks: sequence of matching bool FOV masks, or None. Without masks
            the "fov" protocol is computed on the whole image (equal to
            "whole_image") and ``fov_mask`` is False, so a table can say so.
        threshold: a pixel is vessel when prob > threshold (ignored when binary).
        names: image names for "per_image" (default "0", "1", ...).

    Returns:
        {"threshold", "fov_mask": bool, "n_images",
         "whole_image": {"mean": {...}, "std": {...}, "pooled": {...}},
         "fov": {...same...},
         "per_image": [{"name", "whole_image": {...}, "fov": {...}}, ...]}
        where every {...} of metrics has the keys of METRIC_KEYS.
    """
    probs, labels, masks, names = _test_set(probs, labels, masks, names, "label")
    fov_mask, n = masks[0] is not None, len(probs)

    per_image = []
    pixels = {protocol: ([], []) for protocol in PROTOCOLS}
    for prob, label, mask, name in zip(probs, labels, masks, names, strict=True):
        entry = {"name": name}
        for protocol, protocol_mask in (("whole_image", None), ("fov", mask)):
            values, truth = _pixels(prob, label, protocol_mask, binary)
            entry[protocol] = _scores(values, truth, threshold, binary)
            pixels[protocol][0].append(values)
            pixels[protocol][1].append(truth)
        per_image.append(entry)

    summary = {
        "threshold": None if binary else float(threshold),
        "fov_mask": fov_mask,
        "n_images": n,
    }
    for protocol in PROTOCOLS:
        values = np.concatenate(pixels[protocol][0])
        truth = np.concatenate(pixels[protocol][1])
        pooled = _scores(values, truth, threshold, binary)
        summary[protocol] = _aggregate([entry[protocol] for entry in per_image], pooled)
    summary["per_image"] = per_image
    return summary


CALIBRE_EDGES = (3.0, 5.0, 7.0, 9.0)  # px: bins < 3, 3-5, 5-7, 7-9, >= 9 (lower edge included)


def calibre_bin_names(edges=CALIBRE_EDGES) -> list[str]:
    """The bins' names: '< 3', '3-5', ..., '>= 9' for the default edges."""
    cuts = [f"{edge:g}" for edge in edges]
    middle = [f"{a}-{b}" for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return [f"< {cuts[0]}", *middle, f">= {cuts[-1]}"]


def _binary_maps(prob, label, threshold, binary):
    """(predicted vessel, labelled vessel): same-shape 2-D bool maps of one image, after the
    checks of ``summarize`` (prob > threshold, or the binary map as it is)."""
    values, truth = _pixels(prob, label, None, binary)
    label = truth.reshape(_squeeze(label, "label").shape)
    return (values if binary else values > threshold).reshape(label.shape), label


def sensitivity_by_calibre(
    probs, labels, masks=None, threshold=DEFAULT_THRESHOLD, *, binary=False, edges=CALIBRE_EDGES
):
    """Sensitivity by the calibre of the reference vessels (module docstring), pooled over images.

    probs, labels, masks, threshold, binary: as for ``summarize``. Returns one dict per bin,
    in order: {"calibre_px": name, "labelled": pixels, "found": of them predicted vessel,
    "se": found / labelled (0.0 with none labelled)}.
    """
    from measurements import calibre_map

    counts = np.zeros((len(edges) + 1, 2), np.int64)
    masks = [None] * len(labels) if masks is None else masks
    for prob, label, mask in zip(probs, labels, masks, strict=True):
        pred, label = _binary_maps(prob, label, threshold, binary)
        inside = label if mask is None else label & _squeeze(mask, "mask").astype(bool)
        bins = np.digitize(calibre_map(label)[inside], edges)
        counts[:, 0] += np.bincount(bins, weights=pred[inside], minlength=len(edges) + 1).astype(
            np.int64
        )
        counts[:, 1] += np.bincount(bins, minlength=len(edges) + 1)
    return [
        {
            "calibre_px": name,
            "labelled": int(total),
            "found": int(found),
            "se": float(_ratio(found, total)),
        }
        for name, (found, total) in zip(calibre_bin_names(edges), counts, strict=True)
    ]


def calibre_table(rows, digits=4) -> str:
    """Markdown table of ``sensitivity_by_calibre``'s rows: one column per bin ("-" where no
    pixel is labelled)."""
    head = "| | " + " | ".join(f"{row['calibre_px']} px" for row in rows) + " |"
    rule = "| --- |" + " ---: |" * len(rows)
    se = (
        "| Se | "
        + " | ".join(f"{row['se']:.{digits}f}" if row["labelled"] else "-" for row in rows)
        + " |"
    )
    share = sum(row["labelled"] for row in rows)
    pixels = (
        "| share of labelled pixels | "
        + " | ".join(f"{row['labelled'] / share:.3f}" if share else "0.000" for row in rows)
        + " |"
    )
    return "\n".join([head, rule, se, pixels]) + "\n"


def _format_value(value, digits):
    return "n/a" if np.isnan(value) else f"{value:.{digits}f}"


def format_table(summary, rows=PROTOCOLS, stat="mean", digits=4, keys=METRIC_KEYS):
    """Markdown table of one statistic of ``summarize`` output, one row per protocol.

    Args:
        summary: output of ``summarize``.
        rows: protocols to show, from PROTOCOLS.
        stat: "mean" (the paper's per-image mean), "std" or "pooled".
        digits: decimals of each number; NaN prints as "n/a".
        keys: metric columns, from METRIC_KEYS.

    Returns:
        The table as a string (header, separator, one line per row, final newline).
    """
    lines = [
        "| protocol | " + " | ".join(METRIC_LABELS[key] for key in keys) + " |",
        "| --- |" + " --- |" * len(keys),
    ]
    for protocol in rows:
        label = PROTOCOL_LABELS[protocol]
        if protocol == "fov" and not summary.get("fov_mask", True):
            label += " (no mask: whole image)"
        if stat != "mean":
            label += f" ({stat})"
        values = summary[protocol][stat]
        lines.append(
            f"| {label} | " + " | ".join(_format_value(values[key], digits) for key in keys) + " |"
        )
    return "\n".join(lines) + "\n"


# Paired comparison of two models (compare.py)

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def bootstrap_mean_ci(
    differences, resamples=BOOTSTRAP_RESAMPLES, confidence=0.95, seed=BOOTSTRAP_SEED
):
    """Percentile bootstrap interval of the mean of paired per-image differences.

    Args:
        differences: 1-D sequence of per-image differences (B - A), finite.
        resamples: bootstrap resamples of the images (with replacement).
        confidence: coverage of the interval, in (0, 1).
        seed: seed of numpy's default_rng: the same inputs give the same interval.

    Returns:
        (low, high) floats.
    """
    d = _differences(differences)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples}")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, np.float64)
    chunk = max(1, 2_000_000 // d.size)  # bounded memory for large test sets
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        means[start:stop] = d[rng.integers(0, d.size, size=(stop - start, d.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def wilcoxon_p(differences):
    """Two-sided p-value of the Wilcoxon signed-rank test of paired differences (B - A).

    Zero differences are dropped (scipy's default); when every difference is zero
    the models are indistinguishable on these images and p is 1.0.
    """
    from scipy.stats import wilcoxon

    d = _differences(differences)
    if not np.any(d != 0.0):
        return 1.0
    return float(wilcoxon(d).pvalue)


def paired_comparison(
    scores_a, scores_b, resamples=BOOTSTRAP_RESAMPLES, confidence=0.95, seed=BOOTSTRAP_SEED
):
    """Compare model B with model A on the same images, one score per image each.

    Args:
        scores_a, scores_b: 1-D sequences of one metric per image (e.g. F1), same
            length and image order.
        resamples, confidence, seed: of the bootstrap (``bootstrap_mean_ci``).

    Returns:
        {"n_images", "mean_a", "mean_b", "mean_diff" (B - A), "ci_low", "ci_high",
         "confidence", "resamples", "seed", "p_wilcoxon", "b_better", "b_worse", "ties"}.
    """
    a = np.asarray(scores_a, np.float64)
    b = np.asarray(scores_b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-D score lists of equal length, got {a.shape} and {b.shape}")
    d = _differences(b - a)
    low, high = bootstrap_mean_ci(d, resamples, confidence, seed)
    return {
        "n_images": int(d.size),
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
        "mean_diff": float(d.mean()),
        "ci_low": low,
        "ci_high": high,
        "confidence": float(confidence),
        "resamples": int(resamples),
        "seed": int(seed),
        "p_wilcoxon": wilcoxon_p(d),
        "b_better": int(np.count_nonzero(d > 0)),
        "b_worse": int(np.count_nonzero(d < 0)),
        "ties": int(np.count_nonzero(d == 0)),
    }


def _differences(values):
    d = np.asarray(values, np.float64)
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"need a non-empty 1-D list of per-image differences, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("per-image differences must be finite (a NaN score cannot be compared)")
    return d


THRESHOLD_GRID = tuple(round(0.05 + 0.01 * i, 2) for i in range(91))  # 0.05, 0.06, ..., 0.95


def f1_by_threshold(probs, labels, grid=THRESHOLD_GRID) -> np.ndarray:
    """Mean over images of F1 at each threshold of `grid` (vessel: prob > threshold), shape
    (len(grid),). probs, labels: sequences of same-shape arrays per image (labels in {0, 1}).

    One pass per image: the thresholds cut a histogram of the vessel pixels' and of the background
    pixels' probabilities, so TP(t) and FP(t) come from cumulative sums, not one map per threshold.
    """
    edges = np.asarray(grid, dtype=np.float64)
    scores = []
    for prob, label in zip(probs, labels, strict=True):
        prob = np.asarray(prob, dtype=np.float64).ravel()  # as `image_metrics` compares
        label = np.asarray(label).ravel().astype(bool)
        if prob.shape != label.shape:
            raise ValueError(f"prediction of {prob.size} pixels against a label of {label.size}")
        # Pixels above each threshold: searchsorted 'left' puts p == t below t (prob > t).
        bins = np.searchsorted(edges, prob, side="left")  # how many thresholds lie below p
        above_pos = np.cumsum(np.bincount(bins[label], minlength=len(edges) + 1)[::-1])[::-1]
        above_neg = np.cumsum(np.bincount(bins[~label], minlength=len(edges) + 1)[::-1])[::-1]
        tp = above_pos[1:].astype(np.float64)  # p > grid[k]  <=>  bins >= k + 1
        fp = above_neg[1:].astype(np.float64)
        fn = label.sum() - tp
        denominator = 2 * tp + fp + fn
        scores.append(np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0))
    if not scores:
        raise ValueError("no images to choose a threshold on")
    return np.mean(scores, axis=0)


def choose_threshold(probs, labels, grid=THRESHOLD_GRID) -> tuple[float, float]:
    """(threshold, mean F1 there): the threshold of `grid` that maximises the mean F1 over images
    (`f1_by_threshold`); of equal scores, the one nearest 0.5."""
    return best_threshold(f1_by_threshold(probs, labels, grid), grid)


def best_threshold(f1, grid=THRESHOLD_GRID) -> tuple[float, float]:
    """`choose_threshold` on a curve `f1_by_threshold` already gave for `grid`."""
    best = max(f1)
    candidates = [t for t, score in zip(grid, f1, strict=True) if score == best]
    threshold = min(candidates, key=lambda t: abs(t - DEFAULT_THRESHOLD))
    return float(threshold), float(best)


TOLERANCES_PX = (0, 1, 2)


def f1_with_tolerance(
    probs, labels, masks=None, threshold=DEFAULT_THRESHOLD, *, binary=False,
    tolerances=TOLERANCES_PX,
) -> list[dict]:  # fmt: skip
    """F1 with a tolerance of t px at the vessels' borders (module docstring), mean over images.

    probs, labels, masks, threshold, binary: as for ``summarize`` (masks None: the whole image).
    Returns one dict per tolerance, in order: {"tolerance_px": t, "precision", "recall", "f1"},
    each the mean over images (0.0 where undefined, as the other scores).
    """
    from scipy.ndimage import binary_dilation

    def within(vessels, t):  # the pixels within t px (Euclidean) of a vessel pixel
        if t <= 0 or not vessels.any():
            return vessels
        r = int(np.floor(t))
        y, x = np.mgrid[-r : r + 1, -r : r + 1]
        return binary_dilation(vessels, structure=x * x + y * y <= t * t)

    scores = np.zeros((len(tolerances), 3))
    masks = [None] * len(labels) if masks is None else masks
    for prob, label, mask in zip(probs, labels, masks, strict=True):
        pred, label = _binary_maps(prob, label, threshold, binary)
        inside = np.ones_like(label) if mask is None else _squeeze(mask, "mask").astype(bool)
        label, pred = label & inside, pred & inside
        for row, t in enumerate(tolerances):
            precision = _ratio(np.count_nonzero(pred & within(label, t)), np.count_nonzero(pred))
            recall = _ratio(np.count_nonzero(label & within(pred, t)), np.count_nonzero(label))
            scores[row] += (precision, recall, _ratio(2 * precision * recall, precision + recall))
    scores /= max(len(labels), 1)
    return [
        {"tolerance_px": t, "precision": float(p), "recall": float(r), "f1": float(f)}
        for t, (p, r, f) in zip(tolerances, scores, strict=True)
    ]


def tolerance_table(rows_by_name: dict[str, list[dict]], digits=4) -> str:
    """Markdown table of ``f1_with_tolerance`` results: one row per name (model, second
    observer), one F1 column per tolerance."""
    first = next(iter(rows_by_name.values()))
    head = "| | " + " | ".join(f"{row['tolerance_px']} px" for row in first) + " |"
    rule = "| --- |" + " ---: |" * len(first)
    body = [
        f"| {name} | " + " | ".join(f"{row['f1']:.{digits}f}" for row in rows) + " |"
        for name, rows in rows_by_name.items()
    ]
    return "\n".join([head, rule, *body]) + "\n"


THRESHOLDS_SHOWN = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def fov_f1_by_threshold(probs, labels, masks, grid=THRESHOLD_GRID) -> dict:
    """``f1_by_threshold`` inside the FOV (masks None, or a None mask: the whole image):
    {"grid": [...], "f1": [...], "best": [t, f1]}."""
    masks = [None] * len(probs) if masks is None else masks
    inside = [
        np.ones(np.shape(p)[:2], bool)
        if m is None
        else np.asarray(m).astype(bool).reshape(np.shape(p)[:2])
        for p, m in zip(probs, masks, strict=True)
    ]
    curve = f1_by_threshold(
        [np.asarray(p).reshape(m.shape)[m] for p, m in zip(probs, inside, strict=True)],
        [np.asarray(y).reshape(m.shape)[m] for y, m in zip(labels, inside, strict=True)],
        grid,
    )
    return {
        "grid": list(grid),
        "f1": [float(v) for v in curve],
        "best": list(best_threshold(curve, grid)),
    }


def threshold_table(curve: dict, shown=THRESHOLDS_SHOWN, digits=4) -> str:
    """Markdown: F1 at the `shown` thresholds of a ``fov_f1_by_threshold`` curve, and its best."""
    at = dict(zip(curve["grid"], curve["f1"], strict=True))
    head = "| threshold | " + " | ".join(f"{t:g}" for t in shown) + " | best |"
    rule = "| --- |" + " ---: |" * (len(shown) + 1)
    t_best, f_best = curve["best"]
    row = "| F1 | " + " | ".join(f"{at[t]:.{digits}f}" for t in shown)
    return "\n".join([head, rule, row + f" | {f_best:.{digits}f} at {t_best:g} |"]) + "\n"


# Arteries and veins (docs/arteries-veins.md, "Scoring arteries and veins").

AV_SEGMENTATION_KEYS = ("f1_artery", "f1_vein", "f1_mean", "f1_weighted")
AV_CLASSIFICATION_KEYS = ("acc", "se", "sp")
AV_PROTOCOLS = {"segmentation": AV_SEGMENTATION_KEYS, "classification": AV_CLASSIFICATION_KEYS}


def _av_inputs(probs, classes, mask):
    """Checked (probs (H, W, 3) float64, classes (H, W) int, inside (H, W) bool) of one image."""
    probs = np.asarray(probs, np.float64)
    classes = np.asarray(classes)
    if probs.ndim != 3 or probs.shape[-1] != 3:
        raise ValueError(f"A/V probabilities must be (H, W, 3), got shape {probs.shape}")
    classes = _squeeze(classes, "class map")
    if classes.shape != probs.shape[:2]:
        raise ValueError(f"class map {classes.shape} and probabilities {probs.shape} differ")
    if not np.isin(classes, range(5)).all():
        raise ValueError("a class map must hold only the classes 0..4 of data.av")
    if probs.size and not (probs.min() >= 0.0 and probs.max() <= 1.0):
        raise ValueError("probabilities must lie in [0, 1]")
    inside = np.ones(classes.shape, bool) if mask is None else _squeeze(mask, "mask").astype(bool)
    if inside.shape != classes.shape:
        raise ValueError(f"mask shape {inside.shape} differs from class map shape {classes.shape}")
    return probs, classes.astype(np.int64), inside


def _av_segmentation_counts(probs, classes, mask, threshold):
    """{"artery": (tp, fp, fn, tn), "vein": (...)} of protocol (a) in one image."""
    probs, classes, inside = _av_inputs(probs, classes, mask)
    scored = inside & ~np.isin(classes, (CROSSING, UNCERTAIN))
    predicted = av_classes(probs, threshold)[scored]
    reference = classes[scored]
    return {
        name: confusion(predicted == value, reference == value)
        for name, value in (("artery", ARTERY), ("vein", VEIN))
    }


def _av_segmentation_from_counts(counts):
    f1 = {name: scores_from_confusion(*counts[name])["f1"] for name in ("artery", "vein")}
    n = {name: counts[name][0] + counts[name][2] for name in ("artery", "vein")}  # tp + fn
    return {
        "f1_artery": f1["artery"],
        "f1_vein": f1["vein"],
        "f1_mean": (f1["artery"] + f1["vein"]) / 2.0,
        "f1_weighted": _ratio(n["artery"] * f1["artery"] + n["vein"] * f1["vein"], sum(n.values())),
    }


def av_segmentation_scores(probs, classes, mask=None, threshold=DEFAULT_THRESHOLD):
    """Protocol (a), A/V segmentation, of one image: artery F1, vein F1, their mean, and their mean
    weighted by the reference pixels of each (`f1_weighted`).

    Args:
        probs: (H, W, 3) float in [0, 1], the A/V network's vessel, artery, vein probabilities;
            each pixel's predicted class is `data.av.av_classes(probs, threshold)`.
        classes: (H, W) reference class map of `data.av` (0..4).
        mask: (H, W) bool FOV mask, or None for the whole image.
        threshold: a pixel is predicted vessel when p_vessel > threshold.

    Scored pixels: inside the mask, less the reference's CROSSING and UNCERTAIN pixels (left out of
    both prediction and reference). Artery F1 = F1 of the predicted-artery pixels against the
    reference artery pixels there (background, veins and pixels predicted background all count as
    not artery); vein F1 likewise. 0.0 where undefined (no artery predicted or labelled).
    """
    return _av_segmentation_from_counts(_av_segmentation_counts(probs, classes, mask, threshold))


def _av_classification_counts(probs, classes, mask):
    probs, classes, inside = _av_inputs(probs, classes, mask)
    typed = inside & np.isin(classes, (ARTERY, VEIN))
    called_artery = probs[..., 1] >= probs[..., 2]
    return confusion(called_artery[typed], classes[typed] == ARTERY)


def _av_classification_from_counts(tp, fp, fn, tn):
    scores = scores_from_confusion(tp, fp, fn, tn)
    return {key: scores[key] for key in AV_CLASSIFICATION_KEYS}


def av_classification_scores(probs, classes, mask=None):
    """Protocol (b), A/V classification of the reference vessel pixels, of one image.

    Args:
        probs, classes, mask: as in ``av_segmentation_scores`` (no threshold: the vessel channel
            is not used).

    Scored pixels: the reference's ARTERY and VEIN pixels inside the mask (crossings, uncertain
    pixels and background left out). Each is called artery when p_artery >= p_vein, whether or not
    the network calls it a vessel. acc = pixels called right / scored pixels; se = arteries called
    artery / artery pixels; sp = veins called vein / vein pixels (0.0 where undefined).
    """
    return _av_classification_from_counts(*_av_classification_counts(probs, classes, mask))


def summarize_av(probs, classes, masks=None, threshold=DEFAULT_THRESHOLD, names=None):
    """Both A/V protocols of a test set: per image, mean with its bootstrap 95 % interval
    (``bootstrap_mean_ci`` over the images), std (ddof=0), and pooled (confusion counts summed over
    the images, then the scores).

    Args:
        probs: sequence of (H, W, 3) A/V probabilities; classes: matching (H, W) reference class
            maps; masks: matching bool FOV masks, or None (the whole image); threshold: of the
            vessel channel, protocol (a); names: image names (default "0", "1", ...).

    Returns:
        {"threshold", "fov_mask": bool, "n_images",
         "segmentation": {"mean", "std", "ci95", "pooled"}, "classification": {...same...},
         "per_image": [{"name", "segmentation": {...}, "classification": {...}}, ...]}
        where "ci95" maps each key to [low, high] and every other {...} has the protocol's keys
        (AV_SEGMENTATION_KEYS, AV_CLASSIFICATION_KEYS).
    """
    probs, classes, masks, names = _test_set(probs, classes, masks, names, "class map")
    fov_mask, n = masks[0] is not None, len(probs)

    per_image = []
    totals = {"artery": np.zeros(4, np.int64), "vein": np.zeros(4, np.int64)}
    typed_total = np.zeros(4, np.int64)
    for prob, reference, mask, name in zip(probs, classes, masks, names, strict=True):
        counts = _av_segmentation_counts(prob, reference, mask, threshold)
        typed = _av_classification_counts(prob, reference, mask)
        for key in totals:
            totals[key] += counts[key]
        typed_total += typed
        per_image.append(
            {
                "name": name,
                "segmentation": _av_segmentation_from_counts(counts),
                "classification": _av_classification_from_counts(*typed),
            }
        )
    pooled = {
        "segmentation": _av_segmentation_from_counts(
            {key: tuple(int(v) for v in value) for key, value in totals.items()}
        ),
        "classification": _av_classification_from_counts(*(int(v) for v in typed_total)),
    }
    summary = {"threshold": float(threshold), "fov_mask": fov_mask, "n_images": n}
    for protocol, keys in AV_PROTOCOLS.items():
        table = np.array([[entry[protocol][key] for key in keys] for entry in per_image])
        summary[protocol] = {
            "mean": dict(zip(keys, map(float, table.mean(axis=0)), strict=True)),
            "std": dict(zip(keys, map(float, table.std(axis=0, ddof=0)), strict=True)),
            "ci95": {key: list(bootstrap_mean_ci(table[:, k])) for k, key in enumerate(keys)},
            "pooled": pooled[protocol],
        }
    summary["per_image"] = per_image
    return summary


AV_LABELS = {
    "f1_artery": "F1 artery",
    "f1_vein": "F1 vein",
    "f1_mean": "F1 mean",
    "f1_weighted": "F1 weighted",
    "acc": "Acc",
    "se": "Se (arteries)",
    "sp": "Sp (veins)",
}
AV_PROTOCOL_LABELS = {
    "segmentation": "(a) A/V segmentation",
    "classification": "(b) A/V classification of the reference vessels",
}


def format_av_table(summary, protocol, digits=4) -> str:
    """Markdown table of one A/V protocol of ``summarize_av`` output: rows mean, std, the 95 %
    bootstrap interval of the mean, pooled; columns the protocol's keys (AV_PROTOCOLS)."""
    keys = AV_PROTOCOLS[protocol]
    scores = summary[protocol]
    lines = [
        f"| {AV_PROTOCOL_LABELS[protocol]} | " + " | ".join(AV_LABELS[k] for k in keys) + " |",
        "| --- |" + " ---: |" * len(keys),
    ]
    for stat, label in (("mean", "mean over images"), ("std", "std over images")):
        values = " | ".join(_format_value(scores[stat][k], digits) for k in keys)
        lines.append(f"| {label} | {values} |")
    interval = " | ".join(
        f"{low:.{digits}f}-{high:.{digits}f}" for low, high in (scores["ci95"][k] for k in keys)
    )
    lines.append(f"| 95 % interval of the mean | {interval} |")
    pooled = " | ".join(_format_value(scores["pooled"][k], digits) for k in keys)
    lines.append(f"| pooled | {pooled} |")
    return "\n".join(lines) + "\n"

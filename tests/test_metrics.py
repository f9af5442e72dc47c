"""Tests of metrics.py: hand-computed 3 x 3 values, scikit-learn agreement, pooled vs mean."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    jaccard_score,
    matthews_corrcoef,
    recall_score,
    roc_auc_score,
)

from metrics import (
    METRIC_KEYS,
    binary_scores,
    bootstrap_mean_ci,
    confusion,
    format_table,
    image_metrics,
    paired_comparison,
    scores_from_confusion,
    sensitivity_by_calibre,
    summarize,
    wilcoxon_p,
)

# 3 x 3 example checkable by eye. prob > 0.5 predicts vessel (0.5 itself does not):
#   prob            label     pred
#   0.9 0.2 0.6     1 0 1     1 0 1
#   0.4 0.5 0.8     1 0 0     0 0 1
#   0.1 0.7 0.3     0 1 0     0 1 0
# TP 3 (0.9, 0.6, 0.7), FP 1 (0.8), FN 1 (0.4), TN 4.
PROB = np.array([[0.9, 0.2, 0.6], [0.4, 0.5, 0.8], [0.1, 0.7, 0.3]])
LABEL = np.array([[1, 0, 1], [1, 0, 0], [0, 1, 0]], np.uint8)
# Hand computation, whole image:
#   acc = 7/9, se = 3/4, sp = 4/5, f1 = 2*3/(2*3+1+1) = 0.75, jaccard = 3/5,
#   mcc = (3*4 - 1*1) / sqrt(4*4*5*5) = 11/20,
#   auc: positives 0.9 0.6 0.4 0.7 beat 5 + 4 + 3 + 4 = 16 of the 4*5 negatives -> 0.8.
EXPECTED_WHOLE = {
    "acc": 7 / 9,
    "se": 0.75,
    "sp": 0.8,
    "auc": 0.8,
    "mcc": 0.55,
    "f1": 0.75,
    "jaccard": 0.6,
}
# Mask dropping the first row: pixels 0.4 0.5 0.8 / 0.1 0.7 0.3, labels 1 0 0 / 0 1 0.
# TP 1 (0.7), FP 1 (0.8), FN 1 (0.4), TN 3:
#   acc = 4/6, se = 1/2, sp = 3/4, f1 = 2/4, jaccard = 1/3, mcc = (3 - 1) / sqrt(2*2*4*4) = 1/4,
#   auc: 0.4 beats 0.1 0.3, 0.7 beats 0.5 0.1 0.3 -> 5/8.
MASK = np.array([[0, 0, 0], [1, 1, 1], [1, 1, 1]], bool)
EXPECTED_MASKED = {
    "acc": 4 / 6,
    "se": 0.5,
    "sp": 0.75,
    "auc": 0.625,
    "mcc": 0.25,
    "f1": 0.5,
    "jaccard": 1 / 3,
}


def assert_scores(actual, expected, **tolerance):
    assert set(actual) == set(METRIC_KEYS)
    for key in METRIC_KEYS:
        if math.isnan(expected[key]):
            assert math.isnan(actual[key]), key
        else:
            assert actual[key] == pytest.approx(expected[key], **tolerance), key


def test_confusion_counts_of_the_3x3_example():
    counts = confusion(PROB > 0.5, LABEL.astype(bool))
    assert counts == (3, 1, 1, 4)
    assert all(isinstance(c, int) for c in counts)


def test_hand_computed_3x3_whole_image():
    assert_scores(image_metrics(PROB, LABEL), EXPECTED_WHOLE)


def test_hand_computed_3x3_inside_mask():
    assert_scores(image_metrics(PROB, LABEL, MASK), EXPECTED_MASKED)


def test_channel_axis_and_bool_label_are_accepted():
    result = image_metrics(PROB[..., None].astype(np.float32), LABEL[..., None].astype(bool))
    assert_scores(result, EXPECTED_WHOLE, rel=1e-6)


def test_threshold_is_strictly_greater():
    # prob 0.5 at (1, 1) is background at threshold 0.5 (FP stays 1) ...
    assert confusion(PROB > 0.5, LABEL.astype(bool)) == (3, 1, 1, 4)
    assert image_metrics(PROB, LABEL, threshold=0.5)["sp"] == pytest.approx(4 / 5)
    # ... and vessel at 0.45: TP 3, FP 2 (0.5, 0.8), FN 1, TN 3.
    assert image_metrics(PROB, LABEL, threshold=0.45)["sp"] == pytest.approx(3 / 5)
    # At 0.35 the 0.4 vessel pixel turns TP: se 4/4, sp 3/5 (0.2, 0.1, 0.3 stay TN).
    lower = image_metrics(PROB, LABEL, threshold=0.35)
    assert (lower["se"], lower["sp"]) == pytest.approx((1.0, 3 / 5))
    # The threshold does not change the AUC.
    assert lower["auc"] == pytest.approx(0.8)


def _sklearn_scores(prob, label, threshold):
    pred = prob > threshold
    return {
        "acc": accuracy_score(label, pred),
        "se": recall_score(label, pred, zero_division=0.0),
        "sp": recall_score(label, pred, pos_label=0, zero_division=0.0),
        "auc": roc_auc_score(label, prob),
        "mcc": matthews_corrcoef(label, pred),
        "f1": f1_score(label, pred, zero_division=0.0),
        "jaccard": jaccard_score(label, pred, zero_division=0.0),
    }


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_agrees_with_scikit_learn_on_random_images(seed, threshold):
    rng = np.random.default_rng(seed)
    label = rng.random((40, 50)) < 0.2
    # informative but imperfect probabilities, with ties at the threshold
    prob = np.clip(0.4 * label + 0.6 * rng.random((40, 50)), 0, 1)
    prob[::7, ::5] = threshold
    yy, xx = np.mgrid[:40, :50]
    fov = (yy - 20) ** 2 + (xx - 25) ** 2 < 18**2

    assert_scores(
        image_metrics(prob, label, threshold=threshold),
        _sklearn_scores(prob.ravel(), label.ravel(), threshold),
        rel=1e-12,
    )
    assert_scores(
        image_metrics(prob, label.astype(np.uint8), fov, threshold=threshold),
        _sklearn_scores(prob[fov], label[fov], threshold),
        rel=1e-12,
    )


def test_per_image_mean_and_pooled_differ_as_they_should():
    # Image A (one vessel pixel, found): perfect. Image B (three vessel pixels, one found).
    label_a = np.array([[1, 0], [0, 0]])
    label_b = np.array([[1, 1], [1, 0]])
    prob = np.array([[0.9, 0.1], [0.1, 0.1]])
    summary = summarize([prob, prob], [label_a, label_b])
    whole = summary["whole_image"]
    # A: TP1 FP0 FN0 TN3 -> f1 1, se 1. B: TP1 FP0 FN2 TN1 -> f1 2/4, se 1/3.
    assert whole["mean"]["f1"] == pytest.approx(0.75)
    assert whole["mean"]["se"] == pytest.approx(2 / 3)
    # pooled: TP2 FP0 FN2 TN4 -> f1 4/6, se 2/4
    assert whole["pooled"]["f1"] == pytest.approx(2 / 3)
    assert whole["pooled"]["se"] == pytest.approx(0.5)
    # equal image sizes: accuracy's mean and pooled agree (1 and 2/4 -> 6/8)
    assert whole["mean"]["acc"] == pytest.approx(0.75) == whole["pooled"]["acc"]
    # population std (ddof=0): |1 - 0.5| / 2; ddof=1 would give 0.3536
    assert whole["std"]["f1"] == pytest.approx(0.25)
    # AUC: A 1; B: 0.9 beats 0.1, the two 0.1 vessel pixels tie it -> (1 + .5 + .5)/3.
    # Pooled: 0.9 x2 beat 4 negatives (8), 0.1 x2 tie 4 (4 halves) -> 12/16.
    assert whole["mean"]["auc"] == pytest.approx((1 + 2 / 3) / 2)
    assert whole["pooled"]["auc"] == pytest.approx(0.75)


@pytest.mark.filterwarnings("ignore:A single label was found")
def test_zero_division_conventions():
    assert scores_from_confusion(0, 0, 0, 0) == dict.fromkeys(
        ("acc", "se", "sp", "mcc", "f1", "jaccard"), 0.0
    )
    # No vessel labelled or predicted: se, f1, jaccard, mcc undefined -> 0.0; auc NaN (one class).
    label = np.zeros((3, 3), np.uint8)
    prob = np.full((3, 3), 0.2)
    expected = {
        "acc": 1.0,
        "se": 0.0,
        "sp": 1.0,
        "auc": math.nan,
        "mcc": 0.0,
        "f1": 0.0,
        "jaccard": 0.0,
    }
    assert_scores(image_metrics(prob, label), expected)
    # the same conventions as scikit-learn with zero_division=0.0
    assert recall_score(label.ravel(), prob.ravel() > 0.5, zero_division=0.0) == 0.0
    assert matthews_corrcoef(label.ravel(), prob.ravel() > 0.5) == 0.0
    # All vessel, all predicted: sp undefined -> 0.0.
    all_vessel = image_metrics(np.full((2, 2), 0.9), np.ones((2, 2)))
    assert (all_vessel["sp"], all_vessel["se"], all_vessel["f1"]) == (0.0, 1.0, 1.0)
    assert math.isnan(all_vessel["auc"])


def test_mcc_of_large_counts_does_not_overflow():
    # the product of four 1e7-pixel counts (~1e29) overflows int64
    tp, fp, fn, tn = 3 * 10**7, 10**6, 2 * 10**6, 5 * 10**7
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert scores_from_confusion(tp, fp, fn, tn)["mcc"] == pytest.approx(expected, rel=1e-12)


def test_binary_scores_for_a_second_observer():
    pred = PROB > 0.5
    scores = binary_scores(pred, LABEL)
    assert math.isnan(scores["auc"])
    assert_scores(scores, {**EXPECTED_WHOLE, "auc": math.nan})
    assert_scores(
        binary_scores(pred.astype(np.uint8), LABEL, MASK), {**EXPECTED_MASKED, "auc": math.nan}
    )


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError, match="label must hold only 0 and 1"):
        image_metrics(PROB, LABEL * 255)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        image_metrics(PROB * 255, LABEL)
    with pytest.raises(ValueError, match="shape"):
        image_metrics(PROB, LABEL[:2])
    with pytest.raises(ValueError, match="binary prediction"):
        binary_scores(PROB, LABEL)


def test_summarize_structure_with_masks():
    summary = summarize([PROB, PROB], [LABEL, LABEL], [MASK, MASK], names=["01_test", "02_test"])
    assert summary["fov_mask"] is True and summary["n_images"] == 2 and summary["threshold"] == 0.5
    for protocol, expected in (("whole_image", EXPECTED_WHOLE), ("fov", EXPECTED_MASKED)):
        assert set(summary[protocol]) == {"mean", "std", "pooled"}
        assert_scores(summary[protocol]["mean"], expected)
        assert_scores(summary[protocol]["pooled"], expected)  # two identical images
        assert_scores(summary[protocol]["std"], dict.fromkeys(METRIC_KEYS, 0.0), abs=1e-12)
    assert [entry["name"] for entry in summary["per_image"]] == ["01_test", "02_test"]
    assert_scores(summary["per_image"][1]["fov"], EXPECTED_MASKED)


def test_summarize_without_masks_uses_the_whole_image_for_fov():
    summary = summarize([PROB], [LABEL], None)
    assert summary["fov_mask"] is False
    assert summary["fov"] == summary["whole_image"]
    assert summary["per_image"][0]["name"] == "0"


def test_summarize_binary_maps_and_nan_propagation():
    summary = summarize([PROB > 0.5, PROB > 0.5], [LABEL, LABEL], binary=True)
    assert summary["threshold"] is None
    assert math.isnan(summary["whole_image"]["mean"]["auc"])
    assert summary["whole_image"]["mean"]["f1"] == pytest.approx(0.75)
    # one image without vessels has no AUC: the mean AUC is NaN, the pooled AUC is not
    mixed = summarize([PROB, PROB], [LABEL, np.zeros_like(LABEL)])
    assert math.isnan(mixed["whole_image"]["mean"]["auc"])
    assert not math.isnan(mixed["whole_image"]["pooled"]["auc"])


def test_format_table():
    summary = summarize([PROB], [LABEL], [MASK])
    table = format_table(summary)
    assert table == (
        "| protocol | Acc | Se | Sp | AUC | MCC | F1 | Jaccard |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        "| whole image | 0.7778 | 0.7500 | 0.8000 | 0.8000 | 0.5500 | 0.7500 | 0.6000 |\n"
        "| inside FOV | 0.6667 | 0.5000 | 0.7500 | 0.6250 | 0.2500 | 0.5000 | 0.3333 |\n"
    )
    no_mask = format_table(
        summarize([PROB], [LABEL]), rows=("fov",), stat="pooled", digits=2, keys=("f1", "auc")
    )
    assert (
        no_mask.splitlines()[-1] == "| inside FOV (no mask: whole image) (pooled) | 0.75 | 0.80 |"
    )
    binary = format_table(
        summarize([PROB > 0.5], [LABEL], binary=True), rows=("whole_image",), keys=("auc",)
    )
    assert binary.splitlines()[-1] == "| whole image | n/a |"


# Paired comparison of two models: 20 images, as DRIVE's test set.
SCORES_A = np.random.default_rng(1).uniform(0.70, 0.85, 20)


def test_a_consistent_improvement_is_detected():
    """B = A + 0.02 (+- 0.005) on every image: the interval excludes 0 and p is the exact minimum."""
    b = SCORES_A + 0.02 + np.random.default_rng(2).normal(0.0, 0.005, 20)
    result = paired_comparison(SCORES_A, b)
    assert result["mean_diff"] == pytest.approx(np.mean(b - SCORES_A))
    assert 0.0 < result["ci_low"] < result["mean_diff"] < result["ci_high"] < 0.03
    # All 20 differences positive: the exact two-sided p-value is 2 / 2**20.
    assert result["p_wilcoxon"] == pytest.approx(2 / 2**20)
    assert (result["b_better"], result["b_worse"], result["ties"]) == (20, 0, 0)
    assert result["n_images"] == 20 and result["resamples"] == 10_000


def test_no_difference_is_not_claimed():
    """B = A + zero-mean noise: the interval contains 0 and p is large."""
    noise = np.random.default_rng(3).normal(0.0, 0.01, 20)
    result = paired_comparison(SCORES_A, SCORES_A + noise - noise.mean())
    assert result["ci_low"] < 0.0 < result["ci_high"]
    assert result["p_wilcoxon"] > 0.5
    worse = paired_comparison(SCORES_A + 0.01, SCORES_A)  # the sign is B - A
    assert worse["mean_diff"] == pytest.approx(-0.01) and worse["ci_high"] < 0.0


def test_identical_scores_give_p_one_and_a_zero_interval():
    result = paired_comparison(SCORES_A, SCORES_A.copy())
    assert result["p_wilcoxon"] == 1.0
    assert result["ci_low"] == result["ci_high"] == result["mean_diff"] == 0.0
    assert result["ties"] == 20
    assert wilcoxon_p([0.0, 0.0, 0.0]) == 1.0


def test_bootstrap_is_seeded_and_matches_a_direct_resampling():
    d = np.random.default_rng(4).normal(0.01, 0.02, 15)
    assert bootstrap_mean_ci(d) == bootstrap_mean_ci(d)
    assert bootstrap_mean_ci(d, seed=1) != bootstrap_mean_ci(d, seed=2)
    # The same draw written directly: images resampled with replacement, 95% percentile interval.
    idx = np.random.default_rng(7).integers(0, 15, size=(500, 15))
    expected = tuple(np.percentile(d[idx].mean(axis=1), [2.5, 97.5]))
    assert bootstrap_mean_ci(d, resamples=500, seed=7) == pytest.approx(expected)
    low90, high90 = bootstrap_mean_ci(d, confidence=0.9)
    low95, high95 = bootstrap_mean_ci(d, confidence=0.95)
    assert low95 <= low90 < high90 <= high95


@pytest.mark.parametrize(
    "a,b,match",
    [
        ([0.5, 0.6], [0.5], "equal length"),
        ([], [], "non-empty"),
        ([0.5, float("nan")], [0.5, 0.6], "finite"),
    ],
)
def test_paired_comparison_refuses_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        paired_comparison(a, b)


def test_f1_by_threshold_matches_thresholding_each_map():
    """The histogram pass gives, at every threshold of the grid, the mean F1 that `image_metrics`
    gives (values on a threshold included), and the best threshold is the one chosen."""
    from metrics import THRESHOLD_GRID, choose_threshold, f1_by_threshold, image_metrics

    rng = np.random.default_rng(3)
    labels = [rng.random((30, 40)) < 0.15 for _ in range(3)]
    probs = [np.clip(lab * 0.35 + rng.random(lab.shape) * 0.6, 0, 1) for lab in labels]
    probs[0][0, :8] = 0.3  # on a grid value: not above it
    f1 = f1_by_threshold(probs, labels)
    expected = [
        np.mean(
            [
                image_metrics(p, lab.astype(np.uint8), threshold=t)["f1"]
                for p, lab in zip(probs, labels, strict=True)
            ]
        )
        for t in THRESHOLD_GRID
    ]
    np.testing.assert_allclose(f1, expected, rtol=0, atol=1e-12)
    threshold, best = choose_threshold(probs, labels)
    assert (
        best == pytest.approx(max(expected))
        and threshold == THRESHOLD_GRID[int(np.argmax(expected))]
    )
    # The labels' own map scores 1 at every threshold below 1: the tie goes to 0.5.
    assert choose_threshold([lab.astype(np.float32) for lab in labels], labels) == (0.5, 1.0)
    # Maps that are vessel only above 0.7: a threshold between 0.6 and 0.7 is best, not 0.5.
    shifted = [np.where(lab, 0.75, 0.65).astype(np.float32) for lab in labels]
    assert 0.65 <= choose_threshold(shifted, labels)[0] < 0.75


def test_sensitivity_by_calibre_separates_thin_and_wide_vessels():
    """A 1-px line and an 11-px bar; the prediction finds only the bar (prob 0.9, and 0.5 on
    the line, which is not above the threshold). The FOV mask keeps half the image."""
    label = np.zeros((60, 100), np.uint8)
    label[10, 5:95] = 1
    label[30:41, 5:95] = 1
    prob = np.where(label.astype(bool), 0.5, 0.1)
    prob[30:41, :] = 0.9
    mask = np.zeros(label.shape, bool)
    mask[:, :50] = True
    rows = {row["calibre_px"]: row for row in sensitivity_by_calibre([prob], [label], [mask])}
    assert list(rows) == ["< 3", "3-5", "5-7", "7-9", ">= 9"]
    assert rows["< 3"]["labelled"] == 45 and rows["< 3"]["se"] == 0.0
    assert rows[">= 9"]["se"] == 1.0 and rows[">= 9"]["found"] == rows[">= 9"]["labelled"]
    assert sum(row["labelled"] for row in rows.values()) == int((label.astype(bool) & mask).sum())
    assert rows["3-5"]["labelled"] == 0 and rows["3-5"]["se"] == 0.0
    # Binary maps and a lower threshold: the line is found too.
    lower = sensitivity_by_calibre([prob], [label], [mask], threshold=0.4)
    binary = sensitivity_by_calibre([prob >= 0.5], [label], [mask], binary=True)
    assert lower[0]["se"] == 1.0 and binary == lower


def test_f1_with_tolerance_forgives_a_border_but_not_a_missed_vessel():
    """A vessel 3 px wide drawn 5 px wide scores below 1 at 0 px and exactly 1 from 1 px on;
    a second, missed vessel keeps recall below 1 at every tolerance. At 0 px the score is the
    plain F1 inside the FOV."""
    from metrics import f1_with_tolerance

    label = np.zeros((40, 60), np.uint8)
    label[9:12, 5:55] = 1
    label[25:28, 5:55] = 1  # the vessel the wide prediction misses
    wide = np.zeros(label.shape, np.float32)
    wide[8:13, 5:55] = 0.9
    mask = np.ones(label.shape, bool)
    mask[:, 50:] = False
    rows = f1_with_tolerance([wide], [label], [mask])
    assert [row["tolerance_px"] for row in rows] == [0, 1, 2]
    assert rows[0]["f1"] == pytest.approx(image_metrics(wide, label, mask)["f1"])
    assert rows[0]["precision"] == pytest.approx(3 / 5)
    assert rows[1]["precision"] == rows[2]["precision"] == 1.0
    assert rows[1]["recall"] == rows[2]["recall"] == pytest.approx(0.5)  # the missed vessel
    # Only the upper vessel, drawn wide: perfect from 1 px on; binary maps score the same.
    upper = label.copy()
    upper[25:28] = 0
    rows = f1_with_tolerance([wide > 0.5], [upper], [mask], binary=True)
    assert rows[0]["f1"] < 1 and rows[1]["f1"] == rows[2]["f1"] == 1.0
    # Nothing predicted: 0 at every tolerance; masks=None scores the whole image.
    empty = f1_with_tolerance([np.zeros(label.shape)], [label])
    assert [row["f1"] for row in empty] == [0.0, 0.0, 0.0]
    # The mean over images: one perfect image and one empty prediction give 0.5.
    two = f1_with_tolerance([upper.astype(float), np.zeros(label.shape)], [upper, label])
    assert two[0]["f1"] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", [0, 1])
def test_fov_f1_by_threshold_scores_inside_the_mask(seed):
    """At every grid threshold, the mean F1 inside each image's FOV as `image_metrics` gives it;
    the best is the grid's maximum; the table shows the chosen thresholds and the best."""
    from metrics import THRESHOLD_GRID, fov_f1_by_threshold, threshold_table

    rng = np.random.default_rng(seed)
    labels = [(rng.random((20, 30)) < 0.2).astype(np.uint8) for _ in range(2)]
    probs = [np.clip(lab * 0.4 + rng.random(lab.shape) * 0.6, 0, 1) for lab in labels]
    masks = [rng.random(lab.shape) < 0.7 for lab in labels]
    curve = fov_f1_by_threshold(probs, labels, masks)
    for k in (0, 25, 45, 80):
        t = THRESHOLD_GRID[k]
        expected = np.mean(
            [image_metrics(p, y, m, t)["f1"] for p, y, m in zip(probs, labels, masks, strict=True)]
        )
        assert curve["f1"][k] == pytest.approx(expected)
    assert curve["best"][1] == pytest.approx(max(curve["f1"]))
    table = threshold_table(curve)
    assert "| threshold | 0.3 | 0.4 | 0.5 |" in table
    assert f"{curve['f1'][45]:.4f}" in table.splitlines()[2]  # 0.5
    # Without masks: the whole image.
    whole = fov_f1_by_threshold(probs, labels, None)
    assert whole["f1"][45] == pytest.approx(
        np.mean([image_metrics(p, y, None, 0.5)["f1"] for p, y in zip(probs, labels, strict=True)])
    )


def test_f1_with_tolerance_matches_the_euclidean_distance_definition():
    """On random maps, the scores equal precision and recall counted with scipy's Euclidean
    distance transform (a pixel within t px: distance <= t), for whole and fractional t."""
    from scipy.ndimage import distance_transform_edt

    from metrics import f1_with_tolerance

    rng = np.random.default_rng(5)
    label = rng.random((50, 70)) < 0.05
    pred = rng.random(label.shape) < 0.05
    rows = f1_with_tolerance([pred], [label], binary=True, tolerances=(0, 1, 1.5, 2, 3))
    to_label, to_pred = distance_transform_edt(~label), distance_transform_edt(~pred)
    for row in rows:
        t = row["tolerance_px"]
        assert row["precision"] == pytest.approx((pred & (to_label <= t)).sum() / pred.sum())
        assert row["recall"] == pytest.approx((label & (to_pred <= t)).sum() / label.sum())


# Arteries and veins: a 4 x 4 example checkable by eye (A artery, V vein, X crossing, U uncertain,
# . background). Each pixel's (p_vessel, p_artery, p_vein); predicted vessel when p_vessel > 0.5,
# then artery when p_artery >= p_vein (the tie at the top left is an artery).
#
#   reference     p_vessel             (p_artery, p_vein)                      predicted
#   A A . V       0.9 0.8 0.1 0.7      .5 .5  .3 .6  .1 .1  .2 .9              A V . V
#   A X V V       0.9 0.6 0.8 0.9      .8 .1  .4 .7  .6 .5  .1 .8              A V A V
#   . A U V       0.6 0.7 0.9 0.3      .7 .2  .9 .3  .6 .4  .3 .6              A A A .
#   . . . V       0.2 0.1 0.0 0.5      .2 .1  .1 .1  .0 .0  .7 .2              . . . .
#
# (a) Segmentation, the crossing and the uncertain pixel left out (14 pixels):
#   artery: predicted 5 ((0,0) (1,0) (1,2) (2,0) (2,1)), labelled 4, TP 3 -> F1 = 6/9 = 2/3;
#   vein: predicted 2 ((0,1) (0,3) (1,3) minus the wrong (0,1): TP 2), FP 1, FN 3 -> F1 = 4/8;
#   mean 7/12; weighted by the 4 artery and 5 vein pixels: (4 * 2/3 + 5 * 1/2) / 9 = 31/54.
# (b) Classification of the 4 artery and 5 vein pixels, by p_artery >= p_vein alone:
#   arteries right 3 of 4 ((0,1) called vein); veins right 3 of 5 ((1,2) and (3,3) called artery;
#   (2,3) is called vein although p_vessel misses it) -> se 3/4, sp 3/5, acc 6/9.
AV_REFERENCE = np.array([[1, 1, 0, 2], [1, 3, 2, 2], [0, 1, 4, 2], [0, 0, 0, 2]], np.uint8)
AV_PROBS = np.stack(
    [
        [[0.9, 0.8, 0.1, 0.7], [0.9, 0.6, 0.8, 0.9], [0.6, 0.7, 0.9, 0.3], [0.2, 0.1, 0.0, 0.5]],
        [[0.5, 0.3, 0.1, 0.2], [0.8, 0.4, 0.6, 0.1], [0.7, 0.9, 0.6, 0.3], [0.2, 0.1, 0.0, 0.7]],
        [[0.5, 0.6, 0.1, 0.9], [0.1, 0.7, 0.5, 0.8], [0.2, 0.3, 0.4, 0.6], [0.1, 0.1, 0.0, 0.2]],
    ],
    axis=-1,
)


def assert_av_scores(actual, expected):
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value), key


def test_av_scores_of_the_4x4_example_by_hand():
    from metrics import av_classification_scores, av_segmentation_scores

    assert_av_scores(
        av_segmentation_scores(AV_PROBS, AV_REFERENCE),
        {"f1_artery": 2 / 3, "f1_vein": 0.5, "f1_mean": 7 / 12, "f1_weighted": 31 / 54},
    )
    assert_av_scores(
        av_classification_scores(AV_PROBS, AV_REFERENCE), {"acc": 6 / 9, "se": 3 / 4, "sp": 3 / 5}
    )


def test_av_scores_inside_a_mask():
    """Without the first column ((0,0) and (1,0) right arteries, (2,0) a false artery): artery
    predicted (1,2) (2,1), labelled (0,1) (2,1), TP 1 -> F1 2/4; veins unchanged. Classification:
    arteries right 1 of 2, veins 3 of 5, acc 4/7."""
    from metrics import av_classification_scores, av_segmentation_scores

    mask = np.ones((4, 4), bool)
    mask[:, 0] = False
    assert_av_scores(
        av_segmentation_scores(AV_PROBS, AV_REFERENCE, mask),
        {"f1_artery": 0.5, "f1_vein": 0.5, "f1_mean": 0.5, "f1_weighted": (2 * 0.5 + 5 * 0.5) / 7},
    )
    assert_av_scores(
        av_classification_scores(AV_PROBS, AV_REFERENCE, mask),
        {"acc": 4 / 7, "se": 1 / 2, "sp": 3 / 5},
    )


def test_av_scores_ignore_crossings_and_uncertain_pixels():
    from metrics import av_classification_scores, av_segmentation_scores

    flipped = AV_PROBS.copy()
    for row, col in ((1, 1), (2, 2)):  # the crossing and the uncertain pixel
        flipped[row, col] = 1.0 - flipped[row, col]
    assert av_segmentation_scores(flipped, AV_REFERENCE) == av_segmentation_scores(
        AV_PROBS, AV_REFERENCE
    )
    assert av_classification_scores(flipped, AV_REFERENCE) == av_classification_scores(
        AV_PROBS, AV_REFERENCE
    )
    # The threshold matters to (a) only: at 0.25 the missed vein (2,3) (p_vessel 0.3) is found.
    assert av_segmentation_scores(AV_PROBS, AV_REFERENCE, threshold=0.25)["f1_vein"] > 0.5
    assert av_classification_scores(AV_PROBS, AV_REFERENCE)["sp"] == 3 / 5


def test_summarize_av_mean_pooled_and_interval():
    """Image 1 the 4x4 example, image 2 the same reference predicted perfectly. Mean artery F1
    (2/3 + 1) / 2 = 5/6; pooled: TP 3 + 4, FP 2, FN 1 -> 14/17. Classification pooled: right
    6 + 9 of 18."""
    from data.av import ARTERY, VEIN
    from metrics import summarize_av

    channels = [AV_REFERENCE > 0, AV_REFERENCE == ARTERY, AV_REFERENCE == VEIN]
    perfect = np.where(np.stack(channels, axis=-1), 0.9, 0.1)
    summary = summarize_av([AV_PROBS, perfect], [AV_REFERENCE, AV_REFERENCE], names=["a", "b"])
    assert summary["n_images"] == 2 and not summary["fov_mask"] and summary["threshold"] == 0.5
    assert [entry["name"] for entry in summary["per_image"]] == ["a", "b"]
    assert summary["per_image"][1]["segmentation"]["f1_mean"] == 1.0
    segmentation, classification = summary["segmentation"], summary["classification"]
    assert segmentation["mean"]["f1_artery"] == pytest.approx(5 / 6)
    assert segmentation["std"]["f1_artery"] == pytest.approx(1 / 6)
    assert segmentation["pooled"]["f1_artery"] == pytest.approx(14 / 17)
    assert classification["mean"]["acc"] == pytest.approx((6 / 9 + 1) / 2)
    assert classification["pooled"]["acc"] == pytest.approx(15 / 18)
    low, high = segmentation["ci95"]["f1_mean"]
    assert 7 / 12 - 1e-12 <= low < segmentation["mean"]["f1_mean"] < high <= 1.0 + 1e-12


def test_av_scores_refuse_bad_inputs():
    from metrics import av_segmentation_scores

    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        av_segmentation_scores(AV_PROBS[..., :2], AV_REFERENCE)
    with pytest.raises(ValueError, match="classes 0..4"):
        av_segmentation_scores(AV_PROBS, AV_REFERENCE + 3)
    with pytest.raises(ValueError, match="differ"):
        av_segmentation_scores(AV_PROBS, AV_REFERENCE[:3])

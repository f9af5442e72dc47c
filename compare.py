"""Compare models on the same test images: per-image F1 and Jaccard side by side, paired statistics.

    python compare.py A.keras B.keras [C.keras ...] --config configs/drive.yaml --data-root DIR [--out DIR]
    python compare.py weights/sa_unetv2_drive.keras weights/sa_unet_drive.keras \\
        --config configs/drive.yaml --data-root DIR --out runs/compare/drive

Each model is evaluated by the project's protocol, as evaluate.py does it (same
padding, scale, threshold and per-image metrics; each model's report in
OUT/<model>/). For every model after the first (A), per image and for F1 and
Jaccard: the mean difference (model - A) with a paired bootstrap 95%
confidence interval (the images resampled with replacement, 10,000 times,
seed 0) and the two-sided Wilcoxon signed-rank p-value (metrics.paired_comparison).
Prints the tables and writes OUT/compare.json, OUT/compare.md and
OUT/compare.png (per-image F1 of A against each other model).

Artery/vein networks (configs/av_rite.yaml, configs/av_hrf.yaml) are compared on
the field's two A/V protocols instead, each image scored inside its FOV as
evaluate.py scores it: the mean of artery and vein F1 (protocol (a)) and the
accuracy of the types of the reference vessels (protocol (b));
docs/arteries-veins.md.

    python compare.py weights/sa_unetv2_av.keras runs/av_hrf/best.keras \\
        --config configs/av_hrf.yaml --data-root DIR --out runs/compare/hrf_av
"""

from __future__ import annotations

import argparse
import string
import sys
import time
from pathlib import Path

from utils.cli import run_cli
from utils.errors import UserError

COMPARED = ("f1", "jaccard")  # the paper's comparison table reports F1 and Jaccard
# Artery/vein networks: each metric with the A/V protocol that scores it (metrics.summarize_av).
AV_COMPARED = {"f1_mean": "segmentation", "acc": "classification"}
LABELS = {"f1": "F1", "jaccard": "Jaccard", "f1_mean": "A/V F1", "acc": "A/V accuracy"}
AV_PROTOCOL = "artery_vein"  # compare.json's "protocol" for A/V networks


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "weights", nargs="+", help="two or more .keras checkpoints; the first (A) is the reference"
    )
    parser.add_argument(
        "--config", required=True, help="YAML config naming the dataset (its test split)"
    )
    parser.add_argument(
        "--data-root", help="dataset folder or archive (default: $SAUNETV2_DATA_ROOT)"
    )
    parser.add_argument("--out", help="output folder (default: runs/compare)")
    parser.add_argument(
        "--fold", help="STARE fold 1..5, loo:<image id>, or all (overrides dataset.fold)"
    )
    parser.add_argument(
        "--protocol",
        choices=("whole_image", "fov"),
        default="whole_image",
        help="score the whole image (the paper's headline, default) or inside the FOV mask",
    )
    parser.add_argument(
        "--threshold", type=float, help="overrides evaluate.threshold (default 0.5)"
    )
    parser.add_argument(
        "--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument(
        "--engine",
        help="inference engine: auto (default), keras, or one listed by benchmarks/inference.py",
    )
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"), help="Keras backend")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override any config value"
    )
    return parser.parse_args(argv)


def model_labels(paths: list[Path]) -> list[str]:
    """A short unique name per weights file: its stem, with its folder where stems repeat
    (runs/a/best.keras and runs/b/best.keras -> a_best, b_best)."""
    stems = [p.stem for p in paths]
    labels = [
        f"{p.parent.name}_{p.stem}" if stems.count(p.stem) > 1 and p.parent.name else p.stem
        for p in paths
    ]
    return [
        label if labels.count(label) == 1 else f"{label}_{i + 1}" for i, label in enumerate(labels)
    ]


def compare_summaries(
    labels: list[str],
    summaries: list[dict],
    protocol: str = "whole_image",
    resamples: int = 10_000,
    seed: int = 0,
) -> dict:
    """Per-image scores side by side and each model against the first, from `metrics.summarize` outputs.

    All summaries must cover the same images in the same order. Summaries of artery/vein networks
    (with "av", `metrics.summarize_av`) are compared on A/V F1 and accuracy (`AV_COMPARED`),
    whatever `protocol`; vessel and A/V summaries cannot be mixed. Returns the content of
    compare.json (without the file paths).
    """
    from metrics import paired_comparison

    av = ["av" in summary for summary in summaries]
    if any(av) and not all(av):
        vessel = labels[av.index(False)]
        raise UserError(
            f"model {vessel} is a vessel network and {labels[av.index(True)]} an artery/vein "
            "network: compare each kind with its own kind"
        )
    if all(av):
        protocol, metrics = AV_PROTOCOL, list(AV_COMPARED)
        summaries = [summary["av"] for summary in summaries]
    else:
        metrics = list(COMPARED)

    def section(scored: dict, metric: str) -> dict:
        """The part of a summary or per-image entry that holds `metric`."""
        return scored[AV_COMPARED[metric]] if protocol == AV_PROTOCOL else scored[protocol]

    names = [entry["name"] for entry in summaries[0]["per_image"]]
    for label, summary in zip(labels, summaries, strict=True):
        if [entry["name"] for entry in summary["per_image"]] != names:
            raise UserError(f"model {label} was scored on other test images than {labels[0]}")
    scores = {
        label: {key: [section(e, key)[key] for e in summary["per_image"]] for key in metrics}
        for label, summary in zip(labels, summaries, strict=True)
    }
    comparisons = [
        {
            "model": label,
            "against": labels[0],
            "metric": key,
            **paired_comparison(scores[labels[0]][key], scores[label][key], resamples, seed=seed),
        }
        for label in labels[1:]
        for key in metrics
    ]
    return {
        "protocol": protocol,
        "threshold": summaries[0]["threshold"],
        "metrics": metrics,
        "models": [
            {
                "key": key,
                "label": label,
                "mean": {metric: section(summary, metric)["mean"][metric] for metric in metrics},
            }
            for key, label, summary in zip(string.ascii_uppercase, labels, summaries, strict=False)
        ],
        "images": names,
        "per_image": scores,
        "comparisons": comparisons,
    }


def protocol_text(protocol: str) -> str:
    """compare.json's "protocol" in words."""
    if protocol == AV_PROTOCOL:
        return (
            "arteries and veins inside the FOV: A/V F1, the mean of artery and vein F1 "
            "(protocol (a)); A/V accuracy, the reference vessels' types (protocol (b))"
        )
    return protocol.replace("_", " ")


def format_report(result: dict) -> str:
    """Markdown: the models, their per-image scores side by side (F1 and Jaccard, or A/V F1 and
    accuracy), each model against A."""
    models = result["models"]
    keys = [m["key"] for m in models]
    compared = result["metrics"]
    lines = [
        f"Protocol: {protocol_text(result['protocol'])}, threshold {result['threshold']}.",
        "",
    ]
    lines += [f"- {m['key']}: {m['label']}" for m in models]
    header = [f"{LABELS[metric]} {key}" for metric in compared for key in keys]
    lines += ["", "| image | " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(header)]
    for i, name in enumerate(result["images"]):
        values = [result["per_image"][m["label"]][metric][i] for metric in compared for m in models]
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    means = [m["mean"][metric] for metric in compared for m in models]
    lines.append("| **mean** | " + " | ".join(f"**{v:.4f}**" for v in means) + " |")
    first = result["comparisons"][0] if result["comparisons"] else None
    if first:
        lines += [
            "",
            f"Each model against A ({models[0]['label']}): difference of per-image scores (model - A), "
            f"mean with a paired bootstrap {first['confidence']:.0%} interval ({first['resamples']:,} "
            f"resamples of the {first['n_images']} images, seed {first['seed']}), two-sided Wilcoxon "
            "signed-rank p; images where the model is better / worse / equal.",
            "",
            "| model | metric | A | model | model - A | 95% CI | Wilcoxon p | better / worse / equal |",
            "| --- | --- | ---: | ---: | ---: | --- | ---: | --- |",
        ]
    key_of = {m["label"]: m["key"] for m in models}
    for c in result["comparisons"]:
        lines.append(
            f"| {key_of[c['model']]} | {LABELS[c['metric']]} | {c['mean_a']:.4f} | {c['mean_b']:.4f} "
            f"| {c['mean_diff']:+.4f} | [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] "
            f"| {c['p_wilcoxon']:.3g} | {c['b_better']} / {c['b_worse']} / {c['ties']} |"
        )
    return "\n".join(lines) + "\n"


def plot_pairs(result: dict, path: Path) -> bool:
    """Per-image F1 (A/V F1 for artery/vein networks) of A (x) against each other model (y), one
    panel each, with the diagonal.

    Returns False (and draws nothing) where matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    models = result["models"]
    metric = result["metrics"][0]
    name = LABELS[metric]
    a = result["per_image"][models[0]["label"]][metric]
    others = models[1:]
    fig, axes = plt.subplots(1, len(others), figsize=(4.5 * len(others), 4.9), squeeze=False)
    for ax, model in zip(axes[0], others, strict=True):
        b = result["per_image"][model["label"]][metric]
        low = min(min(a), min(b))
        high = max(max(a), max(b))
        margin = max((high - low) * 0.08, 0.005)
        ends = (low - margin, high + margin)
        ax.plot(ends, ends, color="0.6", linewidth=1, zorder=1)
        ax.scatter(a, b, s=22, color="tab:blue", zorder=2)
        ax.set_xlim(ends)
        ax.set_ylim(ends)
        ax.set_aspect("equal")
        ax.set_xlabel(f"{name} of A: {models[0]['label']}")
        ax.set_ylabel(f"{name} of {model['key']}: {model['label']}")
        stats = next(
            c
            for c in result["comparisons"]
            if c["model"] == model["label"] and c["metric"] == metric
        )
        ax.set_title(
            f"{model['key']} - A: {stats['mean_diff']:+.4f} "
            f"[{stats['ci_low']:+.4f}, {stats['ci_high']:+.4f}], p {stats['p_wilcoxon']:.2g}",
            fontsize=9,
        )
        ax.grid(alpha=0.3)
    protocol = "inside the FOV" if result["protocol"] == AV_PROTOCOL else result["protocol"]
    fig.suptitle(
        f"Per-image {name} ({protocol.replace('_', ' ')})\nabove the diagonal: better than A",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def check_one_kind(weights: list[Path]) -> None:
    """One sentence, before any evaluation, where vessel and artery/vein networks are mixed."""
    from models import is_av_model, load_model

    kinds = [is_av_model(load_model(path)) for path in weights]
    if any(kinds) and not all(kinds):
        raise UserError(
            f"{weights[kinds.index(False)]} is a vessel network and {weights[kinds.index(True)]} "
            "an artery/vein network: compare each kind with its own kind"
        )


def main(argv=None) -> int:
    args = parse_args(argv)
    if len(args.weights) < 2:
        raise UserError(
            f"compare.py needs at least two weights files (A, then the models to compare with it), "
            f"got {len(args.weights)}"
        )
    if len(args.weights) > len(string.ascii_uppercase):
        raise UserError(f"compare.py compares at most 26 models, got {len(args.weights)}")
    if args.resamples < 1:
        raise UserError(f"--resamples must be a positive whole number, got {args.resamples}")
    from training.config import resolve_run_config
    from utils.checks import check_data_root
    from utils.io import check_weights_file, write_json, write_text

    weights = [check_weights_file(path) for path in args.weights]
    overrides = list(args.set) + ["evaluate.save_images=false"]
    if args.fold is not None:
        overrides.append(f"dataset.fold={args.fold}")
    if args.threshold is not None:
        overrides.append(f"evaluate.threshold={args.threshold}")
    cfg = resolve_run_config(args.config, overrides, data_root=args.data_root)
    check_data_root(cfg["dataset"])
    from training.backend import select_backend

    select_backend(args.backend)  # after the checks above: a typo costs no TensorFlow import
    from inference.evaluation import evaluate_checkpoint

    out = Path(args.out) if args.out else Path("runs") / "compare"
    labels = model_labels(weights)
    check_one_kind(weights)
    summaries = []
    for key, label, path in zip(string.ascii_uppercase, labels, weights, strict=False):
        start = time.perf_counter()
        summary = evaluate_checkpoint(cfg, path, out / label, engine=args.engine, verbose=False)
        if "av" in summary:
            score = f"A/V F1 {summary['av']['segmentation']['mean']['f1_mean']:.4f}"
        else:
            score = f"F1 {summary[args.protocol]['mean']['f1']:.4f}"
        print(
            f"{key}: {label} ({path}): {score} over {summary['n_images']} images "
            f"({time.perf_counter() - start:.0f} s; report in {out / label})"
        )
        summaries.append(summary)

    result = compare_summaries(labels, summaries, args.protocol, args.resamples, args.seed)
    result["config"] = str(args.config)
    result["dataset"] = cfg["dataset"]["name"]
    for model, path in zip(result["models"], weights, strict=True):
        model["weights"] = str(path)
        model["report"] = str(out / model["label"])
    report = format_report(result)
    write_json(out / "compare.json", result)
    write_text(out / "compare.md", f"# Comparison on {result['dataset']} test\n\n{report}")
    drawn = plot_pairs(result, out / "compare.png")
    print()
    print(report)
    written = "compare.json, compare.md" + (
        ", compare.png" if drawn else " (no matplotlib: no figure)"
    )
    print(f"{written} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

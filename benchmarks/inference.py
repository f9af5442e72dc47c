"""Time every inference engine on one 592 x 592 x 3 image (batch 1).

    python benchmarks/inference.py                 # random-weights SA-UNetv2, table
    python benchmarks/inference.py --json          # JSON list, one object per engine
    python benchmarks/inference.py --weights W.keras --runs 20 --size 592

Each engine is warmed up (compilation, first-call allocation), then the
engines are timed in turns (run i of every engine before run i + 1), so a
neighbour's load on the machine affects them alike. "keras" is the plain path
(`model.predict_on_batch`, Keras' compiled predict step); "speed-up" is its
median divided by the engine's; "max |diff|" is the largest probability
difference from "keras" on the timed image; "default" marks the engine
`predict.py` uses (engine "auto").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# This file is named like the `inference` package: take its folder off the path, put the root on.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.common import machine, markdown_table, timing_summary  # noqa: E402
from utils.cli import run_cli  # noqa: E402
from utils.errors import UserError  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="a trained .keras file (default: random weights)")
    parser.add_argument("--model", default="sa_unetv2", help="architecture for random weights")
    parser.add_argument(
        "--size", type=int, default=592, help="image height and width (multiple of 8)"
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs per engine (at least 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per engine")
    parser.add_argument("--engines", default="all", help="comma-separated engines, or 'all'")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    return parser.parse_args(argv)


def benchmark(predictors: dict, images: np.ndarray, runs: int, warmup: int) -> dict:
    """Seconds of each run, per engine, timed in turns after `warmup` untimed runs each."""
    outputs = {}
    for name, predictor in predictors.items():
        for _ in range(warmup):
            outputs[name] = predictor.predict(images)
    times = {name: [] for name in predictors}
    for _ in range(runs):
        for name, predictor in predictors.items():
            start = time.perf_counter()
            predictor.predict(images)
            times[name].append(time.perf_counter() - start)
    return {"times": times, "outputs": outputs}


def summarize(times: dict, outputs: dict, default: str) -> list[dict]:
    rows = []
    for name, t in timing_summary(times, "keras").items():
        rows.append(
            {
                "engine": name,
                "median_s": round(t["median"], 4),
                "min_s": round(t["min"], 4),
                "max_s": round(t["max"], 4),
                "images_per_s": round(1.0 / t["median"], 2),
                "speedup_vs_keras": round(t["speedup"], 2),
                "ratio_to_keras": round(1.0 / t["speedup"], 3),
                "max_abs_diff_vs_keras": float(np.max(np.abs(outputs[name] - outputs["keras"]))),
                "runs": t["runs"],
                "default": name == default,
            }
        )
    return rows


COLUMNS = [
    ("engine", lambda r: r["engine"]),
    ("median s", lambda r: f"{r['median_s']:.3f}"),
    ("min s", lambda r: f"{r['min_s']:.3f}"),
    ("max s", lambda r: f"{r['max_s']:.3f}"),
    ("images/s", lambda r: f"{r['images_per_s']:.2f}"),
    ("speed-up vs keras", lambda r: f"{r['speedup_vs_keras']:.2f}x"),
    ("max abs diff", lambda r: f"{r['max_abs_diff_vs_keras']:.1e}"),
    ("default", lambda r: "yes" if r["default"] else ""),
]


def format_table(rows: list[dict], header: str) -> str:
    return f"{header}\n\n{markdown_table(COLUMNS, rows)}"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.runs < 10:
        raise UserError(f"--runs must be at least 10, got {args.runs}")
    if args.size < 8 or args.size % 8:
        raise UserError(f"--size must be a positive multiple of 8, got {args.size}")

    from inference.engines import (
        default_threads,
        make_predictor,
        parse_engines,
        resolve_engine,
    )
    from models import build_model, load_model

    engines = ["keras"] + [name for name in parse_engines(args.engines) if name != "keras"]

    if args.weights:
        model = load_model(args.weights)
        source = args.weights
    else:
        import keras

        keras.utils.set_random_seed(0)
        model = build_model(args.model)
        source = f"{args.model} (random weights)"
    threads = args.threads or default_threads()
    predictors = {name: make_predictor(model, name, threads=threads) for name in engines}
    images = np.random.default_rng(0).random((1, args.size, args.size, 3), dtype=np.float32)
    result = benchmark(predictors, images, args.runs, args.warmup)
    rows = summarize(result["times"], result["outputs"], default=resolve_engine("auto"))

    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        import keras

        header = (
            f"{source}, 1 x {args.size} x {args.size} x 3 float32, {args.runs} timed runs per engine "
            f"after {args.warmup} warm-up, {threads} threads, {machine()}, "
            f"keras {keras.__version__} ({keras.backend.backend()})"
        )
        print(format_table(rows, header))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

"""Training-step speed: the project's step against a plain float32 Keras step of the same network.

    python benchmarks/training.py                    # batch 8 at 592 x 592, table
    python benchmarks/training.py --json             # JSON list, one object per step
    python benchmarks/training.py --size 256 --batch 2 --ablation

"project" is what `train.py` runs on TensorFlow: SA-UNetv2 with the project's
`GroupNormalization` and `DropBlock2D` (models/layers.py), compiled as
`training.trainer.build_and_compile` does (Adam 1e-3, 0.5 BCE + 0.5 MCC), in a
process set up by `training.backend.select_backend` (TensorFlow's oneDNN
kernels on). "plain" is the same network with the same initial weights, loss
and optimizer, built from `keras.layers.GroupNormalization` and the direct
DropBlock (`models.reference`), with TensorFlow's default kernels: what a
straightforward Keras script gets. `--ablation` adds the two halves
("layers only": the project's layers, default kernels; "oneDNN only": the
plain layers with oneDNN).

Each variant lives in a worker process of its own (the kernel choice is fixed
when TensorFlow is imported); the workers build and warm up, then take one
`train_on_batch` each in turns (step i of every variant before step i + 1), so
a neighbour's load affects them alike, and only one computes at a time. The
batch is random (images in [0, 1], about 12 % vessel pixels). Reported: median
seconds per step, images per second, seconds per image, speed-up over "plain".
A benchmark, not a test: pause any background training while it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.common import machine, markdown_table, timing_summary  # noqa: E402
from utils.cli import run_cli  # noqa: E402
from utils.errors import UserError  # noqa: E402

# name -> (the project's layers?, the project's kernel setting?)
VARIANTS = {
    "plain": (False, False),
    "project": (True, True),
    "layers only": (True, False),
    "oneDNN only": (False, True),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size", type=int, default=592, help="image height and width (multiple of 8)"
    )
    parser.add_argument(
        "--batch", type=int, default=8, help="images per step (the paper's DRIVE batch: 8)"
    )
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant (at least 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant")
    parser.add_argument("--ablation", action="store_true", help="also time the two halves")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--progress", action="store_true", help="print each timed step on stderr")
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="enable TensorFlow's op determinism in every variant, as train.py does",
    )
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size < 16 or args.size % 8:
        raise UserError(f"--size must be a multiple of 8 of at least 16, got {args.size}")
    if args.batch < 1:
        raise UserError(f"--batch must be at least 1, got {args.batch}")
    if args.steps < 5:
        raise UserError(f"--steps must be at least 5 (a median of 5 steps), got {args.steps}")
    if args.warmup < 1:
        raise UserError(f"--warmup must be at least 1 (the first step compiles), got {args.warmup}")
    return args


def make_batch(batch: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random images (B, size, size, 3) in [0, 1] and labels (B, size, size, 1), ~12 % ones."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, size, size, 3), dtype=np.float32)
    y = (rng.random((batch, size, size, 1)) < 0.12).astype("float32")
    return x, y


def build_variant(project_layers: bool):
    """The compiled model: train.py's, or the same network and weights with the plain layers."""
    import copy

    import keras

    from models.reference import plain_copy
    from training.config import DEFAULT_CONFIG
    from training.trainer import build_and_compile

    cfg = copy.deepcopy(DEFAULT_CONFIG)
    keras.utils.set_random_seed(cfg["train"]["seed"])
    model = build_and_compile(cfg)
    if project_layers:
        return model
    plain = plain_copy(model)
    plain.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg["train"]["learning_rate"]),
        loss=model.loss,
        metrics=["accuracy"],
        jit_compile=model.jit_compile,
    )
    return plain


def worker(args) -> int:
    """Build one variant, warm it up, then time one step per 'step' line read from stdin."""
    project_layers, project_kernels = VARIANTS[args.worker]
    if project_kernels:
        from training.backend import select_backend

        select_backend("tensorflow")
    else:
        os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)  # TensorFlow's own default
        os.environ["KERAS_BACKEND"] = "tensorflow"
    import tensorflow as tf

    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    x, y = make_batch(args.batch, args.size)
    model = build_variant(project_layers)
    for _ in range(args.warmup):
        model.train_on_batch(x, y)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            break
        start = time.perf_counter()
        model.train_on_batch(x, y)
        print(f"{time.perf_counter() - start:.6f}", flush=True)
    return 0


def start_worker(name: str, args) -> subprocess.Popen:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name]
    command += ["--size", str(args.size), "--batch", str(args.batch), "--warmup", str(args.warmup)]
    if args.deterministic:
        command.append("--deterministic")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )


def read_line(name: str, process: subprocess.Popen) -> str:
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the {name} worker stopped (exit status {process.wait()})")
    return line.strip()


def time_steps(names: list[str], args) -> dict[str, list[float]]:
    """Seconds of each timed step, per variant, in turns after every worker has warmed up."""
    workers = {}
    try:
        for name in names:  # one at a time, so compilation and warm-up do not overlap
            workers[name] = start_worker(name, args)
            assert read_line(name, workers[name]) == "ready"
        times = {name: [] for name in names}
        for _ in range(args.steps):
            for name, process in workers.items():
                process.stdin.write("step\n")
                process.stdin.flush()
                times[name].append(float(read_line(name, process)))
                if args.progress:
                    print(f"  {name}: {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
        return times
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.stdin.close()
                process.wait()


def summarise(times: dict[str, list[float]], batch: int, size: int) -> list[dict]:
    rows = []
    for name, t in timing_summary(times, "plain").items():
        rows.append(
            {
                "step": name,
                "batch": batch,
                "size": size,
                "steps": t["runs"],
                "median_s_per_step": round(t["median"], 4),
                "images_per_s": round(batch / t["median"], 3),
                "s_per_image": round(t["median"] / batch, 4),
                "speedup_vs_plain": round(t["speedup"], 3),
            }
        )
    return rows


COLUMNS = [
    ("step", lambda r: r["step"]),
    ("s/step", lambda r: f"{r['median_s_per_step']:.3f}"),
    ("images/s", lambda r: f"{r['images_per_s']:.3f}"),
    ("s/image", lambda r: f"{r['s_per_image']:.3f}"),
    ("speed-up", lambda r: f"{r['speedup_vs_plain']:.2f}x"),
]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    names = list(VARIANTS) if args.ablation else ["plain", "project"]
    rows = summarise(time_steps(names, args), args.batch, args.size)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"training step, batch {args.batch} at {args.size} x {args.size}, median of {args.steps} "
        f"steps (TensorFlow, {machine()})\n"
    )
    print(markdown_table(COLUMNS, rows))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

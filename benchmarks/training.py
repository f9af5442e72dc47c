"""Training-step speed: the project's step against a plain float32 Keras step of the same network.

    python benchmarks/training.py                    # batch 8 at 592 x 592, table
    python benchmarks/training.py --json             # JSON list, one object per step
    python benchmarks/training.py --size 128 --batch 4 --steps 5 --ablation

"project" is what `train.py` runs: SA-UNetv2 with the project's `GroupNormalization` and `DropBlock2D`
(models/layers.py), Adam 1e-3 and the 0.5 BCE + 0.5 MCC loss, compiled as
`training.trainer.build_and_compile` does. "plain" is the same network with the
same weights, loss and optimizer, built from `keras.layers.GroupNormalization`
and the direct DropBlock (`models.reference`). `--ablation` adds the two mixes
(project GroupNorm + direct DropBlock, and the reverse). Every step is one
`train_on_batch` on the same random batch (images in [0, 1], about 12 % vessel
pixels); after `--warmup` untimed steps each, the steps are timed in turns
(step i of every variant before step i + 1), so a neighbour's load affects them
alike. Reported: median seconds per step, images per second, seconds per image,
and the speed-up over "plain". A benchmark, not a test: the figures depend on
the machine (pause any background training while it runs).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from utils.cli import run_cli  # noqa: E402
from utils.errors import UserError  # noqa: E402


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
    parser.add_argument("--ablation", action="store_true", help="also time the two mixed variants")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--progress", action="store_true", help="print each timed step on stderr")
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="enable TensorFlow's op determinism for every variant, as train.py does",
    )
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


def build_variants(ablation: bool) -> dict:
    """name -> compiled model; every variant holds the project model's initial weights."""
    import keras

    from models import layers as project_layers
    from models.layers import DropBlock2D
    from models.reference import DirectDropBlock2D, plain_copy
    from training.config import DEFAULT_CONFIG
    from training.trainer import build_and_compile

    cfg = copy.deepcopy(DEFAULT_CONFIG)
    keras.utils.set_random_seed(cfg["train"]["seed"])
    project = build_and_compile(cfg)

    def compiled(model):
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=cfg["train"]["learning_rate"]),
            loss=project.loss,
            metrics=["accuracy"],
            jit_compile=project.jit_compile,
        )
        return model

    def mixed(keep):
        def swap(layer):
            if type(layer) is keep:
                return layer.__class__.from_config(layer.get_config())
            if type(layer) is project_layers.GroupNormalization:
                return keras.layers.GroupNormalization.from_config(layer.get_config())
            if type(layer) is DropBlock2D:
                return DirectDropBlock2D.from_config(layer.get_config())
            return layer.__class__.from_config(layer.get_config())

        model = keras.models.clone_model(project, clone_function=swap)
        model.set_weights(project.get_weights())
        return compiled(model)

    variants = {"plain": compiled(plain_copy(project)), "project": project}
    if ablation:
        variants["groupnorm only"] = mixed(project_layers.GroupNormalization)
        variants["dropblock only"] = mixed(DropBlock2D)
    return variants


def time_steps(
    variants: dict, x, y, steps: int, warmup: int, progress: bool = False
) -> dict[str, list[float]]:
    """Seconds of each timed train_on_batch, per variant, in turns after the warm-up."""
    for model in variants.values():
        for _ in range(warmup):
            model.train_on_batch(x, y)
    times = {name: [] for name in variants}
    for _ in range(steps):
        for name, model in variants.items():
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times[name].append(time.perf_counter() - start)
            if progress:
                print(f"  {name}: {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
    return times


def summarise(times: dict[str, list[float]], batch: int, size: int) -> list[dict]:
    plain = statistics.median(times["plain"])
    rows = []
    for name, seconds in times.items():
        median = statistics.median(seconds)
        rows.append(
            {
                "step": name,
                "batch": batch,
                "size": size,
                "steps": len(seconds),
                "median_s_per_step": round(median, 4),
                "images_per_s": round(batch / median, 3),
                "s_per_image": round(median / batch, 4),
                "speedup_vs_plain": round(plain / median, 3),
            }
        )
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    import keras

    if args.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    x, y = make_batch(args.batch, args.size)
    variants = build_variants(args.ablation)
    times = time_steps(variants, x, y, args.steps, args.warmup, progress=args.progress)
    rows = summarise(times, args.batch, args.size)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"training step, batch {args.batch} at {args.size} x {args.size}, median of {args.steps} "
        f"steps ({keras.backend.backend()}, Keras {keras.__version__}, {platform.processor() or platform.machine()})"
    )
    print(f"{'step':<16} {'s/step':>8} {'images/s':>9} {'s/image':>8} {'speed-up':>9}")
    for row in rows:
        print(
            f"{row['step']:<16} {row['median_s_per_step']:>8.3f} {row['images_per_s']:>9.3f} "
            f"{row['s_per_image']:>8.3f} {row['speedup_vs_plain']:>8.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

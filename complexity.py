"""Parameters, weight bytes and GFLOPs of the registered models.

    python complexity.py --model sa_unetv2 --input-size 592
    python complexity.py --all --json

GFLOPs are counted the way the keras-flops package did (it no longer imports
on current TensorFlow): the TF v1 profiler's `total_float_ops` on the frozen
inference graph at batch 1, a multiply-add counted as 2 FLOPs, plus
keras-flops' rule for `Max` (a reduction: one comparison per input element
less one per output element), on the network built with Keras' own
GroupNormalization (`models.reference.plain_copy`), as the paper's figures
were. Counting FLOPs needs the TensorFlow backend; under JAX or PyTorch the
parameter counts are printed and `gflops` is null.
"""

from __future__ import annotations

import argparse
import json
import sys

import keras
import numpy as np

from models import MODEL_NAMES, build_model
from utils.cli import run_cli
from utils.errors import UserError


def check_input_size(size: int) -> int:
    """Return `size` if it is a positive multiple of 8, else raise a UserError."""
    if size < 8 or size % 8:
        raise UserError(
            f"--input-size must be a positive multiple of 8 (for example 592), got {size}"
        )
    return size


def count_params(model: keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts and float32 weight bytes."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    total = int(model.count_params())
    return {
        "params": total,
        "trainable_params": trainable,
        "non_trainable_params": total - trainable,
        "weight_bytes_fp32": 4 * total,
    }


_MAX_RULE_REGISTERED = False


def _register_max_rule() -> None:
    """keras-flops' statistic for `Max` (reduce_max), which TensorFlow's registry lacks."""
    global _MAX_RULE_REGISTERED
    if _MAX_RULE_REGISTERED:
        return
    from tensorflow.python.framework import ops
    from tensorflow.python.profiler.internal.flops_registry import _reduction_op_flops

    try:

        @ops.RegisterStatistics("Max", "flops")
        def _max_flops(graph, node):
            return _reduction_op_flops(graph, node, reduce_flops=1, finalize_flops=0)

    except KeyError:  # a newer TensorFlow that registers it itself
        pass
    _MAX_RULE_REGISTERED = True


def count_flops(model: keras.Model, input_size: int | tuple[int, int], channels: int = 3) -> int:
    """Float operations of one forward pass at batch 1 (TF profiler on the frozen graph)."""
    if keras.backend.backend() != "tensorflow":
        raise UserError("counting FLOPs needs the TensorFlow backend (KERAS_BACKEND=tensorflow)")
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2_as_graph,
    )

    from models.reference import plain_copy

    # Counted on the network as the paper's authors built it, with Keras' own
    # GroupNormalization: the project's computes the same function with other ops.
    model = plain_copy(model)
    _register_max_rule()
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    spec = tf.TensorSpec([1, height, width, channels], tf.float32)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    _, graph_def = convert_variables_to_constants_v2_as_graph(concrete)
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        profile = tf.compat.v1.profiler.profile(
            graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options
        )
    return int(profile.total_float_ops)


def measure(name: str, input_size: int, flops: bool = True) -> dict:
    """One row of the complexity table for model `name` at `input_size` x `input_size` x 3."""
    check_input_size(input_size)
    model = build_model(name, input_shape=(input_size, input_size, 3))
    row = {"model": name, "input_size": input_size, "backend": keras.backend.backend()}
    row.update(count_params(model))
    can_count = flops and keras.backend.backend() == "tensorflow"
    flops = count_flops(model, input_size) if can_count else None
    row["flops"] = flops
    row["gflops"] = None if flops is None else round(flops / 1e9, 3)
    return row


def format_table(rows: list[dict]) -> str:
    """Markdown table of the rows."""
    lines = [
        "| model | input | params | trainable | fp32 weights (MB) | GFLOPs |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        gflops = "n/a" if r["gflops"] is None else f"{r['gflops']:.3f}"
        lines.append(
            f"| {r['model']} | {r['input_size']} x {r['input_size']} x 3 | {r['params']:,} "
            f"| {r['trainable_params']:,} | {r['weight_bytes_fp32'] / 1e6:.2f} | {gflops} |"
        )
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", choices=MODEL_NAMES, default="sa_unetv2", help="model to measure")
    which.add_argument("--all", action="store_true", help="measure every registered model")
    parser.add_argument(
        "--input-size", type=int, default=592, help="square input side, multiple of 8"
    )
    parser.add_argument("--no-flops", action="store_true", help="parameters only (fast)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    check_input_size(args.input_size)
    names = MODEL_NAMES if args.all else (args.model,)
    rows = [measure(name, args.input_size, flops=not args.no_flops) for name in names]
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

"""How close each engine's probabilities are to an exact (float64) run of the same network.

`float64_copy(model)` rebuilds a Keras model with every layer in float64 and
the same weights; `compare_engines` runs the engines on images one at a time
(batch 1, as predict.py and evaluate.py do) and reports, per engine, the
largest probability difference from float64, from the plain Keras path at
batch 1 and at batch 2, and how many pixels change side of the 0.5 threshold.
`benchmarks/precision.py` prints these for a dataset's test images.
"""

from __future__ import annotations

import json

import numpy as np


def float64_copy(model):
    """The same architecture and weights with every layer (and sub-layer) in float64."""
    import keras

    def to_float64(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy":
                return {**node, "config": {**node["config"], "name": "float64"}}
            return {key: to_float64(value) for key, value in node.items()}
        if isinstance(node, list):
            return [to_float64(value) for value in node]
        return node

    config = to_float64(json.loads(json.dumps(model.get_config())))
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")  # sub-layers built without an explicit dtype
    try:
        copy = model.__class__.from_config(config)
    finally:
        keras.config.set_floatx(previous)
    copy.set_weights([np.asarray(w, np.float64) for w in model.get_weights()])
    return copy


def compare_engines(model, engines: list[str], images, threads: int | None = None) -> list[dict]:
    """Per engine: max |p - p64|, max |p - keras@1|, max |p - keras@2|, threshold flips.

    images: iterable of float32 (H, W, C) arrays (H, W multiples of 8). "keras@2"
    runs each image in a batch of two (the image twice) and keeps the first.
    """
    from inference.engines import make_predictor

    exact = float64_copy(model)
    keras_path = make_predictor(model, "keras")
    predictors = {
        name: keras_path if name == "keras" else make_predictor(model, name, threads=threads)
        for name in engines
    }
    stats = {
        name: {"vs_float64": 0.0, "vs_keras_batch1": 0.0, "vs_keras_batch2": 0.0, "flips": 0}
        for name in predictors
    }
    for image in images:
        batch = np.asarray(image, np.float32)[None]
        p64 = np.asarray(exact.predict_on_batch(batch.astype(np.float64)))
        k1 = keras_path.predict(batch)
        k2 = keras_path.predict(np.concatenate([batch, batch]))[:1]
        for name, predictor in predictors.items():
            p = k1 if predictor is keras_path else predictor.predict(batch)
            row = stats[name]
            row["vs_float64"] = max(row["vs_float64"], float(np.max(np.abs(p - p64))))
            row["vs_keras_batch1"] = max(row["vs_keras_batch1"], float(np.max(np.abs(p - k1))))
            row["vs_keras_batch2"] = max(row["vs_keras_batch2"], float(np.max(np.abs(p - k2))))
            row["flips"] += int(np.sum((p >= 0.5) != (p64 >= 0.5)))
    return [{"engine": name, **row} for name, row in stats.items()]


def tf_mean_error(batch: int, shape=(592, 592, 4, 4), seed: int = 0) -> float:
    """Relative error of TensorFlow's float32 mean over axes (1, 2, 4), as GroupNormalization
    reduces a (B, H, W, groups, channels per group) map, against float64."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((batch, *shape)) * 3 + 10).astype(np.float32)
    got = tf.reduce_mean(x, axis=[1, 2, 4]).numpy()
    exact = x.astype(np.float64).mean(axis=(1, 2, 4))
    return float(np.max(np.abs(got - exact)) / np.max(np.abs(exact)))

"""Export a Keras model to ONNX, TF SavedModel and TFLite, each re-loaded and checked.

Every export has the Keras model's interface: input float32 (B, H, W, 3) in
[0, 1] with any batch and any H, W multiples of 8, output float32 (B, H, W, 1)
probabilities. Files are written under a temporary name and renamed into
place; after writing, each file is loaded by its own runtime and its output
on a random image is compared with the Keras model's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from utils.errors import UserError
from utils.io import atomic_path

FORMATS = ("onnx", "savedmodel", "tflite")
FILENAMES = {"onnx": "model.onnx", "savedmodel": "saved_model", "tflite": "model.tflite"}
PARITY_TOLERANCE = 1e-3
PARITY_SHAPE = (2, 64, 96)  # (B, H, W): non-square and batch > 1, to catch layout mistakes


def parse_formats(text: str) -> list[str]:
    """'onnx,savedmodel' or 'all' -> list of formats; unknown names raise a UserError."""
    names = list(FORMATS) if text == "all" else [t.strip() for t in text.split(",") if t.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise UserError(
            f"unknown export format '{', '.join(unknown) or text}'; choose from {', '.join(FORMATS)} or all"
        )
    return names


@contextlib.contextmanager
def atomic_dir(path: Path):
    """Yield a temporary folder beside `path`; on success it replaces `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700; give the usual folder permissions
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_onnx(model, path: Path) -> None:
    """The channels-first ONNX graph of `inference.onnx_graph` (opset 17)."""
    import onnx

    from inference.onnx_graph import build_onnx_model

    with atomic_path(path) as tmp:
        onnx.save(build_onnx_model(model), str(tmp))


def write_savedmodel(model, path: Path) -> None:
    """A TF SavedModel with a `serve` endpoint and serving signature (TensorFlow backend)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UserError(
            "the SavedModel export needs the TensorFlow backend (KERAS_BACKEND=tensorflow)"
        )
    with atomic_dir(path) as tmp:
        model.export(str(tmp), format="tf_saved_model", verbose=False)


def write_tflite(model, path: Path) -> None:
    """A float32 TFLite (LiteRT) flat buffer converted from a SavedModel of `model`."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "saved_model"
        write_savedmodel(model, saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        flatbuffer = converter.convert()
    with atomic_path(path) as tmp:
        tmp.write_bytes(flatbuffer)


WRITERS = {"onnx": write_onnx, "savedmodel": write_savedmodel, "tflite": write_tflite}


def run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


def run_savedmodel(path: Path, images: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # keep a reference: it owns the variables
    return loaded.serve(tf.constant(images)).numpy()


def run_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": it still works in 2.21
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(path))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


RUNNERS = {"onnx": run_onnx, "savedmodel": run_savedmodel, "tflite": run_tflite}


def check_parity(model, fmt: str, path: Path, seed: int = 0) -> float:
    """Max abs difference between the re-loaded export and `model` on a random batch."""
    channels = int(model.inputs[0].shape[-1])
    images = np.random.default_rng(seed).random((*PARITY_SHAPE, channels), dtype=np.float32)
    expected = np.asarray(model.predict_on_batch(images))
    got = np.asarray(RUNNERS[fmt](path, images))
    if got.shape != expected.shape:
        raise UserError(
            f"{fmt} export {path} gives shape {got.shape}, the Keras model {expected.shape}"
        )
    return float(np.max(np.abs(got - expected)))


def export_model(model, out_dir, formats, tolerance: float = PARITY_TOLERANCE) -> list[dict]:
    """Write each format under `out_dir`, re-load it and check parity.

    Returns one dict per format: format, path, max_abs_diff (None if skipped),
    status ("ok" or "skipped: <reason>"). A parity failure raises a UserError.
    """
    out_dir = Path(out_dir)
    results = []
    for fmt in formats:
        path = out_dir / FILENAMES[fmt]
        try:
            WRITERS[fmt](model, path)
        except UserError:
            raise
        except Exception as exc:
            if fmt != "tflite":
                raise
            # TFLite is optional: converters come and go with TF releases.
            results.append(
                {
                    "format": fmt,
                    "path": None,
                    "max_abs_diff": None,
                    "status": f"skipped: conversion failed ({exc.__class__.__name__})",
                }
            )
            continue
        diff = check_parity(model, fmt, path)
        if not diff <= tolerance:
            raise UserError(
                f"{fmt} export {path} differs from the Keras model by {diff:.2e} "
                f"(more than {tolerance:g}); do not use it"
            )
        results.append({"format": fmt, "path": str(path), "max_abs_diff": diff, "status": "ok"})
    return results

"""Inference engines behind one interface: `make_predictor(model, engine).predict(images)`.

Engines (all float32; on random inputs they agree with the plain Keras path
within 1e-4; on real 592 x 592 images the plain TensorFlow path at batch 1 is
itself up to 5.6e-3 from a float64 run, because TensorFlow's CPU mean over
GroupNorm's axes loses precision at batch 1, while the OpenVINO graph is 1e-5
from it: docs/inference.md, `benchmarks/precision.py`):

- "keras":       `model.predict_on_batch` (Keras' compiled predict step; any backend).
- "xla":         the Keras model under `tf.function(jit_compile=True)` (TensorFlow backend).
- "onnxruntime": the channels-first ONNX graph of `inference.onnx_graph` in ONNX Runtime.
- "openvino":    the same ONNX graph compiled by OpenVINO for the CPU (in requirements.txt; tests skip it if absent).

"auto" (what predict.py and evaluate.py use) takes the first available engine
in `AUTO_ORDER` (openvino, onnxruntime, keras: fastest first, measured by
`python benchmarks/inference.py`),
checks it against the Keras path on a small random image, and falls back to
the next one (with a warning) if it is missing, fails or differs by more than
`AUTO_TOLERANCE`; "keras" is always the last resort.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

from utils.errors import UserError

ENGINES = ("keras", "xla", "onnxruntime", "openvino")
# Fastest first, measured on a 2-core CPU (docs/inference.md). XLA is not here:
# on TensorFlow 2.21's CPU backend it was slower than the plain path (no oneDNN convolutions).
AUTO_ORDER = ("openvino", "onnxruntime", "keras")
DEFAULT_ENGINE = "auto"
AUTO_TOLERANCE = 1e-3  # max abs difference of probabilities against the Keras path
PROBE_SHAPE = (1, 64, 64)  # (B, H, W) of the parity probe of "auto"
# OpenVINO keeps this many compiled input shapes (least recently used dropped): a cohort of
# photographs of many sizes must not grow memory without bound.
MAX_COMPILED_SHAPES = 8


def engine_available(engine: str) -> bool:
    """True if `engine` can run here (its package is installed, right Keras backend)."""
    if engine == "keras":
        return True
    if engine == "xla":
        import keras

        return keras.backend.backend() == "tensorflow"
    if engine == "onnxruntime":
        return _has_module("onnx") and _has_module("onnxruntime")
    if engine == "openvino":
        return _has_module("onnx") and _has_module("openvino")
    raise UserError(f"unknown engine '{engine}'; choose one of: auto, {', '.join(ENGINES)}")


def available_engines() -> list[str]:
    """The engines of `ENGINES` that can run here."""
    return [engine for engine in ENGINES if engine_available(engine)]


def parse_engines(text: str) -> list[str]:
    """A command line's `--engines` value: "all" (those available here) or comma-separated names."""
    if text == "all":
        return available_engines()
    engines = [name.strip() for name in text.split(",") if name.strip()]
    for name in engines:
        if name not in ENGINES:
            raise UserError(
                f"unknown engine '{name}' in --engines; choose from {', '.join(ENGINES)}"
            )
    return engines


def resolve_engine(engine: str = DEFAULT_ENGINE) -> str:
    """The engine that `engine` stands for: the first available of AUTO_ORDER for "auto"."""
    if engine == "auto":
        return next(name for name in AUTO_ORDER if engine_available(name))
    engine_available(engine)  # raises for an unknown name
    return engine


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def default_threads() -> int:
    """All CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_images(images, channels: int, multiple: int = 8) -> np.ndarray:
    """Return `images` as float32 (B, H, W, C), H and W multiples of `multiple`, or raise a
    UserError."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim != 4 or array.shape[-1] != channels:
        raise UserError(
            f"images must be a (B, H, W, {channels}) array, got shape {tuple(array.shape)}"
        )
    height, width = array.shape[1:3]
    if height < multiple or width < multiple or height % multiple or width % multiple:
        raise UserError(
            f"image height and width must be multiples of {multiple} (got {height} x {width}); "
            "pad them first"
        )
    return np.ascontiguousarray(array)


class Predictor:
    """`predict(images)`: float32 (B, H, W, C) in [0, 1] -> float32 (B, H, W, 1) probabilities.

    `multiple`: what H and W must be multiples of (`models.common.input_multiple`: 16 for U-Net,
    8 for the others); `inference.segment` pads to it."""

    name = "base"

    def __init__(self, model, channels: int):
        from models.common import input_multiple

        self.model = model
        self.channels = channels
        self.multiple = input_multiple(model)

    def predict(self, images) -> np.ndarray:
        images = check_images(images, self.channels, self.multiple)
        return np.asarray(self._run(images), dtype=np.float32)

    def _run(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Predictor {self.name}>"


class KerasPredictor(Predictor):
    """The plain Keras path: `model.predict_on_batch` (a compiled predict step, no XLA)."""

    name = "keras"

    def _run(self, images):
        return self.model.predict_on_batch(images)


class XlaPredictor(Predictor):
    """The Keras model compiled by XLA (`tf.function(jit_compile=True)`); one compilation per shape."""

    name = "xla"

    def __init__(self, model, channels):
        import tensorflow as tf

        super().__init__(model, channels)
        self._function = tf.function(lambda x: model(x, training=False), jit_compile=True)

    def _run(self, images):
        return self._function(images).numpy()


class OnnxRuntimePredictor(Predictor):
    """The channels-first ONNX graph in ONNX Runtime (all graph optimizations, dynamic shapes)."""

    name = "onnxruntime"

    def __init__(self, model, channels, onnx_bytes: bytes, threads: int):
        import onnxruntime as ort

        super().__init__(model, channels)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle workers sleep instead of spinning: on a busy machine spinning doubled the median.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name

    def _run(self, images):
        return self.session.run(None, {self._input: images})[0]


class OpenVinoPredictor(Predictor):
    """The channels-first ONNX graph compiled by OpenVINO for the CPU, once per input shape (the
    last MAX_COMPILED_SHAPES kept)."""

    name = "openvino"

    def __init__(self, model, channels, onnx_bytes: bytes, threads: int):
        import openvino as ov

        super().__init__(model, channels)
        self.core = ov.Core()
        self.network = self.core.read_model(onnx_bytes)
        self.config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": "f32",  # no bf16/f16 shortcuts: same predictions
        }
        self._requests = {}

    def _request(self, shape):
        if shape not in self._requests:
            network = self.network.clone()
            network.reshape({0: list(shape)})
            compiled = self.core.compile_model(network, "CPU", self.config)
            if len(self._requests) >= MAX_COMPILED_SHAPES:
                self._requests.pop(next(iter(self._requests)))
            self._requests[shape] = compiled.create_infer_request()
        self._requests[shape] = self._requests.pop(shape)  # now the most recently used
        return self._requests[shape]

    def _run(self, images):
        request = self._request(images.shape)
        request.infer({0: images}, share_inputs=True)  # contiguous, read during the call only
        return request.get_output_tensor(0).data.copy()


def _load_keras(model_or_path):
    if isinstance(model_or_path, str | os.PathLike):
        from models import load_model

        return load_model(Path(model_or_path))
    return model_or_path


def _build(engine: str, model, threads: int) -> Predictor:
    channels = int(model.inputs[0].shape[-1])
    if engine == "keras":
        return KerasPredictor(model, channels)
    if engine == "xla":
        return XlaPredictor(model, channels)
    from inference.onnx_graph import build_onnx_model

    onnx_bytes = build_onnx_model(model).SerializeToString()
    if engine == "onnxruntime":
        return OnnxRuntimePredictor(model, channels, onnx_bytes, threads)
    return OpenVinoPredictor(model, channels, onnx_bytes, threads)


def parity_error(predictor: Predictor, reference: Predictor, shape=PROBE_SHAPE, seed=0) -> float:
    """Max abs difference of the two predictors' probabilities on one random image."""
    rng = np.random.default_rng(seed)
    images = rng.random((*shape, predictor.channels), dtype=np.float32)
    return float(np.max(np.abs(predictor.predict(images) - reference.predict(images))))


def make_predictor(model_or_path, engine: str = DEFAULT_ENGINE, threads: int | None = None):
    """A Predictor for a keras.Model or a `.keras` file.

    engine: "auto" (default) or one of ENGINES. An explicit engine that cannot
    run here raises a UserError; "auto" falls back along AUTO_ORDER and only
    keeps an engine whose probabilities match the Keras path within
    AUTO_TOLERANCE on a random 64 x 64 probe. threads: CPU threads for ONNX
    Runtime and OpenVINO (default: all cores); TensorFlow keeps its own pool.
    """
    if engine != "auto" and engine not in ENGINES:
        raise UserError(f"unknown engine '{engine}'; choose one of: auto, {', '.join(ENGINES)}")
    model = _load_keras(model_or_path)
    threads = threads or default_threads()
    if engine != "auto":
        if not engine_available(engine):
            raise UserError(
                f"engine '{engine}' is not available here; available: {', '.join(available_engines())}"
            )
        return _build(engine, model, threads)

    reference = _build("keras", model, threads)
    for name in AUTO_ORDER:
        if name == "keras":
            return reference
        if not engine_available(name):
            continue
        try:
            predictor = _build(name, model, threads)
            error = parity_error(predictor, reference)
        except Exception as exc:  # an engine that cannot take this model: try the next one
            print(
                f"warning: engine {name} failed ({exc.__class__.__name__}: {exc}); trying the next one",
                file=sys.stderr,
            )
            continue
        if error <= AUTO_TOLERANCE:
            return predictor
        print(
            f"warning: engine {name} differs from keras by {error:.2e}; trying the next one",
            file=sys.stderr,
        )
    return reference

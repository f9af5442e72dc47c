"""Choose the Keras backend before Keras is imported (it cannot change afterwards)."""

from __future__ import annotations

import os
import sys

from utils.errors import UserError

BACKENDS = ("tensorflow", "jax", "torch")


def select_backend(backend: str | None, distribute: bool = False) -> str:
    """Set KERAS_BACKEND (flag > environment > tensorflow) and prepare devices for --distribute.

    On a machine without GPUs, --distribute splits the CPU into two logical
    devices so the data-parallel path can be exercised (and tested) anywhere.
    """
    chosen = backend or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if chosen not in BACKENDS:
        raise UserError(f"unknown backend '{chosen}'; choose one of: {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != chosen:
            raise UserError(
                f"Keras was already imported with the {keras.backend.backend()} backend"
            )
        return chosen
    os.environ["KERAS_BACKEND"] = chosen
    if distribute and chosen == "jax":
        # Only affects the CPU platform: two host devices where there is no accelerator.
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=2".strip()
    if chosen == "tensorflow":
        # TensorFlow reads this when it is imported. It turns its oneDNN kernels on only for
        # some CPUs (not on this project's AMD machines), and without them a convolution's
        # backward pass is several times slower (benchmarks/training.py); a value the user
        # set is kept. With --distribute they stay off: MirroredStrategy hands a replica an
        # empty batch at the end of an epoch, and the oneDNN convolution returns a wrong
        # shape for an empty batch.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0" if distribute else "1")
        from utils.cli import import_tensorflow_quietly

        import_tensorflow_quietly()
    if distribute and chosen == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu,
                [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
            )
    return chosen

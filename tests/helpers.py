"""Helpers for tests that run a command or a backend in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The DRIVE weights the project ships (weights/README.md); their eval.json holds their published scores.
DRIVE_WEIGHTS = ROOT / "weights" / "sa_unetv2_drive_interim.keras"
# train.py flags for a tiny demo run: 3 synthetic training images of 64 x 64 -> 39 augmented
# (1 source held out for validation), 2 test images, batch 4.
TINY = [
    "--set", "dataset.n_train=3",
    "--set", "dataset.n_test=2",
    "--set", "dataset.size=64",
    "--set", "train.batch_size=4",
]  # fmt: skip


def run_python(
    args: list[str], backend: str | None = None, timeout: int = 600, env: dict | None = None
):
    """Run `python ARGS` from the repository root; returns CompletedProcess with text output."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT)
    if backend:
        full_env["KERAS_BACKEND"] = backend
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def backend_available(backend: str) -> bool:
    """True if the backend's framework imports in this environment."""
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def run_on_backend(script: str, backend: str, expect: str = "ok") -> subprocess.CompletedProcess:
    """Run `python -c script` with KERAS_BACKEND=backend and require exit 0 and `expect` in its output.

    Skips the calling test where the backend's framework is not installed.
    """
    import pytest

    if not backend_available(backend):
        pytest.skip(f"{backend} is not installed")
    result = run_python(["-c", script], backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    assert expect in result.stdout, result.stdout[-3000:]
    return result


# The GPU machine has JAX, TensorBoard, ONNX Runtime and matplotlib but no TensorFlow or
# OpenVINO; matplotlib is blocked too, to exercise training without it.
# `python -c GPU_MACHINE ARGS` runs `train.py ARGS` there (with KERAS_BACKEND=jax).
GPU_MACHINE = """
import runpy, sys
sys.path.insert(0, ".")
for name in ("tensorflow", "openvino", "matplotlib"):
    sys.modules[name] = None  # any import of these now fails
sys.argv = ["train.py"] + sys.argv[1:]
runpy.run_path("train.py", run_name="__main__")
"""

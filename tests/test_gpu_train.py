"""tools/gpu/train.sh rehearsed on the CPU: any model, JAX backend, resumes by itself, checkpoints in parts."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY, backend_available


def train_sh(gpu_root: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """`bash tools/gpu/train.sh ARGS` with its folders under the test's tmp_path (no wheels there)."""
    env = dict(os.environ)
    env.update(
        GPU_ROOT=str(gpu_root),
        OUT=str(out),
        PYTHON=sys.executable,
        PART_MB="1",
        PYTHONPATH=str(ROOT),
    )
    return subprocess.run(
        ["bash", "tools/gpu/train.sh", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_unknown_model_is_one_sentence(tmp_path):
    result = train_sh(tmp_path / "gpu", tmp_path / "out", "demo", "resnet")
    assert result.returncode == 2
    assert "unknown model 'resnet'" in result.stderr + result.stdout


@pytest.mark.slow
def test_trains_a_baseline_resumes_and_brings_back_parts(tmp_path):
    if not backend_available("jax"):
        pytest.skip("jax is not installed")
    gpu_root = tmp_path / "gpu"
    first = train_sh(gpu_root, tmp_path / "out1", "demo", "sa_unet", "--epochs", "1", *TINY)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    run = gpu_root / "runs" / "demo_sa_unet"
    out = tmp_path / "out1"
    for name in ("history.csv", "config.yaml", "state.json", "metrics.json", "train.log"):
        assert (out / name).is_file(), name
    assert "name: sa_unet" in (out / "config.yaml").read_text()
    # best.keras (6.7 MB with Adam's slots) is over PART_MB: weights only, in 1 MiB parts.
    parts = sorted(out.glob("best.keras.part*"))
    assert len(parts) >= 2 and not (out / "best.keras").exists()
    assert not (out / "last.keras").exists() and "last.keras" in first.stdout
    joined = tmp_path / "best.keras"
    joined.write_bytes(b"".join(part.read_bytes() for part in parts))
    from models import load_model

    assert load_model(joined).count_params() == 537_299

    # The same command continues the run in its folder.
    second = train_sh(gpu_root, tmp_path / "out2", "demo", "sa_unet", "--epochs", "2", *TINY)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"resuming {run} at epoch 2 of 2" in second.stdout
    with (run / "history.csv").open() as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2"]

    # An ended run is not trained again: its files come back as they are.
    third = train_sh(gpu_root, tmp_path / "out3", "demo", "sa_unet", *TINY)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert "has ended" in third.stdout and "resuming" not in third.stdout
    assert (tmp_path / "out3" / "history.csv").read_text() == (run / "history.csv").read_text()

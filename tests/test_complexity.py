"""complexity.py: the paper's parameter and GFLOP figures, JSON output, bad input."""

from __future__ import annotations

import json

import pytest

from tests.helpers import backend_available, run_python

EXPECTED = {
    "sa_unetv2": (260_521, 21.190),
    "sa_unet": (537_299, 26.542),
    "unet": (8_636_385, 137.095),
    "attention_unet": (8_649_828, 425.052),
    "sa_unetv2_av": (260_555, 21.213),
}


def _json_rows(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return {row["model"]: row for row in json.loads(result.stdout)}


@pytest.mark.slow
def test_all_models_at_592_match_the_paper():
    rows = _json_rows(run_python(["complexity.py", "--all", "--json"]))
    assert set(rows) == set(EXPECTED)
    for name, (params, gflops) in EXPECTED.items():
        row = rows[name]
        assert row["input_size"] == 592
        assert row["params"] == params
        assert row["trainable_params"] == params
        assert row["weight_bytes_fp32"] == 4 * params
        assert row["gflops"] == pytest.approx(gflops, abs=1e-9)
    # keras-flops' Max rule adds 74*74*64 - 74*74 comparisons to SA-UNetv2 (21.189 -> 21.190).
    assert rows["sa_unetv2"]["flops"] == 21_189_509_932
    # Attention U-Net: the SiLU after each transposed convolution counts (424.97 with a ReLU).
    assert rows["attention_unet"]["flops"] == 425_051_969_680


@pytest.mark.slow
def test_table_output():
    result = run_python(["complexity.py", "--model", "sa_unetv2", "--input-size", "64"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| sa_unetv2 | 64 x 64 x 3 | 260,521 |" in result.stdout


@pytest.mark.slow
def test_same_parameter_counts_under_jax():
    if not backend_available("jax"):
        pytest.skip("jax is not installed")
    rows = _json_rows(run_python(["complexity.py", "--all", "--json"], backend="jax"))
    for name, (params, _) in EXPECTED.items():
        assert rows[name]["params"] == params
        assert rows[name]["backend"] == "jax"
        assert rows[name]["gflops"] is None


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--model", "resnet"], "sa_unetv2"),
        (["--input-size", "590"], "multiple of 8"),
    ],
)
def test_bad_input_exit_status_2(args, needle):
    result = run_python(["complexity.py", *args])
    assert result.returncode == 2
    assert needle in result.stderr

"""Shipped weights (weights/*.keras): each loads, matches its config, and reproduces its
recorded per-image results on real test images when the data is present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "weights").glob("*.keras"))
N_IMAGES = 3  # real test images re-predicted per weights file (CPU time)


# Re-predicting the four-camera weights' images means reading four datasets: slow.
SLOW_TO_REPRODUCE = {"sa_unetv2_fundus"}


def _companions(path: Path):
    config, record = path.with_suffix(".yaml"), path.with_suffix(".eval.json")
    for companion in (
        config,
        record,
        *(path.with_suffix(s) for s in (".history.csv", ".curves.png")),
    ):
        assert companion.is_file(), f"{path.name} has no {companion.name} beside it"
    return path, config, json.loads(record.read_text(encoding="utf-8"))


@pytest.fixture(params=SHIPPED, ids=[p.stem for p in SHIPPED])
def shipped(request):
    return _companions(request.param)


def test_weights_load_with_their_config(shipped):
    from models import build_model, load_model
    from training.config import resolve_run_config

    path, config, record = shipped
    cfg = resolve_run_config(config)
    assert cfg["dataset"]["data_root"] is None, "a shipped config must not name a local folder"
    model = load_model(path)
    assert path.stat().st_size < 4 * 2**20
    m = cfg["model"]
    reference = build_model(
        m["name"],
        start_neurons=m["start_neurons"],
        dropblock_rate=m["dropblock_rate"],
        dropblock_size=m["dropblock_size"],
        gn_groups=m["gn_groups"],
    )
    assert model.count_params() == reference.count_params()
    assert record["n_images"] == len(record["per_image"]) > 0


@pytest.mark.parametrize(
    "weights",
    [
        pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW_TO_REPRODUCE else [])
        for p in SHIPPED
    ],
)
def test_weights_reproduce_their_recorded_results(weights, real_data_root):
    from data import load_dataset
    from data.av import vote_by_segment
    from data.geometry import pad_shape_for
    from data.scale import image_factor, parse_scale, prediction_factors, weights_fov_band
    from inference.engines import make_predictor
    from inference.segment import segment
    from metrics import av_segmentation_scores, image_metrics
    from models import is_av_model, load_model
    from training.config import resolve_run_config

    path, config, record = _companions(weights)
    cfg = resolve_run_config(config, data_root=str(real_data_root))
    dataset = load_dataset(cfg["dataset"])
    model = load_model(path)
    predictor = make_predictor(model)
    threshold = cfg["evaluate"]["threshold"]
    # An artery/vein network: its recorded artery and vein F1 (protocol (a), inside the FOV).
    av = is_av_model(model)
    recorded = {row["name"]: row for row in (record["av"] if av else record)["per_image"]}
    # Each photograph at the factors evaluate.py used (weights trained at another FOV diameter
    # than their test photographs', e.g. HRF-AV's at 816 px, predict them shrunk and fused).
    scaling = record.get("scaling") or {"scale": "1", "factors": {}}
    scale = parse_scale(scaling["scale"])
    band = weights_fov_band(path, scale)
    for sample in dataset.test[:N_IMAGES]:
        factor = image_factor(scale, sample.mask, band, sample.name)
        if sample.name in scaling["factors"]:
            assert np.isclose(factor, scaling["factors"][sample.name], atol=1e-4), sample.name
        pad_shape = pad_shape_for(dataset.name, sample.image.shape[:2])
        prob = segment(predictor, sample.image, pad_shape, prediction_factors(scale, factor, band))
        if av:
            if record.get("av_vote") == "segments":  # each vessel segment typed as a whole
                prob = vote_by_segment(prob, threshold)
            got = av_segmentation_scores(prob, sample.label, sample.mask, threshold)
            expected, keys = recorded[sample.name]["segmentation"], ("f1_artery", "f1_vein")
        else:
            got = image_metrics(prob, sample.label, threshold=threshold)
            expected, keys = recorded[sample.name]["whole_image"], ("f1", "acc", "auc")
        for key in keys:
            assert np.isclose(got[key], expected[key], atol=1e-3), (sample.name, key)


def _random_weights_run(run: Path, config: str, model: str, history: str) -> dict:
    """A run folder as train.py leaves it, of a seeded random-weights `model` on the synthetic
    set of configs/`config` (2 test images); returns its config."""
    import keras

    from models import build_model
    from training.config import resolve_run_config
    from utils.config import save_config

    run.mkdir()
    cfg = resolve_run_config(ROOT / "configs" / config)
    cfg["dataset"]["n_test"] = 2
    save_config(cfg, run / "config.yaml")
    (run / "history.csv").write_text(history, encoding="utf-8")
    keras.utils.set_random_seed(0)
    build_model(model).save(run / "best.keras")
    return cfg


@pytest.mark.slow
def test_ship_weights_writes_a_loadable_evaluated_set(tmp_path):
    """tools/ship_weights.py on a run folder (a random-weights demo model, synthetic data)."""
    from models import load_model
    from tests.helpers import run_python
    from training.config import resolve_run_config
    from utils.config import save_config

    run, out = tmp_path / "run", tmp_path / "weights"
    cfg = _random_weights_run(run, "demo.yaml", "sa_unetv2", "epoch,loss\n1,0.7\n")

    args = ["tools/ship_weights.py", "--run", str(run), "--stem", "demo_probe", "--out", str(out)]
    result = run_python(args)
    assert result.returncode == 0, result.stderr[-2000:]
    names = sorted(p.name for p in out.iterdir())
    expected = ("curves.png", "eval.json", "history.csv", "keras", "yaml")
    assert names == [f"demo_probe.{s}" for s in expected]
    assert (out / "demo_probe.curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert resolve_run_config(out / "demo_probe.yaml")["dataset"]["data_root"] is None
    assert load_model(out / "demo_probe.keras").count_params() == 260_521
    record = json.loads((out / "demo_probe.eval.json").read_text(encoding="utf-8"))
    assert record["n_images"] == 2 and len(record["per_image"]) == 2
    # The threshold chosen on the run's validation images (never the test images) is in the yaml.
    from data.prepare import prepare_training_data

    choice = record["threshold_choice"]
    shipped_cfg = resolve_run_config(out / "demo_probe.yaml")
    assert shipped_cfg["evaluate"]["chosen_threshold"] == choice["threshold"]
    assert shipped_cfg["evaluate"]["threshold"] == 0.5  # evaluation keeps the paper's protocol
    assert 0.05 <= choice["threshold"] <= 0.95 and choice["val_f1"] >= choice["val_f1_at_0.5"]
    assert choice["val_images"] == len(prepare_training_data(cfg["dataset"], progress=False).x_val)
    assert f"{choice['threshold']:.2f} (F1 {choice['val_f1']:.4f}" in result.stdout
    assert record["checkpoint"] == {"file": "best.keras", "epoch": None}  # no monitor logged

    # A run validated on whole photographs has its threshold chosen on them, inside their FOV.
    cfg["train"]["validation"] = "photographs"
    save_config(cfg, run / "config.yaml")
    result = run_python([*args[:-1], str(tmp_path / "photographs")])
    assert result.returncode == 0, result.stderr[-2000:]
    choice = json.loads((tmp_path / "photographs" / "demo_probe.eval.json").read_text())
    photos = prepare_training_data(cfg["dataset"], progress=False).val_photographs
    assert choice["threshold_choice"]["val_images"] == len(photos) > 0

    # --calibrate folds that threshold into the output bias and chooses again on the same images.
    calibrated = tmp_path / "calibrated"
    result = run_python([*args[:-1], str(calibrated), "--calibrate"])
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((calibrated / "demo_probe.eval.json").read_text())["threshold_choice"]
    folded = record["folded"]
    assert folded["threshold"] == choice["threshold_choice"]["threshold"]
    assert np.isclose(folded["bias_shift"], -np.log(folded["threshold"] / (1 - folded["threshold"])))
    bias = [load_model(p).get_layer("head_conv").get_weights()[1][0] for p in
            (tmp_path / "photographs" / "demo_probe.keras", calibrated / "demo_probe.keras")]
    assert np.isclose(bias[1] - bias[0], folded["bias_shift"], atol=1e-5)
    assert record["threshold"] == 0.5 and record["val_f1"] == record["val_f1_at_0.5"]
    assert record["val_f1"] == pytest.approx(folded["val_f1"], abs=1e-4)
    shipped_eval = resolve_run_config(calibrated / "demo_probe.yaml")["evaluate"]
    assert shipped_eval["chosen_threshold"] == 0.5
    assert shipped_eval["folded_threshold"] == folded["threshold"]
    evaluated = json.loads((calibrated / "demo_probe.eval.json").read_text())
    assert evaluated["folded_threshold"] == folded["threshold"]
    assert json.loads((out / "demo_probe.eval.json").read_text())["folded_threshold"] is None
    assert "folded the threshold" in result.stdout

    # --no-eval: the same threshold choice, no test-split evaluation.
    result = run_python([*args[:-1], str(tmp_path / "no_eval"), "--no-eval"])
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "no_eval" / "demo_probe.eval.json").read_text())
    assert "per_image" not in record and "fov" not in record
    assert record["threshold_choice"] == choice["threshold_choice"]

    missing = run_python(["tools/ship_weights.py", "--run", str(tmp_path), "--stem", "x"])
    assert missing.returncode == 2 and "must be a folder train.py wrote" in missing.stderr


@pytest.mark.slow
def test_ship_weights_of_an_artery_vein_network(tmp_path):
    """An A/V run ships at evaluate.threshold with evaluate.py's A/V metrics; no --calibrate."""
    from tests.helpers import run_python
    from training.config import resolve_run_config

    run, out = tmp_path / "run", tmp_path / "weights"
    history = "epoch,loss,val_f1\n1,0.7,0.2\n2,0.6,0.3\n"
    _random_weights_run(run, "av_demo.yaml", "sa_unetv2_av", history)

    args = ["tools/ship_weights.py", "--run", str(run), "--stem", "av_probe", "--out", str(out)]
    refused = run_python([*args, "--calibrate"])
    assert refused.returncode == 2 and "artery/vein network keeps" in refused.stderr
    assert not out.exists() or not any(out.iterdir())
    result = run_python(args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "classes at evaluate.threshold 0.50" in result.stdout
    shipped = resolve_run_config(out / "av_probe.yaml")
    assert shipped["model"]["name"] == "sa_unetv2_av" and shipped["dataset"]["data_root"] is None
    assert shipped["evaluate"]["chosen_threshold"] is None  # predict.py --av then uses 0.5
    record = json.loads((out / "av_probe.eval.json").read_text(encoding="utf-8"))
    assert "threshold_choice" not in record
    assert record["av"]["n_images"] == 2 and len(record["av"]["per_image"]) == 2
    assert {"f1_artery", "f1_vein"} <= set(record["av"]["per_image"][0]["segmentation"])
    assert record["checkpoint"] == {"file": "best.keras", "epoch": 2}

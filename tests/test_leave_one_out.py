"""benchmarks/leave_one_out.py: the leave-one-camera-out protocol's steps, starting weights and summary."""

import json

import pytest

from benchmarks import leave_one_out as loo
from utils.errors import UserError


def test_prediction_variants():
    variants = loo.prediction_variants(["s538=--scale 0.585", "tta=--tta"])
    assert variants == {
        "auto": ["--scale", "auto"],
        "at0.5": ["--scale", "auto", "--threshold", "0.5"],
        "s538": ["--scale", "0.585"],
        "tta": ["--tta"],
    }
    for bad in ("noequals", "a b=--tta", "auto=--tta"):
        with pytest.raises(UserError, match="--variant"):
            loo.prediction_variants([bad])


def test_datasets_seen_reads_the_yaml_beside_the_weights(tmp_path):
    assert loo.datasets_seen("weights/sa_unetv2_drive.keras") == {"drive"}
    assert loo.datasets_seen("weights/sa_unetv2_stare_fold5.keras") == {"stare"}
    assert loo.datasets_seen("weights/sa_unetv2_fundus.keras") == {
        "drive", "stare", "chase_db1", "hrf"
    }  # fmt: skip
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(
        "dataset:\n  name: fundus\n  datasets: [drive, hrf]\n", encoding="utf-8"
    )
    assert loo.datasets_seen(run / "best.keras") == {"drive", "hrf"}
    assert loo.datasets_seen(tmp_path / "lone.keras") is None


def test_starting_weights_never_saw_the_camera_left_out(tmp_path):
    drive = "weights/sa_unetv2_drive.keras"
    assert loo.starting_weights("chase_db1", drive, loo.DEFAULT_INIT_FOR) == drive
    assert loo.starting_weights("drive", drive, loo.DEFAULT_INIT_FOR) == (
        "weights/sa_unetv2_stare_fold5.keras"
    )
    assert loo.starting_weights("hrf", None, {}) is None
    with pytest.raises(UserError, match="--init-for drive=PATH"):
        loo.starting_weights("drive", drive, {})
    with pytest.raises(UserError, match="saw drive"):
        loo.starting_weights("drive", drive, {"drive": "weights/sa_unetv2_fundus.keras"})
    with pytest.raises(UserError, match="record no datasets"):
        loo.starting_weights("stare", str(tmp_path / "lone.keras"), {})


def _metrics(folder, f1, n, second=None):
    folder.mkdir(parents=True)
    metrics = {"fov": {"mean": {"f1": f1}}, "n_images": n}
    if second is not None:  # evaluate.py's second observer, against the first
        metrics["second_observer"] = {"fov": {"mean": {"f1": second}}}
    (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")


def test_summary_mean_over_the_datasets_left_out(tmp_path):
    variants = loo.prediction_variants([])
    _metrics(tmp_path / "chase_db1" / "eval" / "auto", 0.75, 8, second=0.7983)
    _metrics(tmp_path / "chase_db1" / "eval" / "at0.5", 0.74, 8, second=0.7983)
    _metrics(tmp_path / "hrf" / "eval" / "auto", 0.79, 27)
    weights = tmp_path / "hrf" / "weights"
    weights.mkdir(parents=True)
    (weights / "r_no_hrf.eval.json").write_text(
        json.dumps({"threshold_choice": {"threshold": 0.7}, "checkpoint": {"epoch": 5}}),
        encoding="utf-8",
    )
    summary = loo.summarise(tmp_path, ["chase_db1", "hrf"], variants)
    assert summary["mean"]["auto"] == pytest.approx(0.77)
    assert summary["mean"]["at0.5"] is None  # HRF's at 0.5 is not there yet
    assert summary["rows"]["hrf"]["threshold"] == 0.7 and summary["rows"]["hrf"]["epoch"] == 5
    text = loo.summary_markdown("r", summary, variants, 6)
    assert "| chase_db1 | 0.7500 (8) | 0.7400 (8) | - | - | 0.7983 |" in text
    assert "| hrf | 0.7900 (27) | - | 0.70 | 5 | - |" in text  # HRF has one observer
    assert "| **mean** | 0.7700 (2) | - | - | - | - |" in text


def test_dry_run_prints_each_step(tmp_path, capsys):
    code = loo.main(
        ["--config", "configs/fundus.yaml", "--name", "r", "--data-root", str(tmp_path),
         "--out", str(tmp_path / "out"), "--left-out", "drive", "--epochs", "2",
         "--set", "train.camera_augment=0.5", "--variant", "s=--scale 0.5", "--dry-run"]
    )  # fmt: skip
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("+ ")]
    train, ship = lines[0], lines[1]
    assert "train.py --config configs/fundus.yaml --set train.camera_augment=0.5" in train
    assert "'dataset.datasets=[stare,chase_db1,hrf]' --epochs 2" in train
    assert "--set train.init_weights=weights/sa_unetv2_stare_fold5.keras" in train
    assert "--no-eval" in ship and "--stem r_no_drive" in ship
    predicts = [line for line in lines if " predict.py " in line]
    evaluates = [line for line in lines if " evaluate.py " in line]
    assert len(predicts) == len(evaluates) == 3
    assert "--threshold 0.5" in predicts[1] and "--scale 0.5" in predicts[2]
    assert all("--config configs/drive.yaml" in line for line in evaluates)
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_refuses_what_is_not_a_leave_one_out(tmp_path):
    with pytest.raises(UserError, match="not a fundus recipe"):
        loo.main(["--config", "configs/drive.yaml", "--name", "r", "--data-root", str(tmp_path)])
    with pytest.raises(UserError, match="hrf is not among"):
        loo.main(
            ["--config", "configs/fundus.yaml", "--name", "r", "--data-root", str(tmp_path),
             "--set", "dataset.datasets=[drive,stare]", "--left-out", "hrf", "--dry-run"]
        )  # fmt: skip


@pytest.mark.realdata
def test_test_photographs_are_the_test_split(real_data_root):
    """The files predict.py gets are the test images evaluate.py scores, by name."""
    from data.readers import photograph_files
    from data.splits import fixed_split

    counts = {"drive": 20, "stare": 20, "chase_db1": 8, "hrf": 30}
    for name, count in counts.items():
        files = photograph_files(name, real_data_root)
        assert len(files) == count, name
        for stem, tree, rel in files:
            assert rel.rsplit("/", 1)[-1].startswith(stem) and tree.read(rel)[:2]
    assert [f[0] for f in photograph_files("chase_db1", real_data_root)] == fixed_split(
        "chase_db1"
    )[1]
    drive = [f[0] for f in photograph_files("drive", real_data_root)]
    assert drive[0] == "01_test" and drive[-1] == "20_test"
    assert len(photograph_files("stare", real_data_root, fold=5)) == 4
    # The training split: the rest of each dataset's photographs, none shared with the test split.
    counts = {"drive": 20, "stare": 0, "chase_db1": 20, "hrf": 15}
    for name, count in counts.items():
        train = [f[0] for f in photograph_files(name, real_data_root, split="train")]
        assert len(train) == count, name
        assert not set(train) & {f[0] for f in photograph_files(name, real_data_root)}, name
    drive = [f[0] for f in photograph_files("drive", real_data_root, split="train")]
    assert drive[0] == "21_training" and drive[-1] == "40_training"
    assert len(photograph_files("stare", real_data_root, fold=5, split="train")) == 16
    with pytest.raises(UserError, match="split must be test or train"):
        photograph_files("drive", real_data_root, split="val")


def test_shipped_weights_skip_training_and_scored_variants_skip_prediction(tmp_path, capsys):
    folder = tmp_path / "out" / "r" / "hrf"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "r_no_hrf.eval.json").write_text(
        json.dumps({"threshold_choice": {"threshold": 0.6}, "checkpoint": {"epoch": 3}})
    )
    _metrics(folder / "eval" / "auto", 0.79, 27)
    argv = ["--config", "configs/fundus.yaml", "--name", "r", "--data-root", str(tmp_path),
            "--out", str(tmp_path / "out"), "--left-out", "hrf", "--dry-run"]  # fmt: skip
    assert loo.main(argv) == 0
    out = capsys.readouterr().out
    steps = [line for line in out.splitlines() if line.startswith("+ ")]
    assert not any(" train.py " in s or " ship_weights.py " in s for s in steps)
    assert len(steps) == 2 and "--threshold 0.5" in steps[0]  # only at0.5 is left to score
    assert "| hrf | 0.7900 (27) | - | 0.60 | 3 |" in out


def test_record_keeps_the_small_results_and_restores_them(tmp_path):
    out, record = tmp_path / "runs" / "r", tmp_path / "record" / "r"
    (out / "hrf" / "train").mkdir(parents=True)
    (out / "hrf" / "train" / "last.keras").write_bytes(b"optimizer state: not recorded")
    (out / "hrf" / "weights").mkdir()
    for name in ("r_no_hrf.keras", "r_no_hrf.yaml", "r_no_hrf.eval.json", "r_no_hrf.curves.png"):
        (out / "hrf" / "weights" / name).write_bytes(name.encode())
    _metrics(out / "hrf" / "eval" / "auto", 0.79, 27)
    (out / "summary.md").write_text("old", encoding="utf-8")
    copied = loo.copy_missing(out, record)
    assert sorted(p.relative_to(record).as_posix() for p in copied) == [
        "hrf/eval/auto/metrics.json", "hrf/weights/r_no_hrf.eval.json",
        "hrf/weights/r_no_hrf.keras", "hrf/weights/r_no_hrf.yaml", "summary.md",
    ]  # fmt: skip
    assert loo.copy_missing(out, record) == []  # nothing new
    (out / "summary.md").write_text("new", encoding="utf-8")
    assert loo.copy_missing(out, record) == [record / "summary.md"]  # the summary is replaced
    fresh = tmp_path / "fresh" / "r"
    assert len(loo.copy_missing(record, fresh)) == 5
    assert (fresh / "hrf" / "weights" / "r_no_hrf.keras").read_bytes() == b"r_no_hrf.keras"


def test_a_name_keeps_its_recipe(tmp_path):
    recipe = {"config": "configs/fundus.yaml", "set": [], "epochs": 6, "init_for": {}}
    loo.check_recipe(tmp_path, recipe)
    loo.check_recipe(tmp_path, dict(recipe))  # the same: fine
    with pytest.raises(UserError, match="epochs, set differ"):
        loo.check_recipe(tmp_path, {**recipe, "epochs": 4, "set": ["train.camera_augment=0.5"]})


def test_the_summary_covers_every_dataset_scored_so_far(tmp_path, capsys):
    out = tmp_path / "out" / "r"
    _metrics(out / "chase_db1" / "eval" / "auto", 0.72, 8)
    _metrics(out / "hrf" / "eval" / "auto", 0.80, 27)
    argv = ["--config", "configs/fundus.yaml", "--name", "r", "--data-root", str(tmp_path),
            "--out", str(tmp_path / "out"), "--left-out", "stare", "--dry-run"]  # fmt: skip
    assert loo.main(argv) == 0
    text = capsys.readouterr().out
    assert "| chase_db1 | 0.7200 (8) |" in text and "| hrf | 0.8000 (27) |" in text
    assert "| **mean** | 0.7600 (2) |" in text


def test_all_photographs_weigh_test_and_training_splits_by_their_number(tmp_path, capsys):
    variants = loo.prediction_variants(["vessels=--scale vessels"])
    _metrics(tmp_path / "chase_db1" / "eval" / "vessels", 0.76, 8)
    _metrics(tmp_path / "chase_db1" / "eval_train" / "vessels", 0.79, 20)
    _metrics(tmp_path / "stare" / "eval" / "vessels", 0.82, 20)
    _metrics(tmp_path / "hrf" / "eval" / "vessels", 0.80, 27)  # its training split not yet scored
    summary = loo.summarise(tmp_path, ["chase_db1", "stare"], variants, ["vessels"])
    chase = summary["rows"]["chase_db1"]["vessels, all"]
    assert chase["n"] == 28 and chase["f1"] == pytest.approx((0.76 * 8 + 0.79 * 20) / 28)
    assert summary["rows"]["stare"]["vessels, all"] == {"f1": 0.82, "n": 20}  # all 20 are test
    assert summary["mean"]["vessels, all"] == pytest.approx((chase["f1"] + 0.82) / 2)
    with_hrf = loo.summarise(tmp_path, ["chase_db1", "hrf"], variants, ["vessels"])
    assert (
        with_hrf["rows"]["hrf"]["vessels, all"] is None and with_hrf["mean"]["vessels, all"] is None
    )
    text = loo.summary_markdown("r", summary, variants, 6, ["vessels"])
    assert "| vessels, all |" in text and f"{chase['f1']:.4f} (28)" in text

    # The steps: predict.py and evaluate.py --split train on the training photographs, not STARE's.
    folder = tmp_path / "out" / "r" / "chase_db1"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "r_no_chase_db1.eval.json").write_text(
        json.dumps({"threshold_choice": {"threshold": 0.6}, "checkpoint": {"epoch": 3}})
    )
    for variant in ("auto", "at0.5", "vessels"):
        _metrics(folder / "eval" / variant, 0.76, 8)
    argv = ["--config", "configs/fundus.yaml", "--name", "r", "--data-root", str(tmp_path),
            "--out", str(tmp_path / "out"), "--left-out", "chase_db1", "stare", "--dry-run",
            "--variant", "vessels=--scale vessels", "--all-photographs", "vessels"]  # fmt: skip
    assert loo.main(argv) == 0
    steps = [s for s in capsys.readouterr().out.splitlines() if s.startswith("+ ")]
    train_steps = [s for s in steps if "pred_train" in s]
    assert len(train_steps) == 2 and all("chase_db1" in s for s in train_steps)
    assert "--split train" in train_steps[1] and "--scale vessels" in train_steps[0]
    with pytest.raises(UserError, match="--all-photographs tta is not a variant"):
        loo.main([*argv, "--all-photographs", "tta"])

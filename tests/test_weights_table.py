"""tools/weights_table.py: which cells are scored, bold or left out; a table on fake data."""

from __future__ import annotations

import json

import pytest

from tools.weights_table import build_table, cell_role, row_name, trained_datasets


def _roles(weights_cfg):
    trained, fold = trained_datasets(weights_cfg)
    splits = ("drive", "stare_fold5", "stare_all", "chase_db1", "hrf")
    return {split: cell_role(split, trained, fold) for split in splits}


def test_cells_the_weights_were_trained_on_are_left_out():
    assert _roles({"dataset": {"name": "drive"}}) == {
        "drive": "own", "stare_fold5": "other", "stare_all": "other",
        "chase_db1": "other", "hrf": "other",
    }  # fmt: skip
    assert _roles({"dataset": {"name": "stare", "fold": 5}}) == {
        "drive": "other", "stare_fold5": "own", "stare_all": "trained on",
        "chase_db1": "other", "hrf": "other",
    }  # fmt: skip
    # fold 3's training photographs include fold 5's test photographs
    assert _roles({"dataset": {"name": "stare", "fold": 3}})["stare_fold5"] == "trained on"
    assert _roles({"dataset": {"name": "fundus", "fold": 5}}) == {
        "drive": "own", "stare_fold5": "own", "stare_all": "trained on",
        "chase_db1": "own", "hrf": "own",
    }  # fmt: skip
    assert set(_roles({}).values()) == {"other"}  # no config beside the weights


def test_rows_are_named_by_stem_or_run_folder(tmp_path):
    assert row_name(tmp_path / "weights" / "sa_unetv2_drive.keras") == "sa_unetv2_drive"
    assert row_name(tmp_path / "runs" / "fundus" / "best.keras") == "fundus/best"


@pytest.mark.slow
def test_table_on_fake_chase_and_hrf(tmp_path):
    """Two fake datasets, DRIVE absent: scored cells hold F1 in [0, 1] and their command, the
    weights' own dataset is bold, the missing one says so."""
    from models import build_model
    from tests.test_data_readers import _fake_chase_files, _fake_hrf_files, _write_folder

    data = tmp_path / "data"
    _write_folder(data / "CHASE_DB1", _fake_chase_files())
    _write_folder(data / "HRF", _fake_hrf_files())
    weights = tmp_path / "w" / "fake_chase.keras"
    weights.parent.mkdir()
    build_model("sa_unetv2").save(weights)
    weights.with_suffix(".yaml").write_text("dataset:\n  name: chase_db1\n")
    out = tmp_path / "table"
    said = []
    rows, table = build_table(
        [weights], ["drive", "chase_db1", "hrf"], str(data), out, scale=1, engine="keras",
        echo=said.append,
    )  # fmt: skip
    cells = rows[0]["cells"]
    assert cells["drive"]["missing"] == "no data" and "DRIVE" in cells["drive"]["reason"]
    for split, images in (("chase_db1", 8), ("hrf", 30)):
        assert 0.0 <= cells[split]["f1_fov"] <= 1.0 and cells[split]["images"] == images
    assert cells["chase_db1"]["command"] == (
        f"python evaluate.py --config configs/chase_db1.yaml --scale 1 --weights {weights} "
        "--data-root DIR"
    )
    row = table.splitlines()[2]
    assert row.startswith("| `fake_chase` | no data | **") and row.count("**") == 2
    assert json.loads((out / "table.json").read_text())["rows"][0]["stem"] == "fake_chase"
    assert (out / "table.md").read_text() == table and len(said) == 3

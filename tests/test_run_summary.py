"""training.run_summary and tools/run_summary.py on hand-made histories."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ROOT, run_python
from training.config import DEFAULT_CONFIG, merge
from training.run_folder import write_history
from training.run_summary import markdown, summarize
from utils.config import load_config, save_config
from utils.errors import UserError


def _config(epochs=150):
    cfg = merge(DEFAULT_CONFIG, load_config(ROOT / "configs" / "drive.yaml"))
    cfg["train"]["epochs"] = epochs
    return cfg


def _history(val_loss, val_accuracy, learning_rate):
    return [
        {
            "epoch": epoch,
            "accuracy": acc - 0.001,
            "loss": loss + 0.01,
            "val_accuracy": acc,
            "val_loss": loss,
            "learning_rate": lr,
        }
        for epoch, (loss, acc, lr) in enumerate(
            zip(val_loss, val_accuracy, learning_rate, strict=True), start=1
        )
    ]


def test_drops_kept_epoch_and_counters():
    # val_loss best at epoch 3 (0.2), then 12 epochs without improvement: the plateau halved
    # the rate after epoch 13 (10 epochs), and early stopping (20) has not come.
    val_loss = [0.5, 0.3, 0.2] + [0.25] * 12
    val_acc = [0.90, 0.93, 0.94, 0.95, 0.95] + [0.94] * 10  # first best at epoch 4
    lr = [1e-3] * 12 + [5e-4] * 3
    summary = summarize(_history(val_loss, val_acc, lr), _config())
    assert summary["epochs_done"] == 15 and summary["status"] == "not ended"
    assert summary["learning_rate"]["drops"] == [{"after_epoch": 13, "from": 1e-3, "to": 5e-4}]
    assert summary["kept"] == {
        "epoch": 4,
        "file": "best.keras",
        "monitor": "val_accuracy",
        "value": 0.95,
    }
    watched = summary["watched"]
    assert (watched["best_epoch"], watched["value"], watched["epochs_since"]) == (3, 0.2, 12)

    text = markdown(summary, _history(val_loss, val_acc, lr), every=5)
    assert "learning rate: 0.001; 0.001 -> 0.0005 after epoch 13" in text
    assert "kept (best.keras): epoch 4, val_accuracy 0.95000" in text
    assert "12 epochs since" in text
    epochs = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    assert epochs[2:] == ["1", "3", "4", "5", "10", "13", "15"]  # after the two header lines
    assert "| 13 |" in text and text.split("| 13 |")[1].splitlines()[0].endswith(
        "learning rate reduced |"
    )


def test_how_a_run_ended():
    flat = [0.3] * 25  # never improves after epoch 1: 24 epochs since, patience 20
    history = _history(flat, [0.9] * 25, [1e-3] * 25)
    assert summarize(history, _config())["status"].startswith("ended: early stopping")
    history = _history([0.3 - 0.001 * i for i in range(5)], [0.9] * 5, [1e-3] * 5)
    assert summarize(history, _config(epochs=5))["status"] == "ended: all 5 epochs done"
    with pytest.raises(UserError, match="no finished epoch"):
        summarize([], _config())


def test_command_line_on_a_run_folder_and_a_shipped_set(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    save_config(_config(), run / "config.yaml")
    write_history(run / "history.csv", _history([0.5, 0.4, 0.45], [0.9, 0.92, 0.91], [1e-3] * 3))
    result = run_python(["tools/run_summary.py", str(run), "--json"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["kept"]["epoch"] == 2

    # A shipped set: weights/<stem>.yaml and weights/<stem>.history.csv.
    (tmp_path / "w.yaml").write_text((run / "config.yaml").read_text())
    (tmp_path / "w.history.csv").write_text((run / "history.csv").read_text())
    result = run_python(["tools/run_summary.py", str(tmp_path / "w")])
    assert result.returncode == 0, result.stderr
    assert "- epochs: 3 of up to 150 (not ended)" in result.stdout
    assert "kept (best.keras): epoch 2, val_accuracy 0.92000" in result.stdout
    # ... shipped from last.keras (eval.json's checkpoint record): the kept epoch is that one.
    record = {"checkpoint": {"file": "last.keras", "epoch": 3}}
    (tmp_path / "w.eval.json").write_text(json.dumps(record))
    result = run_python(["tools/run_summary.py", str(tmp_path / "w")])
    assert "kept (last.keras): epoch 3, val_accuracy 0.91000" in result.stdout

    result = run_python(["tools/run_summary.py", str(tmp_path / "none")])
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_a_run_validated_on_photographs():
    """val_f1 as the monitors (mode max), no val_accuracy column; mode auto is Keras'."""
    cfg = _config(epochs=36)
    for key in ("checkpoint", "reduce_lr", "early_stopping"):
        cfg["train"][key].update(monitor="val_f1", mode="max")
    history = [
        {"epoch": e, "loss": 0.2, "accuracy": 0.95, "val_loss": 0.2, "val_f1": f1, "learning_rate": 2.5e-4}
        for e, f1 in enumerate([0.79, 0.80, 0.798], start=1)
    ]  # fmt: skip
    summary = summarize(history, cfg)
    assert summary["kept"]["epoch"] == summary["watched"]["best_epoch"] == 2
    text = markdown(summary, history)
    assert "| epoch | loss | accuracy | val_loss | val_f1 | learning_rate | |" in text
    cfg["train"]["early_stopping"].update(monitor="val_accuracy", mode="auto")
    for row, acc in zip(history, [0.9, 0.8, 0.95], strict=True):
        row["val_accuracy"] = acc
    assert summarize(history, cfg)["watched"]["best_epoch"] == 3  # auto: max for an accuracy

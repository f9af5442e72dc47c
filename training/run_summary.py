"""What a run's history says, read without Keras: epochs, learning-rate drops, the kept epoch.

    python tools/run_summary.py runs/drive_random            # Markdown, a table row every 10 epochs
    python tools/run_summary.py runs/drive_random --json

The callbacks' rules are the run's own (config.yaml): best.keras is the first
epoch with the best checkpoint monitor (val_accuracy, max); ReduceLROnPlateau
and EarlyStopping watch val_loss and count the epochs since its last
improvement. history.csv logs each epoch's learning rate after that epoch's
plateau check, so a drop shows first in the row of the epoch that caused it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.run_folder import CONFIG_FILE, HISTORY_FILE, read_history
from utils.config import load_config
from utils.errors import UserError

COLUMNS = ("loss", "accuracy", "val_loss", "val_f1", "val_accuracy", "learning_rate")


def _mode(monitor: str, mode: str | None) -> str:
    """A callback's mode, Keras' "auto" resolved (max for an accuracy or AUC, else min)."""
    if mode in ("max", "min"):
        return mode
    return "max" if "acc" in monitor or "auc" in monitor else "min"


def best_epoch(history: list[dict], key: str, mode: str) -> int:
    """The first epoch holding the best value of `key` (what a strict-improvement callback keeps)."""
    best = None
    for row in history:
        value = row[key]
        if best is None or (value > best[1] if mode == "max" else value < best[1]):
            best = (row["epoch"], value)
    return best[0]


def _epochs(count: int) -> str:
    return f"{count} epoch" + ("" if count == 1 else "s")


def summarize(
    history: list[dict], cfg: dict[str, Any], shipped: dict | None = None
) -> dict[str, Any]:
    """Epochs done, learning-rate drops, best epochs and the stopping counters of a run.

    shipped: the `checkpoint` record tools/ship_weights.py wrote into eval.json ({"file",
    "epoch"}); the kept epoch is then that one (e.g. last.keras), not best.keras's."""
    if not history:
        raise UserError("the run has no finished epoch yet (history.csv is empty)")
    train = cfg["train"]
    checkpoint, stopping, plateau = train["checkpoint"], train["early_stopping"], train["reduce_lr"]
    by_epoch = {row["epoch"]: row for row in history}
    done = history[-1]["epoch"]

    drops = [
        {"after_epoch": row["epoch"], "from": prev["learning_rate"], "to": row["learning_rate"]}
        for prev, row in zip(history, history[1:], strict=False)
        if abs(row["learning_rate"] - prev["learning_rate"]) > 1e-6 * prev["learning_rate"]
    ]
    kept = best_epoch(history, checkpoint["monitor"], checkpoint["mode"])
    if shipped and shipped.get("epoch") in by_epoch:
        kept = shipped["epoch"]
    watched = stopping["monitor"]
    improved = best_epoch(history, watched, _mode(watched, stopping.get("mode")))
    since = done - improved
    if done >= train["epochs"]:
        status = f"ended: all {train['epochs']} epochs done"
    elif since >= stopping["patience"]:
        status = f"ended: early stopping ({watched} not improved for {since} epochs)"
    else:
        status = "not ended"
    return {
        "epochs_done": done,
        "epochs": train["epochs"],
        "status": status,
        "learning_rate": {"initial": history[0]["learning_rate"], "drops": drops},
        "kept": {
            "epoch": kept,
            "file": (shipped or {}).get("file", "best.keras"),
            "monitor": checkpoint["monitor"],
            "value": by_epoch[kept][checkpoint["monitor"]],
        },
        "watched": {
            "monitor": watched,
            "best_epoch": improved,
            "value": by_epoch[improved][watched],
            "epochs_since": since,
            "plateau_patience": plateau["patience"],
            "stopping_patience": stopping["patience"],
        },
    }


def summarize_run(run: str | Path) -> tuple[dict[str, Any], list[dict]]:
    """summarize() of a run folder (config.yaml, history.csv) or of a shipped set
    (weights/<stem>: <stem>.yaml, <stem>.history.csv), and the history itself."""
    run = Path(run)
    shipped = run.with_name(run.name + ".yaml"), run.with_name(run.name + ".history.csv")
    record = None
    if not run.is_dir() and all(path.is_file() for path in shipped):
        config, history_file = shipped
        evaluation = run.with_name(run.name + ".eval.json")
        if evaluation.is_file():
            record = json.loads(evaluation.read_text(encoding="utf-8")).get("checkpoint")
    else:
        config, history_file = run / CONFIG_FILE, run / HISTORY_FILE
        for path in (config, history_file):
            if not path.is_file():
                raise UserError(f"{path} does not exist; give a folder train.py wrote")
    history = read_history(history_file)
    return summarize(history, load_config(config), record), history


def markdown(summary: dict[str, Any], history: list[dict], every: int = 10) -> str:
    """The summary as a few lines and a table: every `every`-th epoch and each notable one."""
    kept, watched, lr = summary["kept"], summary["watched"], summary["learning_rate"]
    drops = ", ".join(
        f"{d['from']:.3g} -> {d['to']:.3g} after epoch {d['after_epoch']}" for d in lr["drops"]
    )
    lines = [
        f"- epochs: {summary['epochs_done']} of up to {summary['epochs']} ({summary['status']})",
        f"- learning rate: {lr['initial']:.3g}" + (f"; {drops}" if drops else ", never reduced"),
        f"- kept ({kept['file']}): epoch {kept['epoch']}, {kept['monitor']} {kept['value']:.5f}",
        f"- {watched['monitor']}: best {watched['value']:.5f} at epoch {watched['best_epoch']}, "
        f"{_epochs(watched['epochs_since'])} since (the learning rate halves at "
        f"{watched['plateau_patience']}, early stopping at {watched['stopping_patience']})",
        "",
    ]
    notes: dict[int, list[str]] = {}
    for drop in lr["drops"]:
        notes.setdefault(drop["after_epoch"], []).append("learning rate reduced")
    notes.setdefault(kept["epoch"], []).append("kept")
    notes.setdefault(watched["best_epoch"], []).append(f"best {watched['monitor']}")
    last = summary["epochs_done"]
    rows = [
        row
        for row in history
        if row["epoch"] in notes or row["epoch"] % every == 0 or row["epoch"] in (1, last)
    ]
    columns = [c for c in COLUMNS if any(c in row for row in history)]
    lines.append("| epoch | " + " | ".join(columns) + " | |")
    lines.append("| ---: | " + " | ".join("---:" for _ in columns) + " | --- |")
    for row in rows:
        values = " | ".join(
            "" if c not in row else f"{row[c]:.3g}" if c == "learning_rate" else f"{row[c]:.4f}"
            for c in columns
        )
        lines.append(f"| {row['epoch']} | {values} | {', '.join(notes.get(row['epoch'], []))} |")
    return "\n".join(lines) + "\n"

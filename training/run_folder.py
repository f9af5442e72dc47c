"""A run folder's files, read and checked without Keras (train.py checks the folder, and
tools/carry_run.py packs it, before TensorFlow is imported).

Layout (every file written atomically):

    config.yaml    the resolved configuration
    best.keras     best validation accuracy so far (used for evaluation)
    last.keras     last finished epoch, with optimizer state (for --resume)
    state.json     epochs done and callback counters (for --resume)
    history.csv    one row per epoch: loss, accuracy, val_*, learning_rate
    curves.png     training curves
    logs/          TensorBoard logs (TensorFlow installed only)
    eval/          the test evaluation of best.keras (see inference.evaluation)
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from utils.errors import UserError
from utils.io import read_json, write_text

STATE_FILE = "state.json"
HISTORY_FILE = "history.csv"
LAST_FILE = "last.keras"
BEST_FILE = "best.keras"
CONFIG_FILE = "config.yaml"
RUN_FILES = (
    CONFIG_FILE,
    BEST_FILE,
    LAST_FILE,
    STATE_FILE,
    HISTORY_FILE,
    "curves.png",
    "logs",
    "eval",
)


def read_history(path: Path) -> list[dict]:
    """Rows of history.csv as dicts of floats (epoch as int); [] if absent."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in rows]


def write_history(path: Path, rows: list[dict]) -> None:
    """Rewrite history.csv atomically with every key seen in any row."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def read_state(run_dir: Path) -> dict | None:
    """The saved state.json of a run, or None."""
    return read_json(run_dir / STATE_FILE)


def holds_run(run_dir: Path) -> bool:
    """True if `run_dir` already holds a run's files."""
    return any((run_dir / name).exists() for name in (CONFIG_FILE, LAST_FILE, STATE_FILE))


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> dict | None:
    """Refuse a run folder that does not fit the flags (one sentence); the saved state when resuming.

    Changes nothing on disk, so train.py calls it before the backend is imported.
    """
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other; choose one")
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} is a file, expected a folder")
    if resume:
        state = read_state(run_dir)
        if state is None or not (run_dir / LAST_FILE).is_file():
            raise UserError(
                f"run folder {run_dir} holds no run to resume (expected {LAST_FILE} and {STATE_FILE})"
            )
        return state
    if holds_run(run_dir) and not overwrite:
        raise UserError(
            f"run folder {run_dir} already holds a run; pass --resume to continue it or --overwrite to replace it"
        )
    return None


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> dict | None:
    """Check and set up the run folder (an --overwrite clears it); return the saved state when resuming."""
    state = check_run_dir(run_dir, resume, overwrite)
    if resume:
        return state
    if holds_run(run_dir):
        clear_run(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return None


def clear_run(run_dir: Path) -> None:
    """Delete a run's files (RUN_FILES) from `run_dir`; other files stay."""
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

"""Callbacks that make a run resumable and crash-safe.

`StopBeforeDeadline` ends a run at an epoch boundary before a given moment
(`train.py --stop-at`), so a work session can stop, carry and later resume it
without losing a half-done epoch.

`RunCheckpoint` writes, at the end of every epoch whose loss is finite:
`last.keras` (weights and optimizer state), `best.keras` when the monitored
value improved, `history.csv`, and `state.json` (epoch count and the state
of the plateau/early-stopping callbacks), each atomically. A NaN loss stops
training before anything of that epoch is written, so the last good
checkpoint stays on disk.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from training.run_folder import (
    BEST_FILE,
    HISTORY_FILE,
    LAST_FILE,
    STATE_FILE,
    write_history,
)
from utils.io import atomic_path, write_json


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """model.save (weights and optimizer state) through a temporary file, never half-written."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def _plain(value):
    """A counter as a JSON value: None, int or float."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value)


class _ResumableCounters:
    """Mixin for a Keras callback: its COUNTERS go into state.json and come back on resume."""

    COUNTERS: tuple[str, ...] = ()

    def __init__(self, *args, initial_state: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._initial_state = initial_state or {}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # resets the counters ...
        for key in self.COUNTERS:  # ... to those saved with the run, when resuming
            if self._initial_state.get(key) is not None:
                setattr(self, key, self._initial_state[key])

    def state(self) -> dict:
        return {key: _plain(getattr(self, key)) for key in self.COUNTERS}


class ResumableReduceLROnPlateau(_ResumableCounters, keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters survive a resume (the learning rate is in last.keras)."""

    COUNTERS = ("wait", "best", "cooldown_counter")


class ResumableEarlyStopping(_ResumableCounters, keras.callbacks.EarlyStopping):
    """EarlyStopping whose counters survive a resume.

    After a resume the best weights seen before the interruption are not in
    memory: restoring applies only to an epoch since the resume that beats them,
    and when none does the model keeps its last weights (Keras alone would take
    the first epoch after the resume for the best and say it restored that). The
    run's `best.keras` (by the checkpoint monitor) is what evaluation uses either way.
    """

    COUNTERS = ("wait", "best")

    def on_epoch_end(self, epoch, logs=None):
        before, held = self.best, self.best_weights is not None
        super().on_epoch_end(epoch, logs)
        resumed = self._initial_state.get("best") is not None
        # The best is still the one before the resume, whose weights are not in memory.
        if resumed and not held and self.best == before:
            self.best_weights = None


class PhotographValidation(keras.callbacks.Callback):
    """Validation on whole photographs (`train.validation: photographs`).

    At the end of each epoch, every held-out photograph is predicted whole at its
    own size, padded only to the network's multiple, as evaluate.py predicts test
    images (`inference.segment`), and the epoch's logs get `val_loss` (the
    training loss on the photograph) and `val_f1` (F1 inside the FOV at 0.5), each
    the mean over the photographs. Padded validation images measure something
    else when the photographs differ in size: in a batch padded to the largest,
    most pixels of the smaller ones are padding, which every model gets right.

    For an artery/vein network (`models.is_av_model`), the labels are class maps: `val_loss` is
    the A/V loss against them, `val_f1` the mean of artery and vein F1 of protocol (a)
    (`metrics.av_segmentation_scores`, `f1_mean`, inside the FOV at 0.5), so the checkpoint and
    early stopping follow the A/V score, and `val_vessel_f1` the vessel channel's F1 against
    every labelled vessel pixel.
    """

    def __init__(self, samples: list, loss: Callable):
        super().__init__()
        if not samples:
            raise ValueError("PhotographValidation needs at least one photograph")
        self.samples = samples
        self.loss = loss

    def on_epoch_end(self, epoch, logs=None):
        from inference.engines import make_predictor
        from inference.segment import segment
        from metrics import av_segmentation_scores, image_metrics
        from models import is_av_model

        predictor = make_predictor(self.model, "keras")
        av = is_av_model(self.model)
        scores: dict[str, list[float]] = {"val_loss": [], "val_f1": []}
        for sample in self.samples:
            prob = segment(predictor, sample.image)  # (H, W), or (H, W, 3) for A/V
            label = sample.label.astype("float32")[None, ..., None]
            batch = prob[None] if av else prob[None, ..., None]
            scores["val_loss"].append(float(keras.ops.convert_to_numpy(self.loss(label, batch))))
            if not av:
                scores["val_f1"].append(image_metrics(prob, sample.label, sample.mask)["f1"])
                continue
            found = av_segmentation_scores(prob, sample.label, sample.mask)["f1_mean"]
            vessel = image_metrics(prob[..., 0], sample.label != 0, sample.mask)["f1"]
            scores["val_f1"].append(found)
            scores.setdefault("val_vessel_f1", []).append(vessel)
        if logs is not None:
            logs.update({key: float(np.mean(values)) for key, values in scores.items()})


class RunCheckpoint(keras.callbacks.Callback):
    """Per-epoch checkpoints, history and resumable state; stops on a non-finite loss."""

    def __init__(
        self,
        run_dir: Path,
        monitor: str,
        mode: str,
        history: list[dict],
        best: float | None,
        stateful: dict[str, keras.callbacks.Callback],
    ):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"checkpoint mode must be 'max' or 'min', got {mode!r}")
        self.run_dir = Path(run_dir)
        self.monitor = monitor
        self.mode = mode
        self.history = history
        self.best = best
        self.stateful = stateful
        self.nan_at: tuple[int, int] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan_at = (self._epoch + 1, batch + 1)
            self.model.stop_training = True

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.nan_at is not None or not all(math.isfinite(float(v)) for v in logs.values()):
            self.nan_at = self.nan_at or (epoch + 1, 0)
            self.model.stop_training = True
            return
        logs["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
        value = logs.get(self.monitor)
        if value is None:
            raise KeyError(
                f"checkpoint monitor '{self.monitor}' is not among the logged values {sorted(logs)}"
            )
        save_model_atomic(self.model, self.run_dir / LAST_FILE)
        if self._improved(float(value)):
            self.best = float(value)
            save_model_atomic(self.model, self.run_dir / BEST_FILE)
        self.history.append({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}})
        write_history(self.run_dir / HISTORY_FILE, self.history)
        state = {
            "epoch": epoch + 1,
            "best": {"monitor": self.monitor, "mode": self.mode, "value": self.best},
            "callbacks": {name: cb.state() for name, cb in self.stateful.items()},
        }
        write_json(self.run_dir / STATE_FILE, state)


class StopBeforeDeadline(keras.callbacks.Callback):
    """Stop after the last epoch that can end before `deadline` (seconds since the epoch).

    At each epoch's end (after the checkpoint has written it), training stops if
    the next epoch, assumed to last as long as the longest one so far in this
    process, would end after the deadline. The first epoch always runs. It never
    claims a stop that another callback made, or the run's natural end:
    `stopped_after` is the last epoch done when this callback stopped the run,
    else None.
    """

    def __init__(self, deadline: float, clock: Callable[[], float] = time.time):
        super().__init__()
        self.deadline = float(deadline)
        self.clock = clock
        self.longest = 0.0
        self.stopped_after: int | None = None
        self.next_end: float | None = None
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        self.longest = max(self.longest, now - self._start)
        if self.model.stop_training or epoch + 1 >= self.params.get("epochs", 0):
            return
        if now + self.longest > self.deadline:
            self.model.stop_training = True
            self.stopped_after = epoch + 1
            self.next_end = now + self.longest

"""The training run: data, model, callbacks, run folder, resume, final evaluation.

The run folder's layout and its Keras-free checks are in training.run_folder.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np

from data.io import to_unit_float
from losses import AvBceMccLoss, BceMccLoss
from models import build_model, init_from_vessel_weights, is_av_model, load_model
from training.callbacks import (
    PhotographValidation,
    ResumableEarlyStopping,
    ResumableReduceLROnPlateau,
    RunCheckpoint,
    StopBeforeDeadline,
)
from training.config import model_hparams, resolve_resume_config
from training.crops import CropBatches, ImageBatches
from training.plots import plot_history
from training.run_folder import (
    BEST_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    LAST_FILE,
    prepare_run_dir,
    read_history,
)
from utils.config import save_config
from utils.errors import UserError
from utils.io import check_weights_file


class TrainingFailed(RuntimeError):
    """Training stopped on a non-finite loss; the last good checkpoint is kept."""


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and the backend; make TensorFlow's ops deterministic."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def fill_last_batch(x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Repeat the first images so the count is a multiple of batch_size.

    Data-parallel JAX splits every batch evenly over the devices, so a short
    last batch cannot be sharded; repeating a few images avoids it.
    """
    missing = -len(x) % batch_size
    if not missing:
        return x, y
    take = np.arange(missing) % len(x)
    return np.concatenate([x, x[take]]), np.concatenate([y, y[take]])


def pad_to_model(model: keras.Model, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Image batches (N, H, W, C) of one size, zero-padded (bottom/right) to the model's multiple
    where it is not one (U-Net needs 16: HRF's 1752 px become 1760); unchanged arrays otherwise."""
    from data.geometry import pad_to, padded_shape
    from models.common import input_multiple

    shape = padded_shape(arrays[0].shape[1:3], input_multiple(model))
    if shape == tuple(arrays[0].shape[1:3]):
        return arrays
    return tuple(pad_to(a, shape) for a in arrays)


def check_crop_size(model: keras.Model, crop: int) -> int:
    """`train.crop_size` if the model can take it (a multiple of its input multiple)."""
    from models.common import input_multiple

    multiple = input_multiple(model)
    if crop % multiple:
        raise UserError(
            f"train.crop_size must be a multiple of {multiple} for {model.name}, got {crop}"
        )
    return crop


def distribution_scope(enabled: bool):
    """A context for building the model: TF MirroredStrategy, JAX DataParallel, or nothing."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        print(
            f"distribute: MirroredStrategy over {strategy.num_replicas_in_sync} devices {devices}"
        )
        return strategy.scope()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        print(f"distribute: keras.distribution.DataParallel over {len(devices)} devices {devices}")
        return contextlib.nullcontext()
    raise UserError(f"--distribute supports the tensorflow and jax backends, not {backend}")


def training_loss(train: dict[str, Any], av: bool) -> keras.losses.Loss:
    """The run's loss (the config's `train` section): the paper's BCE + MCC loss, or for an
    artery/vein network its three-channel form against the class map (`losses.AvBceMccLoss`,
    crossings left out of the artery and vein channels with `train.av_ignore_crossings`)."""
    if av:
        return AvBceMccLoss(ignore_crossings=train["av_ignore_crossings"], **train["loss"])
    return BceMccLoss(**train["loss"])


def build_and_compile(cfg: dict[str, Any]) -> keras.Model:
    """The model of the config, compiled with the paper's loss and optimizer; an artery/vein
    network gets its loss and no accuracy metric (its target is a class map, not a vessel map)."""
    train = cfg["train"]
    model = build_model(cfg["model"]["name"], input_shape=(None, None, 3), **model_hparams(cfg))
    av = is_av_model(model)
    jit = train["jit_compile"]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=train["learning_rate"]),
        loss=training_loss(train, av),
        metrics=None if av else ["accuracy"],
        jit_compile=jit,
        steps_per_execution=train["steps_per_execution"],
    )
    return model


def load_initial_weights(model: keras.Model, path: Path) -> None:
    """`train.init_weights` into a new model, in place: the same network's weights by
    `load_weights`; an artery/vein network from a vessel (or A/V) SA-UNetv2 file layer by layer,
    the head's vessel kernel into each channel, artery and vein moved apart from it
    (`models.init_from_vessel_weights`)."""
    if is_av_model(model):
        init_from_vessel_weights(model, path)
        return
    with warnings.catch_warnings():  # the file's optimizer state is not wanted
        warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
        model.load_weights(path)


def resume_model(path: Path, train: dict[str, Any]) -> keras.Model:
    """A run's last.keras, compiled, with its optimizer state, to train on this backend.

    The file's compile config holds `jit_compile` as the backend that wrote it
    resolved it: "auto" is False for TensorFlow on a CPU. A run carried to the GPU
    machine (JAX) would then train op by op, about 150 times slower per step here.
    So the run config's setting is applied again; "auto" is left to Keras to resolve
    for this backend on first use (the property's None), as `compile` would.
    """
    model = load_model(path, compile=True)
    jit = train["jit_compile"]
    model.jit_compile = None if jit == "auto" else bool(jit)
    model.steps_per_execution = train["steps_per_execution"]
    return model


def build_step_state(model: keras.Model) -> None:
    """Create the optimizer's slots and the metrics' variables before `fit`.

    Keras on TensorFlow leaves both to the first traced training step, and a
    tf.function that creates variables is traced twice: the second trace of the
    step cost a short run about ten seconds. Values are unchanged (zeros, and the
    metrics are reset); the model is called once at inference on a 16 x 16 image
    (U-Net pools four times: 8 x 8 would reach a 1 x 1 map and fail to pool again).
    """
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    if keras.backend.backend() == "tensorflow":
        x = np.zeros((1, 16, 16, model.input_shape[-1]), "float32")
        y = np.zeros((1, 16, 16, 1), "float32")
        model.compute_metrics(x, y, model(x, training=False))
        model.reset_metrics()


def make_callbacks(
    cfg, run_dir: Path, state: dict | None, history: list[dict]
) -> tuple[list, RunCheckpoint]:
    train = cfg["train"]
    saved = (state or {}).get("callbacks", {})
    reduce_lr = ResumableReduceLROnPlateau(
        **train["reduce_lr"], verbose=1, initial_state=saved.get("reduce_lr")
    )
    early = ResumableEarlyStopping(
        **train["early_stopping"], verbose=1, initial_state=saved.get("early_stopping")
    )
    best = (state or {}).get("best", {}).get("value")
    checkpoint = RunCheckpoint(
        run_dir,
        monitor=train["checkpoint"]["monitor"],
        mode=train["checkpoint"]["mode"],
        history=history,
        best=best,
        stateful={"reduce_lr": reduce_lr, "early_stopping": early},
    )
    # The checkpoint runs last, so the state it saves includes this epoch's plateau/stopping update.
    callbacks = [reduce_lr, early, checkpoint]
    # Keras writes TensorBoard logs through tf.summary: both packages are needed.
    has_tensorboard = all(importlib.util.find_spec(name) for name in ("tensorboard", "tensorflow"))
    if train["tensorboard"] and has_tensorboard:
        callbacks.insert(0, keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs")))
    return callbacks, checkpoint


def train(
    cfg: dict[str, Any],
    run_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    overrides: list[str] | None = None,
    cache_dir: str | Path | None = None,
    evaluate: bool = True,
    verbose: int | str = "auto",
    extra_callbacks: list | None = None,
    stop_at: datetime | None = None,
) -> dict[str, Any]:
    """Train per `cfg` into `run_dir`; returns a summary dict (epochs, best value, eval metrics).

    With `resume`, the run continues with its saved config; of the command line's
    `key=value` `overrides`, training.config.RESUME_KEYS apply and others must match.

    extra_callbacks run before the run's own checkpointing callbacks. With
    `stop_at`, training stops after the last epoch expected to end before it
    (the first epoch always runs); a run stopped that way is not evaluated
    (`summary["stopped_for_deadline"]`) and continues with `resume=True`.
    """
    from data.prepare import prepare_training_data

    run_dir = Path(run_dir)
    state = prepare_run_dir(run_dir, resume, overwrite)
    if state is not None:
        data_root = cfg["dataset"].get("data_root")
        cfg = resolve_resume_config(run_dir, cfg, overrides)
        if data_root is not None:  # the data may have moved since the run started
            cfg["dataset"]["data_root"] = data_root
    train_cfg = cfg["train"]
    if train_cfg["mixed_precision"]:
        keras.mixed_precision.set_global_policy(train_cfg["mixed_precision"])
    set_determinism(train_cfg["seed"])

    init_weights = None  # checked before the data are read: a wrong path costs no wait
    if state is None and train_cfg["init_weights"]:
        init_weights = check_weights_file(train_cfg["init_weights"])
    data = prepare_training_data(cfg["dataset"], cache_dir=cache_dir)
    if state is None:
        for key in ("train_fov_diameter", "max_fov_diameter"):
            cfg.setdefault("scale", {})[key] = data.summary[key]
        save_config(cfg, run_dir / CONFIG_FILE)
    if not len(data.x_val):
        raise UserError(
            "the validation split is empty; raise dataset.val_fraction or add training images"
        )
    photographs = train_cfg["validation"] == "photographs"
    if photographs and not data.val_photographs:
        raise UserError(
            "train.validation: photographs needs the validation split drawn by source photograph; "
            "set dataset.val_split: by_source"
        )
    # With photographs, PhotographValidation predicts them whole: no validation through Keras.
    validation = None if photographs else (data.x_val, data.y_val)
    crop = train_cfg["crop_size"]
    if crop:  # uint8 until each batch is cut or converted (training.crops)
        x_train, y_train = data.x_train, data.y_train
    else:
        x_train, y_train = to_unit_float(data.x_train), data.y_train.astype("float32")
        if validation is not None:
            validation = (to_unit_float(data.x_val), data.y_val.astype("float32"))

    if train_cfg["distribute"]:
        if not crop:  # crop batches are always full
            x_train, y_train = fill_last_batch(x_train, y_train, train_cfg["batch_size"])
        if validation is not None:
            validation = fill_last_batch(*validation, train_cfg["batch_size"])
    with distribution_scope(train_cfg["distribute"]):
        if state is None:
            model = build_and_compile(cfg)
            if init_weights:  # e.g. the fundus recipe starts from the DRIVE weights
                load_initial_weights(model, init_weights)
            initial_epoch = 0
        else:
            model = resume_model(run_dir / LAST_FILE, train_cfg)
            initial_epoch = int(state["epoch"])
            print(f"resuming {run_dir} at epoch {initial_epoch + 1} of {train_cfg['epochs']}")
        if not train_cfg["distribute"]:  # Keras builds them itself under a strategy
            build_step_state(model)
    if validation is not None:
        validation = pad_to_model(model, *validation)
        if crop:
            validation = ImageBatches(*validation, train_cfg["batch_size"])
    if crop:
        crops = CropBatches(
            x_train,
            y_train,
            data.extents_train,
            check_crop_size(model, crop),
            train_cfg["batch_size"],
            train_cfg["seed"],
            initial_epoch,
            train_cfg["shuffle"],
            train_cfg["camera_augment"],
            train_cfg["scale_augment"],
            train_cfg["crop_margin"],
            camera_changes=train_cfg["camera_changes"],
        )
        fit_data = {"x": crops}
    else:
        x_train, y_train = pad_to_model(model, x_train, y_train)
        fit_data = {
            "x": x_train,
            "y": y_train,
            "batch_size": train_cfg["batch_size"],
            "shuffle": train_cfg["shuffle"],
        }

    history = read_history(run_dir / HISTORY_FILE) if state is not None else []
    history = [row for row in history if row["epoch"] <= initial_epoch]
    callbacks, checkpoint = make_callbacks(cfg, run_dir, state, history)
    if photographs:  # first: the others read the val_loss and val_f1 it logs
        loss = training_loss(train_cfg, is_av_model(model))
        callbacks.insert(0, PhotographValidation(data.val_photographs, loss))
    callbacks = list(extra_callbacks or []) + callbacks
    deadline = StopBeforeDeadline(stop_at.timestamp()) if stop_at is not None else None
    if deadline is not None:  # last: it sees the other callbacks' decisions of the epoch
        callbacks.append(deadline)

    start = time.perf_counter()
    if initial_epoch < train_cfg["epochs"]:
        model.fit(
            **fit_data,
            epochs=train_cfg["epochs"],
            initial_epoch=initial_epoch,
            validation_data=validation,
            steps_per_epoch=train_cfg["steps_per_epoch"],
            validation_steps=train_cfg["validation_steps"] if validation is not None else None,
            callbacks=callbacks,
            verbose=verbose,
        )
    seconds = time.perf_counter() - start
    if history:
        try:
            plot_history(history, run_dir / "curves.png")
        except (
            ImportError
        ):  # e.g. the GPU machine, which has no matplotlib: history.csv has the numbers
            print("matplotlib is not installed: curves.png not drawn (history.csv has the numbers)")
    if checkpoint.nan_at is not None:
        epoch, batch = checkpoint.nan_at
        done = history[-1]["epoch"] if history else 0
        raise TrainingFailed(
            f"training stopped: the loss became NaN or infinite in epoch {epoch} (batch {batch}); "
            f"the last good checkpoint is {run_dir / LAST_FILE} (epoch {done})"
        )

    summary: dict[str, Any] = {
        "run_dir": str(run_dir),
        "epochs_done": history[-1]["epoch"] if history else initial_epoch,
        "train_seconds": round(seconds, 1),
        "train_images": int(len(x_train)),
        "val_images": int(len(data.x_val)),
        "best": {"monitor": checkpoint.monitor, "value": checkpoint.best},
    }
    if deadline is not None and deadline.stopped_after is not None:
        next_end = datetime.fromtimestamp(deadline.next_end).astimezone()
        print(
            f"stopped before {stop_at:%Y-%m-%d %H:%M} after epoch {deadline.stopped_after} of "
            f"{train_cfg['epochs']} (the next would end about {next_end:%H:%M}); "
            f"continue it with --resume"
        )
        summary["stopped_for_deadline"] = True
        return summary
    if evaluate:
        from inference.evaluation import evaluate_checkpoint

        weights = run_dir / (BEST_FILE if cfg["evaluate"]["weights"] == "best" else LAST_FILE)
        summary["eval"] = evaluate_checkpoint(cfg, weights, run_dir / "eval")
    return summary

"""train.py end to end on tiny synthetic data: run folder, resume, interruption, NaN, seeds."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.helpers import ROOT, TINY, backend_available, run_python
from training.callbacks import (
    ResumableEarlyStopping,
    ResumableReduceLROnPlateau,
    StopBeforeDeadline,
)
from training.config import resolve_run_config
from training.run_folder import read_history, read_state
from training.trainer import TrainingFailed, train
from utils.errors import UserError

TINY_OVERRIDES = [TINY[i + 1] for i in range(0, len(TINY), 2)]


def demo_args(run, *args, tiny=True):
    """train.py arguments for the demo config into `run` (tiny sizes unless tiny=False)."""
    return [
        "train.py",
        "--config",
        "configs/demo.yaml",
        "--out",
        str(run),
        *args,
        *(TINY if tiny else []),
    ]


def run_train(run, *args, tiny=True, **kwargs):
    """Run train.py on the demo config into `run`; returns the CompletedProcess."""
    return run_python(demo_args(run, *args, tiny=tiny), **kwargs)


def tiny_cfg(**train):
    cfg = resolve_run_config(ROOT / "configs" / "demo.yaml", TINY_OVERRIDES)
    cfg["train"].update(train)
    cfg["train"]["tensorboard"] = False
    return cfg


@pytest.mark.slow
def test_run_folder_resume_and_refusal(tmp_path):
    run = tmp_path / "run"
    result = run_train(run, "--epochs", "1", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    for name in (
        "config.yaml",
        "best.keras",
        "last.keras",
        "history.csv",
        "state.json",
        "curves.png",
    ):
        assert (run / name).is_file(), name
    assert (run / "logs").is_dir()
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert set(metrics["whole_image"]) == {"mean", "std", "pooled"}
    assert len(list((run / "eval" / "images").glob("*_overlay.png"))) == 2
    saved = (run / "config.yaml").read_text()
    assert "size: 64" in saved and "epochs: 1" in saved

    # A second run into the same folder is refused ...
    again = run_train(run, "--epochs", "1")
    assert again.returncode == 2
    assert "already holds a run" in again.stderr and "--resume" in again.stderr
    # A resumed run keeps its recipe: a flag that changes it is one sentence, before any training.
    changed = run_train(run, "--resume", "--batch-size", "2", tiny=False)
    assert changed.returncode == 2 and "train.batch_size is 4, not 2" in changed.stderr
    assert read_state(run)["epoch"] == 1

    # ... and --resume continues at the next epoch. With --stop-at already past, the first
    # epoch still runs, and a run's last epoch is its natural end, not a stop.
    resumed = run_train(
        run, "--epochs", "2", "--resume", "--quiet", "--no-eval", "--stop-at", "+1s", tiny=False
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at epoch 2 of 2" in resumed.stdout and "stopped before" not in resumed.stdout
    assert [row["epoch"] for row in read_history(run / "history.csv")] == [1, 2]
    assert read_state(run)["epoch"] == 2

    # --stop-at ends a run at an epoch boundary, unevaluated.
    shutil.rmtree(run / "eval")  # the first run's
    stopped = run_train(run, "--epochs", "4", "--resume", "--quiet", "--stop-at", "+1s", tiny=False)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "stopped before" in stopped.stdout and "after epoch 3 of 4" in stopped.stdout
    assert "not evaluated (the run has not ended)" in stopped.stdout
    assert read_state(run)["epoch"] == 3 and not (run / "eval").exists()

    # --overwrite replaces the run.
    replaced = run_train(run, "--epochs", "1", "--quiet", "--no-eval", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert [row["epoch"] for row in read_history(run / "history.csv")] == [1]
    assert not (run / "eval").exists()


def _wait_for_epoch(path: Path, epoch: int, proc, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = read_state(path) if (path / "state.json").is_file() else None
        if state and state["epoch"] >= epoch:
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    raise AssertionError("no checkpoint appeared in time")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_interrupted_run_resumes_at_the_right_epoch(tmp_path, sig):
    run = tmp_path / "run"
    cmd = [sys.executable, *demo_args(run, "--epochs", "50", "--quiet", "--no-eval")]
    # Ctrl-C as in a terminal, however pytest was started: a job put in the background by a
    # shell without job control inherits SIGINT ignored, and Python then never sees it.
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        _wait_for_epoch(run, 1, proc)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    done = read_state(run)["epoch"]
    assert keras.saving.load_model(run / "last.keras") is not None
    assert not list(run.glob(".*.tmp*")), "a temporary file was left behind"
    resumed = run_train(
        run, "--epochs", str(done + 1), "--resume", "--quiet", "--no-eval", tiny=False
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at epoch {done + 1} of {done + 1}" in resumed.stdout
    assert [row["epoch"] for row in read_history(run / "history.csv")] == list(range(1, done + 2))


class _PoisonWeights(keras.callbacks.Callback):
    """Turns the weights to NaN at the start of the second epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.model.layers[1].kernel.assign(
                np.full(self.model.layers[1].kernel.shape, np.nan, "float32")
            )


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingFailed, match=r"NaN.*epoch 2.*last good checkpoint.*epoch 1"):
        train(
            tiny_cfg(epochs=3), run, evaluate=False, verbose=0, extra_callbacks=[_PoisonWeights()]
        )
    assert read_state(run)["epoch"] == 1
    model = keras.saving.load_model(run / "last.keras")
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert [row["epoch"] for row in read_history(run / "history.csv")] == [1]


@pytest.mark.slow
def test_same_seed_same_run(tmp_path):
    histories = []
    for name in ("a", "b"):
        train(tiny_cfg(epochs=1), tmp_path / name, evaluate=False, verbose=0)
        histories.append(read_history(tmp_path / name / "history.csv"))
    assert histories[0] == histories[1]
    weights = [
        keras.saving.load_model(tmp_path / n / "last.keras").get_weights() for n in ("a", "b")
    ]
    for w1, w2 in zip(*weights, strict=True):
        np.testing.assert_array_equal(w1, w2)


@pytest.mark.slow
def test_training_step_is_traced_once_and_trains_as_before():
    """build_step_state: with the optimizer's and metrics' variables made before fit, the step is
    traced once (a tf.function that creates variables is traced twice) and trains to the same
    weights, bit for bit, as when Keras makes them inside the step."""
    import tensorflow as tf

    from training.trainer import build_and_compile, build_step_state, set_determinism

    rng = np.random.default_rng(0)
    x = rng.random((6, 32, 32, 3), dtype=np.float32)
    y = (rng.random((6, 32, 32, 1)) > 0.9).astype("float32")
    weights, traces, created = {}, {}, {}
    for prebuilt in (False, True):
        set_determinism(0)
        model = build_and_compile(tiny_cfg())
        if prebuilt:
            build_step_state(model)
        step, count, names = model.train_step, [0], []

        def counted(data, step=step, count=count):
            count[0] += 1
            return step(data)

        def creator(next_creator, names=names, **kwargs):
            names.append(kwargs.get("name"))
            return next_creator(**kwargs)

        model.train_step = counted
        with tf.variable_creator_scope(creator):
            model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
        traces[prebuilt], created[prebuilt] = count[0], names
        weights[prebuilt] = model.get_weights()
    assert traces[True] == 1 and created[True] == [], (traces, created[True])
    assert created[False], "Keras now builds the step's variables itself: build_step_state may go"
    for before, after in zip(weights[False], weights[True], strict=True):
        np.testing.assert_array_equal(before, after)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,params",
    [
        ("sa_unetv2", 260_521),
        ("sa_unet", 537_299),
        ("unet", 8_636_385),
        ("attention_unet", 8_649_828),
    ],
)
def test_drive_config_trains_each_model_at_its_paper_size(name, params):
    """`--config configs/drive.yaml --set model.name=NAME` builds the paper's network (the config
    leaves the width to the model), and its step state builds (U-Net's four poolings once failed
    on an 8 x 8 probe)."""
    from training.trainer import build_and_compile, build_step_state

    model = build_and_compile(resolve_run_config("configs/drive.yaml", [f"model.name={name}"]))
    assert model.count_params() == params
    build_step_state(model)
    assert model.optimizer.built


def test_bad_flags(tmp_path):
    result = run_train(tmp_path / "r", "--set", "train.epochz=2", tiny=False)
    assert result.returncode == 2 and "'train.epochz' does not exist" in result.stderr
    result = run_python(["train.py", "--config", str(tmp_path / "nope.yaml")])
    assert result.returncode == 2 and "nope.yaml does not exist" in result.stderr
    result = run_train(tmp_path / "r2", "--resume", tiny=False)
    assert result.returncode == 2 and "no run to resume" in result.stderr
    result = run_train(tmp_path / "r3", "--set", "model.dropblock_rate=1.5", tiny=False)
    assert result.returncode == 2 and "[0, 1)" in result.stderr
    assert not (tmp_path / "r3").exists()  # refused before anything was written


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_distribute_on_two_cpu_devices(tmp_path, backend):
    if not backend_available(backend):
        pytest.skip(f"{backend} is not installed")
    result = run_train(
        tmp_path / "run",
        "--epochs",
        "1",
        "--quiet",
        "--no-eval",
        "--distribute",
        "--backend",
        backend,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    strategy = "MirroredStrategy" if backend == "tensorflow" else "DataParallel"
    assert f"{strategy} over 2 devices" in result.stdout
    assert read_state(tmp_path / "run")["epoch"] == 1


@pytest.mark.slow
def test_mixed_precision_bfloat16(tmp_path):
    run = tmp_path / "run"
    result = run_train(
        run, "--epochs", "1", "--quiet", "--no-eval", "--mixed-precision", "mixed_bfloat16"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.saving.load_model(run / "last.keras")
    assert model.get_layer("enc1_step1_conv").dtype_policy.name == "mixed_bfloat16"
    assert model.output.dtype == "float32"  # the sigmoid head stays in float32


class _Model:
    stop_training = False


def _epochs_with_clock(durations, deadline, epochs=10, stop_at_epoch=None):
    """Run StopBeforeDeadline over epochs of the given durations on a fake clock.

    Returns (epochs done, callback). stop_at_epoch: another callback stops the run there.
    """
    clock = [0.0]
    callback = StopBeforeDeadline(deadline, clock=lambda: clock[0])
    model = _Model()
    callback.set_model(model)
    callback.set_params({"epochs": epochs})
    for epoch, seconds in enumerate(durations[:epochs]):
        callback.on_epoch_begin(epoch)
        clock[0] += seconds
        if stop_at_epoch == epoch + 1:
            model.stop_training = True
        callback.on_epoch_end(epoch)
        if model.stop_training:
            return epoch + 1, callback
    return len(durations[:epochs]), callback


def test_stop_before_deadline_keeps_to_the_longest_epoch():
    # Epochs of 100 s (the first, with tracing, 130 s); deadline at 450 s: after epoch 3 (330 s)
    # the next might take 130 s and end at 460 s, so the run stops there.
    done, callback = _epochs_with_clock([130, 100, 100, 100, 100], deadline=450)
    assert (done, callback.stopped_after, callback.next_end) == (3, 3, 460)
    # One second more and epoch 4 fits.
    assert _epochs_with_clock([130, 100, 100, 100, 100], deadline=461)[0] == 4
    # The first epoch always runs, even past the deadline.
    done, callback = _epochs_with_clock([130, 100], deadline=10)
    assert (done, callback.stopped_after) == (1, 1)


def test_stop_before_deadline_claims_no_other_stop():
    # Early stopping (or a NaN) stopped the run: not this callback's doing.
    done, callback = _epochs_with_clock([100] * 5, deadline=250, stop_at_epoch=2)
    assert (done, callback.stopped_after) == (2, None)
    # The last epoch is the run's end, however near the deadline.
    done, callback = _epochs_with_clock([100] * 5, deadline=350, epochs=3)
    assert (done, callback.stopped_after) == (3, None)
    # A far deadline never stops anything.
    assert _epochs_with_clock([100] * 5, deadline=1e9)[1].stopped_after is None


def test_callback_counters_are_restored_on_resume():
    saved = {"wait": 4, "best": 0.25, "cooldown_counter": 1}
    reduce_lr = ResumableReduceLROnPlateau(monitor="val_loss", patience=10, initial_state=saved)
    reduce_lr.on_train_begin()
    assert reduce_lr.state() == saved
    early = ResumableEarlyStopping(
        monitor="val_loss", patience=20, initial_state={"wait": 7, "best": 0.5}
    )
    early.on_train_begin()
    assert (early.wait, early.best) == (7, 0.5)
    fresh = ResumableEarlyStopping(monitor="val_loss", patience=20)
    fresh.on_train_begin()
    assert fresh.wait == 0


class _WeightsOnly:
    """Enough of a model for EarlyStopping: weights as a number, and stop_training."""

    def __init__(self):
        self.weights_now, self.stop_training = 0, False

    def get_weights(self):
        return self.weights_now

    def set_weights(self, value):
        self.weights_now = value


def _early_stopping_run(val_losses, initial_state=None):
    """ResumableEarlyStopping over epochs whose weights are their epoch number."""
    early = ResumableEarlyStopping(
        monitor="val_loss", patience=2, restore_best_weights=True, initial_state=initial_state
    )
    model = _WeightsOnly()
    early.set_model(model)
    early.on_train_begin()
    for epoch, loss in enumerate(val_losses):
        model.weights_now = epoch
        early.on_epoch_end(epoch, {"val_loss": loss})
        if model.stop_training:
            break
    early.on_train_end()
    return model.weights_now


def test_early_stopping_restores_no_epoch_that_was_not_the_best_after_a_resume():
    # Resumed with its best (0.1) before the interruption: epochs 0-1 never beat it, so the
    # last weights stay (not epoch 0's, as Keras alone would restore).
    assert _early_stopping_run([0.3, 0.2], {"wait": 1, "best": 0.1}) == 1
    # An epoch after the resume that beats it is restored as usual.
    assert _early_stopping_run([0.05, 0.2, 0.3], {"wait": 1, "best": 0.1}) == 0
    # A run without a resume restores its best epoch.
    assert _early_stopping_run([0.3, 0.1, 0.2, 0.4]) == 1


@pytest.mark.slow
def test_drive_run_on_real_data(real_data_root, tmp_path):
    """train.py on the real DRIVE files at 592 x 592 (two steps an epoch), then the test evaluation."""
    run = tmp_path / "drive"
    result = run_python(
        ["train.py", "--config", "configs/drive.yaml", "--data-root", str(real_data_root), "--out", str(run),
         "--epochs", "1", "--batch-size", "2", "--quiet", "--set", "train.steps_per_epoch=2",
         "--set", "train.validation_steps=2", "--set", "evaluate.save_images=false"]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert [row["epoch"] for row in read_history(run / "history.csv")] == [1]
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["n_images"] == 20 and "second_observer" in metrics
    saved = (run / "config.yaml").read_text()
    assert "name: drive" in saved and "steps_per_epoch: 2" in saved


def test_resumed_config_gains_keys_added_since_the_run_started(tmp_path):
    from training.config import resolve_resume_config
    from utils.config import load_config, save_config

    cfg = tiny_cfg(epochs=3)
    older = {section: dict(values) for section, values in cfg.items() if section != "scale"}
    del older["evaluate"]["scale"]  # a run started before --scale existed
    save_config(older, tmp_path / "config.yaml")
    resumed = resolve_resume_config(tmp_path, tiny_cfg(epochs=5), ["train.epochs=5"])
    assert resumed["evaluate"]["scale"] == "auto"
    assert resumed["train"]["epochs"] == 5
    assert resumed["dataset"] == load_config(tmp_path / "config.yaml")["dataset"]


def test_a_resumed_run_takes_how_it_runs_but_not_a_new_recipe(tmp_path):
    from training.config import resolve_resume_config
    from utils.config import apply_overrides, save_config

    save_config(tiny_cfg(epochs=3), tmp_path / "config.yaml")
    runtime = [
        "train.epochs=6",
        "train.jit_compile=true",
        "train.steps_per_execution=2",
        "evaluate.save_images=false",
        "dataset.size=64",  # the saved value: allowed
    ]
    given = apply_overrides(tiny_cfg(epochs=3), runtime)
    given["train"]["learning_rate"] = 0.5  # from another config file, not a flag: ignored
    resumed = resolve_resume_config(tmp_path, given, runtime)
    assert resumed["train"]["epochs"] == 6 and resumed["train"]["jit_compile"] is True
    assert resumed["train"]["steps_per_execution"] == 2
    assert resumed["evaluate"]["save_images"] is False
    assert resumed["train"]["learning_rate"] == 1.0e-3
    for item, sentence in [
        ("train.learning_rate=5e-4", "train.learning_rate is 0.001, not 0.0005"),
        ("dataset.size=96", "dataset.size is 64, not 96"),
        ("train.loss.mcc_weight=0", "train.loss.mcc_weight is 0.5, not 0"),
    ]:
        with pytest.raises(UserError, match="--resume continues the run") as info:
            resolve_resume_config(tmp_path, apply_overrides(given, [item]), [item])
        assert sentence in str(info.value) and "--overwrite or another --out" in str(info.value)


@pytest.fixture
def without_op_determinism():
    """TensorFlow's op determinism off for one test, as it was after it. Any training test run
    before in the same process leaves it on (training.trainer.set_determinism), and Keras then
    turns jit_compile=True into False (keras' model_supports_jit)."""
    if keras.backend.backend() != "tensorflow":
        yield
        return
    from tensorflow.python.framework import config

    was_on = config.is_op_determinism_enabled()
    config.disable_op_determinism()
    try:
        yield
    finally:
        if was_on:
            config.enable_op_determinism()


def test_a_resumed_run_compiles_for_this_backend(tmp_path, without_op_determinism):
    """last.keras keeps jit_compile as its backend resolved "auto" (TensorFlow on a CPU: False):
    resuming applies the run config's setting again, so JAX on the GPU machine jit-compiles."""
    from training.trainer import build_and_compile, build_step_state, resume_model

    cfg = tiny_cfg()
    model = build_and_compile(cfg)
    build_step_state(model)
    assert model.jit_compile is False  # "auto" on TensorFlow without an accelerator
    model.save(tmp_path / "last.keras")
    resumed = resume_model(tmp_path / "last.keras", {"jit_compile": True, "steps_per_execution": 3})
    assert resumed.jit_compile is True and resumed.steps_per_execution == 3
    resumed = resume_model(tmp_path / "last.keras", cfg["train"])
    assert resumed.jit_compile is False and resumed.steps_per_execution == 1


# ----------------------------------------------------------------------------- arteries and veins


@pytest.mark.slow
def test_av_demo_trains_and_evaluates_end_to_end(tmp_path):
    """train.py on configs/av_demo.yaml (synthetic_av, tiny): two epochs that log the A/V
    validation (val_f1: mean artery/vein F1; val_vessel_f1), the checkpoint following val_f1, then
    the test evaluation with both A/V protocols; evaluate.py on best.keras gives the same scores."""
    run = tmp_path / "av"
    trained = run_python(
        ["train.py", "--config", "configs/av_demo.yaml", "--out", str(run), "--epochs", "2",
         "--quiet", *TINY]
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    history = read_history(run / "history.csv")
    assert [row["epoch"] for row in history] == [1, 2]
    assert {"loss", "val_loss", "val_f1", "val_vessel_f1"} <= set(history[0])
    assert "accuracy" not in history[0] and "val_accuracy" not in history[0]
    assert all(0.0 <= row["val_f1"] <= 1.0 for row in history)
    state = read_state(run)
    assert state["best"]["value"] == pytest.approx(max(row["val_f1"] for row in history))
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    av = metrics["av"]
    assert metrics["n_images"] == av["n_images"] == 2 and av["fov_mask"]
    assert [entry["name"] for entry in av["per_image"]] == [
        "synthetic_av_test_000",
        "synthetic_av_test_001",
    ]
    f1_mean = av["segmentation"]["mean"]["f1_mean"]
    per_image = [entry["segmentation"]["f1_mean"] for entry in av["per_image"]]
    assert f1_mean == pytest.approx(np.mean(per_image))
    low, high = av["segmentation"]["ci95"]["f1_mean"]
    assert min(per_image) <= low <= f1_mean <= high <= max(per_image)
    assert f"{f1_mean:.4f}" in trained.stdout and "(a) A/V segmentation" in trained.stdout
    assert len(list((run / "eval" / "images").glob("*_av.png"))) == 2

    out = tmp_path / "eval"
    evaluated = run_python(
        ["evaluate.py", "--config", "configs/av_demo.yaml", "--weights", str(run / "best.keras"),
         "--out", str(out), *TINY]
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "(b) A/V classification of the reference vessels" in evaluated.stdout
    again = json.loads((out / "metrics.json").read_text())
    assert again["av"]["segmentation"] == av["segmentation"]
    assert again["av"]["classification"] == av["classification"]


def test_av_network_starts_from_vessel_weights_with_its_own_loss(tmp_path):
    """train.init_weights of a vessel SA-UNetv2 starts the A/V network's vessel channel at the
    vessel probability and its artery and vein channels either side of it (logits k.f + d.f and
    k.f - d.f, so their mean is the vessel logit and they differ); the A/V run compiles
    AvBceMccLoss with train.av_ignore_crossings and no accuracy metric."""
    from losses import AvBceMccLoss
    from models import build_model
    from training.trainer import build_and_compile, build_step_state, load_initial_weights

    keras.utils.set_random_seed(5)
    vessel = build_model("sa_unetv2", start_neurons=8)
    vessel.save(tmp_path / "vessel.keras")
    cfg = resolve_run_config(
        ROOT / "configs" / "av_demo.yaml",
        ["model.start_neurons=8", "train.av_ignore_crossings=true"],
    )
    model = build_and_compile(cfg)
    assert isinstance(model.loss, AvBceMccLoss) and model.loss.ignore_crossings
    build_step_state(model)
    assert "accuracy" not in str(model.metrics_names)
    load_initial_weights(model, tmp_path / "vessel.keras")
    x = np.random.default_rng(6).uniform(size=(1, 32, 40, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(vessel(x, training=False))[..., 0]
    got = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(got[..., 0], expected, atol=1e-6)

    def logit(p):
        return np.log(p) - np.log1p(-p)

    artery, vein = logit(got[..., 1].astype("float64")), logit(got[..., 2].astype("float64"))
    np.testing.assert_allclose((artery + vein) / 2, logit(expected.astype("float64")), atol=1e-3)
    assert np.abs(artery - vein).mean() > 1e-3

"""training.carry and tools/carry_run.py: pack, unpack, list, drop, and a carried run resumed."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.helpers import GPU_MACHINE, ROOT, backend_available, run_python
from tests.test_train import demo_args
from training import carry
from training.config import resolve_run_config
from training.run_folder import read_history, read_state, write_history
from utils.config import load_config, save_config
from utils.errors import UserError
from utils.io import write_json

PACK_FILES = {*carry.CARRIED_FILES, carry.MANIFEST_FILE, carry.README_FILE}


def fake_run(run: Path, epoch: int = 2, epochs: int = 12, wait: int = 0) -> Path:
    """A run folder as train.py leaves it after `epoch` epochs (models as stand-in bytes)."""
    cfg = resolve_run_config(ROOT / "configs" / "demo.yaml", data_root="/data/on/this/machine")
    cfg["train"]["epochs"] = epochs
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.yaml")
    (run / "best.keras").write_bytes(b"best %d" % epoch)
    (run / "last.keras").write_bytes(b"last %d" % epoch)
    write_history(run / "history.csv", [{"epoch": e, "loss": 1.0 / e} for e in range(1, epoch + 1)])
    write_json(
        run / "state.json",
        {
            "epoch": epoch,
            "best": {"monitor": "val_accuracy", "mode": "max", "value": 0.5 + epoch / 100},
            "callbacks": {"early_stopping": {"wait": wait, "best": 0.25}},
        },
    )
    (run / "logs").mkdir(exist_ok=True)
    (run / "curves.png").write_bytes(b"not carried")
    return run


def hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_pack_copies_the_resumable_files_and_clears_data_root(tmp_path):
    run = fake_run(tmp_path / "runs" / "demo")
    manifest = carry.pack_run(run, tmp_path / "carried")
    pack = tmp_path / "carried" / "demo"
    assert {p.name for p in pack.iterdir()} == PACK_FILES
    assert manifest == json.loads((pack / "manifest.json").read_text())
    assert (manifest["name"], manifest["epoch"], manifest["epochs"]) == ("demo", 2, 12)
    assert manifest["ended"] is False and manifest["best"]["value"] == pytest.approx(0.52)
    for name in ("best.keras", "last.keras", "history.csv", "state.json"):
        assert (pack / name).read_bytes() == (run / name).read_bytes(), name
    for name, recorded in manifest["files"].items():
        assert recorded["sha256"] == carry.sha256(pack / name), name
    assert load_config(pack / "config.yaml")["dataset"]["data_root"] is None
    assert load_config(run / "config.yaml")["dataset"]["data_root"] == "/data/on/this/machine"
    readme = (pack / "README.md").read_text()
    assert "epoch 2 of 12" in readme and "unpack demo" in readme and "--resume" in readme
    assert hidden(tmp_path / "carried") == []


def test_a_new_pack_replaces_the_old_one_whole(tmp_path, monkeypatch):
    run = fake_run(tmp_path / "demo")
    carry.pack_run(run, tmp_path / "carried")
    fake_run(run, epoch=3)
    assert carry.pack_run(run, tmp_path / "carried")["epoch"] == 3
    pack = tmp_path / "carried" / "demo"
    assert (pack / "last.keras").read_bytes() == b"last 3"

    # A pack that breaks off leaves the previous one as it was and no temporary folder.
    fake_run(run, epoch=4)

    def broken(manifest):
        raise OSError("disk full")

    monkeypatch.setattr(carry, "readme_text", broken)
    with pytest.raises(OSError, match="disk full"):
        carry.pack_run(run, tmp_path / "carried")
    assert read_state(pack)["epoch"] == 3 and (pack / "last.keras").read_bytes() == b"last 3"
    assert {p.name for p in pack.iterdir()} == PACK_FILES
    assert hidden(tmp_path / "carried") == []


def test_pack_refuses_to_replace_a_later_epoch_without_force(tmp_path):
    carry.pack_run(fake_run(tmp_path / "new" / "demo", epoch=5), tmp_path / "carried")
    stale = fake_run(tmp_path / "stale" / "demo", epoch=2)
    with pytest.raises(UserError, match="holds epoch 5, later than epoch 2"):
        carry.pack_run(stale, tmp_path / "carried")
    assert carry.read_manifest(tmp_path / "carried" / "demo")["epoch"] == 5
    assert carry.pack_run(stale, tmp_path / "carried", force=True)["epoch"] == 2


def test_pack_waits_while_an_epoch_is_being_written(tmp_path):
    run = fake_run(tmp_path / "demo")
    now = time.time()
    # last.keras of the next epoch is written, its state.json not yet.
    os.utime(run / "state.json", (now - 100, now - 100))
    with pytest.raises(UserError, match="is being written"):
        carry.pack_run(run, tmp_path / "carried", wait_s=0)
    assert not (tmp_path / "carried" / "demo").exists()
    assert hidden(tmp_path / "carried") == []
    # A folder copied without keeping times (cp -r) is settled once its files are not fresh.
    old = now - carry.QUIET_S - 10
    for name in ("config.yaml", "best.keras", "last.keras", "history.csv"):
        os.utime(run / name, (old, old))
    assert carry.pack_run(run, tmp_path / "carried", wait_s=0)["epoch"] == 2


def test_pack_errors(tmp_path):
    with pytest.raises(UserError, match="nope does not exist"):
        carry.pack_run(tmp_path / "nope", tmp_path / "carried")
    run = fake_run(tmp_path / "demo")
    (run / "state.json").unlink()
    with pytest.raises(UserError, match="not a run folder train.py wrote: it lacks state.json"):
        carry.pack_run(run, tmp_path / "carried")
    with pytest.raises(UserError, match="may hold letters"):
        carry.pack_run(fake_run(tmp_path / "ok"), tmp_path / "carried", name="../escape")


def test_unpack_checks_sums_and_refuses_to_overwrite(tmp_path):
    run = fake_run(tmp_path / "demo", epoch=3)
    carry.pack_run(run, tmp_path / "carried")
    out, manifest = carry.unpack_run("demo", tmp_path / "runs" / "demo", tmp_path / "carried")
    assert manifest["epoch"] == 3 and sorted(p.name for p in out.iterdir()) == sorted(
        carry.CARRIED_FILES
    )
    for name in ("last.keras", "history.csv", "state.json"):
        assert (out / name).read_bytes() == (run / name).read_bytes(), name
    with pytest.raises(UserError, match="already holds a run; pass --overwrite"):
        carry.unpack_run("demo", out, tmp_path / "carried")
    (out / "eval").mkdir()
    carry.unpack_run("demo", out, tmp_path / "carried", overwrite=True)
    assert not (out / "eval").exists() and read_state(out)["epoch"] == 3
    # The folder's path works as well as its name.
    carry.unpack_run(str(tmp_path / "carried" / "demo"), tmp_path / "b", tmp_path / "elsewhere")
    assert read_state(tmp_path / "b")["epoch"] == 3

    (tmp_path / "carried" / "demo" / "last.keras").write_bytes(b"version https://git-lfs")
    with pytest.raises(UserError, match="last.keras is missing or does not match its sha256"):
        carry.unpack_run("demo", tmp_path / "c", tmp_path / "carried")
    assert not (tmp_path / "c").exists()
    with pytest.raises(UserError, match="no carried run 'other'"):
        carry.unpack_run("other", tmp_path / "d", tmp_path / "carried")


def test_list_and_drop(tmp_path):
    root = tmp_path / "carried"
    assert carry.list_carried(root) == []
    carry.pack_run(fake_run(tmp_path / "a", epoch=2, epochs=12), root)
    carry.pack_run(fake_run(tmp_path / "b", epoch=12, epochs=12), root)  # all epochs done
    carry.pack_run(fake_run(tmp_path / "c", epoch=7, epochs=12, wait=20), root)  # early-stopped
    listed = {m["name"]: (m["epoch"], m["ended"]) for m in carry.list_carried(root)}
    assert listed == {"a": (2, False), "b": (12, True), "c": (7, True)}

    with pytest.raises(UserError, match="'a' has not ended .*epoch 2 of 12.*--force"):
        carry.drop_carried("a", root)
    # Resumed elsewhere and finished there: the run folder says so, the pack does not.
    with pytest.raises(UserError, match=f"nor has {tmp_path / 'a'}"):
        carry.drop_carried("a", root, run_dir=tmp_path / "a")
    with pytest.raises(UserError, match="has not ended"):
        carry.drop_carried("a", root, run_dir=tmp_path / "nowhere")
    carry.drop_carried("b", root)
    carry.drop_carried("c", root)
    carry.pack_run(fake_run(tmp_path / "d", epoch=2, epochs=12), root)
    fake_run(tmp_path / "d", epoch=12, epochs=12)  # resumed there to its end
    carry.drop_carried("d", root, run_dir=tmp_path / "d")
    carry.drop_carried("a", root, force=True)
    assert carry.list_carried(root) == [] and list(root.iterdir()) == []
    with pytest.raises(UserError, match="no carried run 'a'"):
        carry.drop_carried("a", root)


@pytest.mark.slow
def test_command_line(tmp_path):
    carried = str(tmp_path / "carried")
    result = run_python(
        ["tools/carry_run.py", "pack", str(tmp_path / "nope"), "--carried", carried]
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"error: run folder {tmp_path / 'nope'} does not exist"
    )
    carry.pack_run(fake_run(tmp_path / "demo"), carried)
    result = run_python(["tools/carry_run.py", "list", "--carried", carried])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "demo: epoch 2 of 12, best val_accuracy 0.5200, running" in result.stdout


@pytest.mark.slow
def test_a_carried_run_resumes_in_a_fresh_checkout(tmp_path):
    # Session 1: two epochs, with the data folder of this machine.
    run = tmp_path / "session1" / "runs" / "demo"
    args = demo_args(run, "--epochs", "2", "--quiet", "--no-eval", "--data-root", str(tmp_path))
    result = run_python([*args, "--set", "train.tensorboard=false"])
    assert result.returncode == 0, result.stderr[-3000:]
    # Counters that must travel: one more epoch without improvement stops the run.
    state = read_state(run)
    patience = load_config(run / "config.yaml")["train"]["early_stopping"]["patience"]
    state["callbacks"]["early_stopping"].update(wait=patience - 1, best=-1.0)
    write_json(run / "state.json", state)
    carried = tmp_path / "session1" / "carried"
    result = run_python(["tools/carry_run.py", "pack", str(run), "--carried", str(carried)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "epoch 2 of 2" in result.stdout

    # Session 2: a fresh checkout holds only the committed pack.
    fresh = tmp_path / "session2"
    shutil.copytree(carried / "demo", fresh / "carried" / "demo")
    out = fresh / "runs" / "demo"
    result = run_python(
        [
            "tools/carry_run.py",
            "unpack",
            "demo",
            "--carried",
            str(fresh / "carried"),
            "--out",
            str(out),
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert load_config(out / "config.yaml")["dataset"]["data_root"] is None
    # The documented command: the run's own config, no --data-root for the synthetic set.
    # Where JAX is installed (CI; requirements-dev.txt) it runs as on the GPU machine
    # (tools/gpu/train.sh carried:NAME): JAX backend, no TensorFlow, OpenVINO or matplotlib.
    # So a last.keras written by TensorFlow, Adam's state included, resumes there, and the
    # whole training path and the final evaluation run without TensorFlow.
    resume = ["--config", str(out / "config.yaml"), "--out", str(out), "--resume", "--epochs", "4"]
    on_gpu_machine = backend_available("jax")
    if on_gpu_machine:
        result = run_python(["-c", GPU_MACHINE, *resume, "--quiet"], backend="jax")
    else:
        result = run_python(["train.py", *resume, "--quiet"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "eval" / "metrics.json").is_file()
    if on_gpu_machine:
        assert "with the onnxruntime engine" in result.stdout
    assert f"resuming {out} at epoch 3 of 4" in result.stdout
    assert "Epoch 3: early stopping" in result.stdout

    packed_lines = (carried / "demo" / "history.csv").read_text().splitlines()
    resumed_lines = (out / "history.csv").read_text().splitlines()
    assert len(packed_lines) == 3 and resumed_lines[:3] == packed_lines
    assert [row["epoch"] for row in read_history(out / "history.csv")] == [1, 2, 3]
    # Adam's step count went on from the packed one (2 epochs' steps, then a third epoch's).
    import keras

    steps = [
        int(keras.saving.load_model(path, compile=True).optimizer.iterations.numpy())
        for path in (carried / "demo" / "last.keras", out / "last.keras")
    ]
    assert steps[0] > 0 and steps[1] == steps[0] * 3 // 2, steps
    final = read_state(out)
    assert final["epoch"] == 3
    assert final["callbacks"]["early_stopping"] == {"wait": patience, "best": -1.0}
    assert final["best"]["value"] >= state["best"]["value"]


@pytest.mark.parametrize(
    "name",
    [m["name"] for m in carry.list_carried(ROOT / "carried")]
    or [pytest.param(None, marks=pytest.mark.skip(reason="no run is carried in carried/"))],
)
def test_the_committed_carried_runs_are_whole(tmp_path, name):
    """Each run carried in this checkout unpacks (every sha256 matches) and its files agree."""
    out, manifest = carry.unpack_run(name, tmp_path / name, carried_root=ROOT / "carried")
    state = read_state(out)
    assert manifest["epoch"] == state["epoch"]
    assert [row["epoch"] for row in read_history(out / "history.csv")] == list(
        range(1, state["epoch"] + 1)
    )
    cfg = load_config(out / "config.yaml")
    assert cfg["dataset"]["data_root"] is None
    assert manifest["epochs"] == cfg["train"]["epochs"]
    assert manifest["ended"] == carry.run_ended(state, cfg)
    for model in ("best.keras", "last.keras"):
        assert (out / model).read_bytes()[:2] == b"PK", f"{model} is not a .keras (zip) file"

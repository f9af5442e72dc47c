"""Carrying a training run from one work session to the next through git.

A run of the paper's recipe takes longer than a session, and the next
session may start on a fresh clone that holds only what was committed.
`pack_run` copies what `train.py --resume` needs into a tracked folder
`carried/<name>/`:

    config.yaml    the run's resolved config, data_root cleared (--data-root sets it again)
    best.keras     best checkpoint-monitor value so far
    last.keras     last finished epoch, with optimizer state
    history.csv    one row per epoch
    state.json     epochs done, best value, the callbacks' counters
    manifest.json  name, source, date, code commit, epoch, best, sha256 and size of each file
    README.md      the same for people, with the commands to continue

`unpack_run` checks the sha256 sums and restores a run folder that
`train.py --resume` continues; `list_carried` and `drop_carried` show and
remove carried runs. A pack replaces the previous one in two renames: it
is written under a hidden temporary name first, never half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from training.run_folder import (
    BEST_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    LAST_FILE,
    STATE_FILE,
    clear_run,
    holds_run,
    read_state,
)
from utils.config import load_config, save_config
from utils.errors import UserError
from utils.io import atomic_path, read_json, write_json, write_text

ROOT = Path(__file__).resolve().parents[1]
CARRIED_ROOT = ROOT / "carried"
# In the order the trainer writes them each epoch: state.json last.
CARRIED_FILES = (CONFIG_FILE, BEST_FILE, LAST_FILE, HISTORY_FILE, STATE_FILE)
MANIFEST_FILE = "manifest.json"
README_FILE = "README.md"
# An epoch's files are written within seconds; older files are settled.
QUIET_S = 30.0


def check_name(name: str) -> str:
    """`name` if it can be a carried run's folder name (letters, digits, '_', '-', '.')."""
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name):
        raise UserError(
            f"carried run name '{name}' may hold letters, digits, '_', '-' and '.' only"
        )
    return name


def sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_ended(state: dict, cfg: dict) -> bool:
    """True if the run has done all its epochs or early stopping has stopped it."""
    train = cfg["train"]
    wait = state.get("callbacks", {}).get("early_stopping", {}).get("wait") or 0
    return state["epoch"] >= train["epochs"] or wait >= train["early_stopping"]["patience"]


def _settled(copy_dir: Path) -> bool:
    """True unless the copies caught an epoch half-written (a file newer than state.json, and fresh)."""
    mtimes = {name: (copy_dir / name).stat().st_mtime for name in CARRIED_FILES}
    newest = max(mtimes.values())
    return mtimes[STATE_FILE] >= newest or time.time() - newest > QUIET_S


def _copy_settled(run_dir: Path, copy_dir: Path, wait_s: float) -> None:
    """Copy the run's files so that they belong to one epoch, even while train.py is running."""
    deadline = time.monotonic() + wait_s
    while True:
        before = (run_dir / STATE_FILE).stat()
        for name in reversed(CARRIED_FILES):  # state.json first: nothing older than it is missed
            source = run_dir / name
            shutil.copyfile(source, copy_dir / name)
            times = source.stat()
            os.utime(copy_dir / name, ns=(times.st_atime_ns, times.st_mtime_ns))
        after = (run_dir / STATE_FILE).stat()
        unchanged = (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
        if unchanged and _settled(copy_dir):
            return
        if time.monotonic() >= deadline:
            raise UserError(
                f"run folder {run_dir} is being written (an epoch is ending); pack again in a minute"
            )
        time.sleep(2.0)


def _replace_dir(new: Path, dest: Path) -> None:
    """Put folder `new` at `dest`, replacing a previous `dest` (kept hidden until the swap is done)."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        os.replace(dest, old)
    os.replace(new, dest)
    if old is not None:
        shutil.rmtree(old)


def _code_commit() -> str | None:
    """The short commit of this checkout, or None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def read_manifest(pack_dir: Path) -> dict | None:
    """The manifest.json of a carried run, or None."""
    return read_json(pack_dir / MANIFEST_FILE)


def describe(manifest: dict) -> str:
    """One line: 'epoch 30 of 150, best val_accuracy 0.9653, running'."""
    best = manifest["best"]
    value = "none" if best.get("value") is None else f"{best['value']:.4f}"
    status = "ended" if manifest["ended"] else "running"
    return f"epoch {manifest['epoch']} of {manifest['epochs']}, best {best['monitor']} {value}, {status}"


def readme_text(manifest: dict) -> str:
    """README.md of a carried run: what it is and the commands to continue it."""
    name = manifest["name"]
    run = f"runs/{name}"
    code = f" (code {manifest['commit']})" if manifest.get("commit") else ""
    return f"""# Carried run `{name}`: {describe(manifest)}

Packed {manifest["packed_at"]} from `{manifest["source"]}`{code} by
`python tools/carry_run.py pack`. These are the files `train.py --resume`
needs, carried through git from one work session to the next; `{MANIFEST_FILE}`
holds the sha256 of each. `config.yaml` has no `data_root`: give `--data-root`.

To continue it (a fresh clone is fine):

    python tools/carry_run.py unpack {name}
    nohup nice -n 19 python train.py --config {run}/config.yaml --data-root DIR \\
        --out {run} --resume --quiet --stop-at HH:MM > {run}.log 2>&1 &

`--stop-at` (the time to leave for packing and CI) ends it after the last
epoch that fits. At the end of the session, pack and commit it again:

    python tools/carry_run.py pack {run}
    git add carried/{name} && git commit -m "carry {name}"

Once it has ended: `python tools/carry_run.py drop {name}` and commit the removal.
"""


def pack_run(
    run_dir: str | os.PathLike,
    carried_root: str | os.PathLike = CARRIED_ROOT,
    name: str | None = None,
    force: bool = False,
    wait_s: float = 120.0,
) -> dict:
    """Copy the resumable files of `run_dir` into `carried_root/<name>`; returns the manifest.

    Refuses to replace a carried copy that is further along unless `force`.
    Waits up to `wait_s` seconds for an epoch that is being written to finish.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist")
    missing = [n for n in CARRIED_FILES if not (run_dir / n).is_file()]
    if missing:
        raise UserError(
            f"{run_dir} is not a run folder train.py wrote: it lacks {', '.join(missing)}"
        )
    name = check_name(name or run_dir.resolve().name)
    carried_root = Path(carried_root)
    carried_root.mkdir(parents=True, exist_ok=True)
    dest = carried_root / name

    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.packing-", dir=carried_root))
    try:
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; a pack is an ordinary folder
        _copy_settled(run_dir, tmp, wait_s)
        state = json.loads((tmp / STATE_FILE).read_text(encoding="utf-8"))
        previous = read_manifest(dest)
        if previous and previous["epoch"] > state["epoch"] and not force:
            raise UserError(
                f"{dest} holds epoch {previous['epoch']}, later than epoch {state['epoch']} "
                f"of {run_dir}; pass --force to replace it"
            )
        cfg = load_config(tmp / CONFIG_FILE)
        # The data folder is the machine's, not the run's: --data-root sets it on resume.
        if cfg.get("dataset", {}).get("data_root") is not None:
            cfg["dataset"]["data_root"] = None
            save_config(cfg, tmp / CONFIG_FILE)
        manifest = {
            "name": name,
            "source": str(run_dir),
            "packed_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": _code_commit(),
            "epoch": state["epoch"],
            "epochs": cfg["train"]["epochs"],
            "ended": run_ended(state, cfg),
            "best": state["best"],
            "files": {
                n: {"bytes": (tmp / n).stat().st_size, "sha256": sha256(tmp / n)}
                for n in CARRIED_FILES
            },
        }
        write_json(tmp / MANIFEST_FILE, manifest)
        write_text(tmp / README_FILE, readme_text(manifest))
        _replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def find_carried(name: str, carried_root: str | os.PathLike = CARRIED_ROOT) -> Path:
    """The folder of carried run `name` (a name under carried_root, or a carried folder's path)."""
    for path in (Path(carried_root) / name, Path(name)):
        if (path / MANIFEST_FILE).is_file():
            return path
    raise UserError(
        f"no carried run '{name}' in {carried_root} (expected {name}/{MANIFEST_FILE}); "
        "see `python tools/carry_run.py list`"
    )


def unpack_run(
    name: str,
    out: str | os.PathLike | None = None,
    carried_root: str | os.PathLike = CARRIED_ROOT,
    overwrite: bool = False,
) -> tuple[Path, dict]:
    """Restore carried run `name` into `out` (default runs/<name>); returns (out, manifest).

    Every file must match its sha256 (a Git LFS pointer or a damaged copy does not).
    """
    pack = find_carried(name, carried_root)
    manifest = read_manifest(pack)
    for file_name, recorded in manifest["files"].items():
        path = pack / file_name
        if not path.is_file() or sha256(path) != recorded["sha256"]:
            raise UserError(
                f"{path} is missing or does not match its sha256 in {MANIFEST_FILE}; "
                "check out the carried folder again"
            )
    out = Path(out) if out is not None else Path("runs") / manifest["name"]
    if out.exists() and not out.is_dir():
        raise UserError(f"run folder {out} is a file, expected a folder")
    if holds_run(out):
        if not overwrite:
            raise UserError(
                f"run folder {out} already holds a run; pass --overwrite to replace it "
                f"with the carried epoch {manifest['epoch']}"
            )
        clear_run(out)
    for file_name in CARRIED_FILES:  # state.json last: a broken-off restore is not resumable
        with atomic_path(out / file_name) as tmp:
            shutil.copyfile(pack / file_name, tmp)
    return out, manifest


def list_carried(carried_root: str | os.PathLike = CARRIED_ROOT) -> list[dict]:
    """The manifests of the carried runs, by name (a folder without one: {'name', 'broken'})."""
    root = Path(carried_root)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found.append(read_manifest(path) or {"name": path.name, "broken": True})
    return found


def _run_folder_ended(run_dir: Path) -> bool:
    """True if `run_dir` is a run folder whose run has ended (the pack resumed here and finished)."""
    try:
        state = read_state(run_dir)
        return state is not None and run_ended(state, load_config(run_dir / CONFIG_FILE))
    except (OSError, ValueError, KeyError, UserError):
        return False


def drop_carried(
    name: str,
    carried_root: str | os.PathLike = CARRIED_ROOT,
    force: bool = False,
    run_dir: str | os.PathLike | None = None,
) -> Path:
    """Remove carried run `name` once it has ended: in the pack, or in `run_dir`, the folder it
    was resumed in and finished (any time with `force`); returns its folder."""
    pack = Path(carried_root) / check_name(name)
    if not pack.is_dir():
        raise UserError(f"no carried run '{name}' in {carried_root}")
    manifest = read_manifest(pack)
    finished_here = run_dir is not None and _run_folder_ended(Path(run_dir))
    if manifest and not manifest["ended"] and not finished_here and not force:
        where = f" nor has {run_dir}" if run_dir is not None else ""
        raise UserError(
            f"carried run '{name}' has not ended ({describe(manifest)}){where}; "
            "pass --force to drop it anyway"
        )
    gone = Path(tempfile.mkdtemp(prefix=f".{name}.dropped-", dir=pack.parent))
    os.replace(pack, gone)
    shutil.rmtree(gone)
    return pack

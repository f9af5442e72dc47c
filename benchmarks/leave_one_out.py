"""Leave one camera out: how a fundus recipe does on a camera it never trained on.

    python benchmarks/leave_one_out.py --config configs/fundus.yaml --name fundus \\
        --data-root DIR                                   # CHASE_DB1, HRF, STARE, DRIVE in turn
    python benchmarks/leave_one_out.py --config configs/fundus.yaml --name fundus_zoom \\
        --set "train.scale_augment=[0.7,2.2]" --set train.camera_augment=0.5 --data-root DIR
    python benchmarks/leave_one_out.py ... --left-out chase_db1 hrf --stop-at 22:30   # resumable

For each dataset left out (`--left-out`, default chase_db1 hrf stare drive), in
`OUT/NAME/<dataset>/`:

1. `train/`: train.py on the recipe's other datasets (`dataset.datasets`), everything else
   as the recipe says, for a fixed schedule of `--epochs` (default 6) that is the same for
   every recipe compared; no test evaluation. The starting weights must not have seen the
   camera left out: where the recipe's `train.init_weights` did (the DRIVE weights, with
   DRIVE left out), `--init-for DATASET=PATH` replaces them (default: DRIVE left out starts
   from weights/sa_unetv2_stare_fold5.keras).
2. `weights/`: tools/ship_weights.py --no-eval: the kept checkpoint (best val_f1 on the
   validation photographs of the trained datasets) and the threshold chosen on the same
   photographs, recorded in its yaml as predict.py reads it. Nothing of the camera left out
   chooses anything.
3. `pred/<variant>/`: predict.py on the test photographs of the dataset left out, as released
   (HRF at full size; STARE's 20), once per prediction variant: `auto` (`--scale auto`, the
   FOV-diameter rule alone, with the chosen threshold), `at0.5` (`--scale auto --threshold
   0.5`), and any `--variant NAME="predict.py flags"` (e.g. `--variant "vessels=--scale
   vessels"`, predict.py's default scale for weights that record their vessels' calibre, as
   these do).
4. `eval/<variant>/`: evaluate.py --predictions with the dataset's own config: F1 inside
   the FOV, as every figure of docs/cameras.md.
5. With `--all-photographs VARIANT`: `pred_train/<variant>/` and `eval_train/<variant>/`, the
   same on the dataset's training photographs (evaluate.py --split train), which the weights
   never saw either. The summary's column "VARIANT, all" is then the mean over every labelled
   photograph of the camera left out (CHASE_DB1 28, HRF 42, DRIVE 40; STARE's test split is
   already its 20): more photographs, so less hangs on a few and on how one observer drew them.

Then `OUT/NAME/summary.md` and `summary.json`: per dataset left out and variant, the mean FOV
F1 over its test photographs, and the mean over the datasets left out, the figure a change of
recipe is judged by (never a trained camera's test split). Every step is skipped when its
result is there (training too once `weights/` holds its weights, so `train/` may then be
deleted), and train.py resumes, so the same command continues after `--stop-at` or a crash,
and a new `--variant` costs its predictions only. Each step runs as its own process, printed
first, exactly as a user would type it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, markdown_table  # noqa: E402
from utils.cli import run_cli  # noqa: E402
from utils.errors import UserError  # noqa: E402

LEFT_OUT = ("chase_db1", "hrf", "stare", "drive")
EVAL_CONFIGS = {
    "drive": ["--config", "configs/drive.yaml"],
    "stare": ["--config", "configs/stare.yaml", "--fold", "all"],  # none of the 20 trained on
    "chase_db1": ["--config", "configs/chase_db1.yaml"],
    "hrf": ["--config", "configs/hrf.yaml"],
}
ALL_IN_TEST_SPLIT = {"stare"}  # scored with --fold all: its test split is every labelled photograph
DEFAULT_INIT_FOR = {"drive": "weights/sa_unetv2_stare_fold5.keras"}
BASE_VARIANTS = {"auto": ["--scale", "auto"], "at0.5": ["--scale", "auto", "--threshold", "0.5"]}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="the recipe: a fundus config")
    parser.add_argument("--name", required=True, help="the recipe's name: OUT/NAME/")
    parser.add_argument("--data-root", help="dataset folder (default: $SAUNETV2_DATA_ROOT)")
    parser.add_argument("--out", default="runs/leave_one_out", help="(default: runs/leave_one_out)")
    parser.add_argument(
        "--left-out",
        nargs="+",
        default=list(LEFT_OUT),
        choices=LEFT_OUT,
        metavar="DATASET",
        help=f"datasets to leave out in turn (default: {' '.join(LEFT_OUT)})",
    )
    parser.add_argument("--epochs", type=int, default=6, help="the fixed schedule (default 6)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe change (train.py --set)",
    )
    parser.add_argument(
        "--init-for",
        action="append",
        default=[],
        metavar="DATASET=PATH",
        help="starting weights when DATASET is left out (default: drive="
        f"{DEFAULT_INIT_FOR['drive']})",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar='NAME="FLAGS"',
        help="another way to run predict.py on the same weights, e.g. 's538=--scale 0.585'",
    )
    parser.add_argument(
        "--all-photographs",
        action="append",
        default=[],
        metavar="VARIANT",
        help="also predict and score the training photographs of the dataset left out with this "
        "variant, for the mean over all its photographs (repeatable)",
    )
    parser.add_argument(
        "--record", default="benchmarks/results/leave_one_out",
        help="where the small results (weights, metrics, summary) are kept, to commit: a fresh "
        "clone continues from them (default: benchmarks/results/leave_one_out)",
    )  # fmt: skip
    parser.add_argument("--stop-at", help="train.py --stop-at: stop training before then")
    parser.add_argument("--dry-run", action="store_true", help="print the steps, run none")
    return parser.parse_args(argv)


def prediction_variants(items: list[str]) -> dict[str, list[str]]:
    """{variant name: predict.py flags}: `auto`, `at0.5` and each NAME=FLAGS given."""
    variants = dict(BASE_VARIANTS)
    for item in items:
        name, sep, flags = item.partition("=")
        name = name.strip()
        if not sep or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise UserError(
                f"--variant takes NAME=\"predict.py flags\" with a plain NAME, got '{item}'"
            )
        if name in variants:
            raise UserError(f"--variant {name} is given twice (or is a built-in variant)")
        variants[name] = shlex.split(flags)
    return variants


def datasets_seen(weights: str | os.PathLike) -> set[str] | None:
    """The datasets whose photographs trained `weights`, from the config beside them
    (weights/<stem>.yaml, or a run folder's config.yaml); None where no config says."""
    from data.readers import FUNDUS_DATASETS, fundus_datasets
    from utils.config import load_config

    path = Path(weights)
    for cfg_path in (path.with_suffix(".yaml"), path.parent / "config.yaml"):
        if cfg_path.is_file():
            dataset = load_config(cfg_path).get("dataset", {})
            name = dataset.get("name")
            if name == "fundus":
                return set(fundus_datasets(dataset.get("datasets")))
            return {name} if name in FUNDUS_DATASETS else set()
    return None


def starting_weights(left_out: str, init: str | None, init_for: dict[str, str]) -> str | None:
    """The recipe's starting weights, or the replacement for `left_out` where those saw it;
    a UserError where no weights that never saw it are known."""
    if init is None:
        return None
    seen = datasets_seen(ROOT / init if not Path(init).is_absolute() else init)
    if seen is not None and left_out not in seen:
        return init
    replacement = init_for.get(left_out)
    if replacement is None:
        what = "were trained on it" if seen else "record no datasets (no yaml beside them)"
        raise UserError(
            f"the recipe's train.init_weights {init} {what}; pass --init-for {left_out}=PATH "
            "with weights that never saw it"
        )
    seen = datasets_seen(ROOT / replacement if not Path(replacement).is_absolute() else replacement)
    if seen is None or left_out in seen:
        raise UserError(
            f"--init-for {left_out}={replacement}: these weights saw {left_out} or record no "
            "datasets; expected weights whose yaml names what trained them"
        )
    return replacement


def link_photographs(name: str, data_root: str, folder: Path, split: str = "test") -> list[Path]:
    """The dataset's `split` photographs in `folder` under their released names (links to the
    files, copies out of an archive), for predict.py."""
    from data.readers import photograph_files
    from data.trees import DirTree
    from utils.io import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for _, tree, rel in photograph_files(name, data_root, split=split):
        path = folder / Path(rel).name
        if not path.exists():
            if isinstance(tree, DirTree):
                path.symlink_to(Path(tree.where(rel)).resolve())
            else:
                with atomic_path(path) as tmp:
                    Path(tmp).write_bytes(tree.read(rel))
        paths.append(path)
    return paths


# What `--record` keeps of OUT/NAME: a few MB per dataset left out (weights of 1 MB), enough to
# score new prediction variants and rebuild the summary without training again.
RECORD_PATTERNS = ("recipe.json", "summary.md", "summary.json", "*/weights/*.keras",
                   "*/weights/*.yaml", "*/weights/*.json", "*/weights/*.csv", "*/eval/*/metrics.json",
                   "*/eval_train/*/metrics.json")  # fmt: skip


def copy_missing(source: Path, dest: Path) -> list[Path]:
    """Copy the RECORD_PATTERNS files of `source` that `dest` lacks (or holds older copies of:
    the summary) into `dest`; returns the files copied."""
    import shutil

    copied = []
    for pattern in RECORD_PATTERNS:
        for path in sorted(source.glob(pattern)):
            target = dest / path.relative_to(source)
            if target.exists() and (not path.name.startswith("summary") or
                                    target.read_bytes() == path.read_bytes()):  # fmt: skip
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copied.append(target)
    return copied


def check_recipe(out: Path, recipe: dict) -> None:
    """Write OUT/NAME/recipe.json, or refuse a recipe other than the one already there."""
    path = out / "recipe.json"
    if path.is_file():
        kept = json.loads(path.read_text(encoding="utf-8"))
        if kept != recipe:
            changed = sorted(k for k in recipe if kept.get(k) != recipe[k])
            raise UserError(
                f"{path} records another recipe under this --name ({', '.join(changed)} differ); "
                "give the new recipe its own --name"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")


def training_ended(run_dir: Path, epochs: int) -> bool:
    """True if the run in `run_dir` has done `epochs` epochs or early stopping has ended it."""
    from training.carry import run_ended
    from training.config import resolve_run_config
    from training.run_folder import read_state

    state = read_state(run_dir)
    if state is None:
        return False
    train = resolve_run_config(run_dir / "config.yaml")["train"]
    return run_ended(state, {"train": {**train, "epochs": epochs}})


def run_step(command: list[str], dry_run: bool) -> None:
    """Print `command` as a user would type it, then run it; a failure stops the protocol."""
    print("+ " + shlex.join(command), flush=True)
    if dry_run:
        return
    code = subprocess.call(command, cwd=ROOT)
    if code != 0:
        raise UserError(f"the step above exited with status {code}; fix it and rerun this command")


def fov_f1(metrics_path: Path) -> dict | None:
    """{f1, n}: the mean FOV F1 over the test images in an evaluate.py metrics.json, or None."""
    if not metrics_path.is_file():
        return None
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    return {"f1": metrics["fov"]["mean"]["f1"], "n": metrics["n_images"]}


def second_observer_f1(metrics_path: Path) -> float | None:
    """The second observer's mean FOV F1 against the first in an evaluate.py metrics.json (the
    human baseline on the camera left out), or None where the dataset has one observer."""
    if not metrics_path.is_file():
        return None
    second = json.loads(metrics_path.read_text(encoding="utf-8")).get("second_observer") or {}
    return (second.get("fov") or {}).get("mean", {}).get("f1")


def all_photographs_f1(folder: Path, variant: str) -> dict | None:
    """{f1, n}: the mean FOV F1 over the test and training photographs of the dataset left out
    in `folder` (STARE's test split holds all 20), or None while either is missing."""
    test = fov_f1(folder / "eval" / variant / "metrics.json")
    if folder.name in ALL_IN_TEST_SPLIT:
        return test
    train = fov_f1(folder / "eval_train" / variant / "metrics.json")
    if test is None or train is None:
        return None
    n = test["n"] + train["n"]
    return {"f1": (test["f1"] * test["n"] + train["f1"] * train["n"]) / n, "n": n}


def all_column(variant: str) -> str:
    return f"{variant}, all"


def left_out_row(folder: Path, variants: dict[str, list[str]], all_photographs=()) -> dict:
    """One summary row: per variant its FOV F1 (or None), per `all_photographs` variant its F1
    over all the photographs, the threshold and kept epoch, and the second observer's F1 where
    evaluate.py scored one."""
    row = {variant: fov_f1(folder / "eval" / variant / "metrics.json") for variant in variants}
    for variant in all_photographs:
        row[all_column(variant)] = all_photographs_f1(folder, variant)
    for variant in variants:
        second = second_observer_f1(folder / "eval" / variant / "metrics.json")
        if second is not None:
            row["second_observer"] = second
            break
    record = next(iter(sorted((folder / "weights").glob("*.eval.json"))), None)
    if record is not None:
        data = json.loads(record.read_text(encoding="utf-8"))
        row["threshold"] = data["threshold_choice"]["threshold"]
        row["epoch"] = data["checkpoint"]["epoch"]
    return row


def summarise(
    out: Path, left_out: list[str], variants: dict[str, list[str]], all_photographs=()
) -> dict:
    """{rows: {dataset: row}, mean: {column: mean F1 over the datasets left out}} (a mean over
    all of them only: None while any is missing); columns: the variants, then "VARIANT, all"
    for each of `all_photographs`."""
    rows = {name: left_out_row(out / name, variants, all_photographs) for name in left_out}
    mean = {}
    for variant in [*variants, *map(all_column, all_photographs)]:
        scores = [rows[name][variant] for name in left_out]
        mean[variant] = (
            sum(s["f1"] for s in scores) / len(scores)
            if all(s is not None for s in scores)
            else None
        )
    return {"rows": rows, "mean": mean}


def summary_markdown(
    name: str, summary: dict, variants: dict[str, list[str]], epochs: int, all_photographs=()
) -> str:
    def cell(score):
        return f"{score['f1']:.4f} ({score['n']})" if score else "-"

    scored = [*variants, *map(all_column, all_photographs)]
    columns = [("left out", lambda r: r["dataset"])]
    columns += [(v, lambda r, v=v: cell(r[v])) for v in scored]
    columns += [
        ("threshold", lambda r: f"{r['threshold']:.2f}" if "threshold" in r else "-"),
        ("kept epoch", lambda r: str(r.get("epoch", "-"))),
        (
            "second observer",
            lambda r: f"{r['second_observer']:.4f}" if "second_observer" in r else "-",
        ),
    ]
    rows = [{"dataset": d, **row} for d, row in summary["rows"].items()]
    rows.append(
        {"dataset": "**mean**", **{v: None for v in scored}}
        | {v: {"f1": m, "n": len(rows)} for v, m in summary["mean"].items() if m is not None}
    )
    flags = "; ".join(
        f"`{v}`: predict.py {shlex.join(f) or '(defaults)'}" for v, f in variants.items()
    )
    if all_photographs:
        flags += (
            "; `VARIANT, all`: the same variant's mean over every labelled photograph of the "
            "camera left out, its training split too (none trained on)"
        )
    return (
        f"# Leave one camera out: {name}\n\n{epochs} epochs per dataset left out; FOV F1, mean over "
        f"the test photographs of the dataset left out (their number); {flags}. {machine()}.\n\n"
        + markdown_table(columns, rows)
        + "\n"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    from data.readers import fundus_datasets, resolve_data_root
    from training.config import resolve_run_config
    from training.run_folder import holds_run, read_state

    data_root = str(resolve_data_root(args.data_root))
    if args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    cfg = resolve_run_config(args.config, args.set)
    if cfg["dataset"]["name"] != "fundus":
        raise UserError(f"{args.config} is not a fundus recipe (dataset.name: fundus)")
    trained = fundus_datasets(cfg["dataset"]["datasets"])
    init_for = dict(DEFAULT_INIT_FOR)
    for item in args.init_for:
        key, sep, path = item.partition("=")
        if not sep or key not in LEFT_OUT:
            raise UserError(
                f"--init-for takes DATASET=PATH with one of {', '.join(LEFT_OUT)}, got '{item}'"
            )
        init_for[key] = path
    variants = prediction_variants(args.variant)
    unknown = [v for v in args.all_photographs if v not in variants]
    if unknown:
        raise UserError(
            f"--all-photographs {unknown[0]} is not a variant; expected one of {', '.join(variants)}"
        )
    all_photographs = list(dict.fromkeys(args.all_photographs))
    out = Path(args.out) / args.name
    record = Path(args.record) / args.name
    python = sys.executable
    if not args.dry_run:
        restored = copy_missing(record, out)
        if restored:
            print(f"{len(restored)} files restored from {record}")
        check_recipe(out, {"config": args.config, "set": args.set, "epochs": args.epochs,
                           "init_for": init_for})  # fmt: skip

    for left in args.left_out:
        if left not in trained:
            raise UserError(f"{left} is not among the recipe's datasets ({', '.join(trained)})")
        folder = out / left
        others = [d for d in trained if d != left]
        run_dir = folder / "train"
        command = [
            python, "train.py", "--config", args.config, *sum((["--set", s] for s in args.set), []),
            "--set", f"dataset.datasets=[{','.join(others)}]", "--epochs", str(args.epochs),
            "--data-root", data_root, "--out", str(run_dir), "--no-eval", "--quiet",
        ]  # fmt: skip
        init = starting_weights(left, cfg["train"]["init_weights"], init_for)
        if init != cfg["train"]["init_weights"]:
            command += ["--set", f"train.init_weights={init}"]
        stem = f"{args.name}_no_{left}"
        weights = folder / "weights" / f"{stem}.keras"
        shipped = (folder / "weights" / f"{stem}.eval.json").is_file()
        if shipped:
            print(f"{left}: weights in {weights.parent}")
            command = None  # the run folder is no longer needed once its weights are out
        elif training_ended(run_dir, args.epochs):
            print(f"{left}: training has ended ({read_state(run_dir)['epoch']} epochs)")
            command = None
        elif read_state(run_dir) is not None:
            command.append("--resume")
        elif holds_run(run_dir):
            command.append("--overwrite")  # stopped before its first epoch ended: nothing to keep
        if command is not None:
            if args.stop_at:
                command += ["--stop-at", args.stop_at]
            run_step(command, args.dry_run)
            if not args.dry_run and not training_ended(run_dir, args.epochs):
                print(f"{left}: training stopped before its end; rerun this command to continue it")
                break

        if not shipped:
            run_step(
                [python, "tools/ship_weights.py", "--run", str(run_dir), "--stem", stem,
                 "--out", str(folder / "weights"), "--data-root", data_root, "--no-eval"],
                args.dry_run,
            )  # fmt: skip
        splits = [("test", list(variants))]
        if all_photographs and left not in ALL_IN_TEST_SPLIT:
            splits.append(("train", all_photographs))
        for split, names in splits:
            suffix = "" if split == "test" else "_train"
            photos = [] if args.dry_run else link_photographs(
                left, data_root, folder / f"photographs{suffix}", split=split
            )  # fmt: skip
            for variant in names:
                metrics = folder / f"eval{suffix}" / variant / "metrics.json"
                if metrics.is_file():
                    continue
                pred = folder / f"pred{suffix}" / variant
                inputs = [str(p) for p in photos] or [str(folder / f"photographs{suffix}")]
                run_step(
                    [python, "predict.py", "--weights", str(weights), "--out", str(pred),
                     "--save", "binary", *variants[variant], *inputs],
                    args.dry_run,
                )  # fmt: skip
                run_step(
                    [python, "evaluate.py", *EVAL_CONFIGS[left], "--split", split,
                     "--predictions", str(pred), "--data-root", data_root,
                     "--out", str(metrics.parent), "--no-images"],
                    args.dry_run,
                )  # fmt: skip

    # Every dataset left out so far, not only this call's: the summary is the recipe's.
    scored = [d for d in LEFT_OUT if (out / d / "eval").is_dir()]
    summary = summarise(out, scored or list(args.left_out), variants, all_photographs)
    text = summary_markdown(args.name, summary, variants, args.epochs, all_photographs)
    if not args.dry_run:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.md").write_text(text, encoding="utf-8")
        kept = {"name": args.name, "config": args.config, "set": args.set, "epochs": args.epochs,
                "variants": variants, "all_photographs": all_photographs, **summary}  # fmt: skip
        (out / "summary.json").write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")
        copied = copy_missing(out, record)
        if copied:
            print(f"{len(copied)} files recorded in {record} (commit them to continue elsewhere)")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

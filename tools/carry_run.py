"""Carry a training run across work sessions through git (see training/carry.py).

python tools/carry_run.py pack runs/drive_random      # end of session; then commit carried/
python tools/carry_run.py unpack drive_random         # start of session: -> runs/drive_random
python tools/carry_run.py list                        # carried runs and their epochs
python tools/carry_run.py drop drive_random           # once it has ended (here or in runs/); commit the removal
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.cli import run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--carried",
        default=str(ROOT / "carried"),
        help="folder of carried runs (default: carried/ in the repository)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pack = commands.add_parser("pack", parents=[common], help="copy a run's resumable files")
    pack.add_argument("run", help="run folder written by train.py")
    pack.add_argument("--name", help="carried name (default: the run folder's name)")
    pack.add_argument(
        "--force", action="store_true", help="replace a carried copy that is further along"
    )
    unpack = commands.add_parser("unpack", parents=[common], help="restore a run folder")
    unpack.add_argument("name", help="carried run name (see list)")
    unpack.add_argument("--out", help="run folder (default: runs/<name>)")
    unpack.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    commands.add_parser("list", parents=[common], help="show the carried runs")
    drop = commands.add_parser("drop", parents=[common], help="remove a carried run")
    drop.add_argument("name", help="carried run name")
    drop.add_argument(
        "--run",
        help="the folder it was resumed in (default: runs/<name>): a run that ended there "
        "may be dropped",
    )
    drop.add_argument("--force", action="store_true", help="drop it even if it has not ended")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from training import carry

    if args.command == "pack":
        manifest = carry.pack_run(args.run, args.carried, name=args.name, force=args.force)
        dest = Path(args.carried) / manifest["name"]
        print(f"packed {args.run} into {dest}: {carry.describe(manifest)}")
        print(f"commit it: git add {dest} && git commit -m 'carry {manifest['name']}'")
    elif args.command == "unpack":
        out, manifest = carry.unpack_run(args.name, args.out, args.carried, args.overwrite)
        print(f"restored {out}: {carry.describe(manifest)}")
        print(
            f"continue it: python train.py --config {out}/config.yaml --data-root DIR "
            f"--out {out} --resume --quiet"
        )
    elif args.command == "list":
        found = carry.list_carried(args.carried)
        if not found:
            print(f"no carried runs in {args.carried}")
        for manifest in found:
            if manifest.get("broken"):
                print(f"{manifest['name']}: no {carry.MANIFEST_FILE} (not a carried run)")
            else:
                print(
                    f"{manifest['name']}: {carry.describe(manifest)}; "
                    f"packed {manifest['packed_at']} from {manifest['source']}"
                )
    elif args.command == "drop":
        run_dir = Path(args.run) if args.run else ROOT / "runs" / Path(args.name).name
        pack = carry.drop_carried(args.name, args.carried, force=args.force, run_dir=run_dir)
        print(f"dropped {pack}; commit the removal: git add -A {pack} && git commit")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

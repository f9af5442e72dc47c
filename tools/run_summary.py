"""Summarize a run's history: epochs, learning-rate drops, the kept epoch, the stopping counters.

    python tools/run_summary.py runs/drive_random               # Markdown, a row every 10 epochs
    python tools/run_summary.py runs/drive_random --every 5
    python tools/run_summary.py weights/sa_unetv2_drive_interim --json

RUN is a folder train.py wrote (config.yaml, history.csv) or a shipped weights
stem (weights/<stem>.yaml and weights/<stem>.history.csv). Needs no Keras.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.cli import run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", help="run folder, or weights/<stem> of a shipped set")
    parser.add_argument("--every", type=int, default=10, help="a table row every N epochs")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from training.run_summary import markdown, summarize_run
    from utils.checks import check_positive_int

    check_positive_int(args.every, "--every")
    summary, history = summarize_run(args.run)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{args.run}\n\n{markdown(summary, history, args.every)}", end="")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

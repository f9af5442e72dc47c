"""A cohort split over processes or machines: predict.py --shard K/N and --merge-shards.

Each photograph belongs to exactly one of N shards, chosen by a hash (SHA-1) of
its path relative to the folder it was found under (the file name for a file
named directly): not its place in the list, so every process, on any machine
and however its file system lists the folders, takes the same share, and N
processes given the same inputs cover the cohort exactly once. Python's own
`hash` is salted per process and would not do.

Shard K of N writes its measurements to `measurements.shard-K-of-N.csv`, so
shards running at once never write the same file; `merge_measurements`
joins the N files into `measurements.csv`, one row per photograph sorted by
its output name.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from pathlib import Path, PurePosixPath

from inference.pipeline import MEASUREMENTS_CSV, Job, csv_text
from utils.errors import UserError

SHARD_FILE = re.compile(r"measurements\.shard-(\d+)-of-(\d+)\.csv")


def parse_shard(text: str) -> tuple[int, int]:
    """A --shard value "K/N" -> (K, N), 1 <= K <= N; UserError for anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    index, count = (int(match[1]), int(match[2])) if match else (0, 0)
    if not 1 <= index <= count:
        raise UserError(
            f"--shard must be K/N, shard K of N with whole numbers 1 <= K <= N (such as 2/4), "
            f"got {text!r}"
        )
    return index, count


def shard_key(job: Job) -> str:
    """The path that decides a photograph's shard: relative to the folder it was found under
    ("left/a.jpg"), the file name for a file named directly ("a.jpg"); POSIX separators."""
    return (PurePosixPath(job.name).parent / job.path.name).as_posix()


def shard_of(job: Job, count: int) -> int:
    """The shard (1..count) `job` belongs to: SHA-1 of `shard_key`, modulo `count`."""
    digest = hashlib.sha1(shard_key(job).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_shard(jobs: list[Job], shard: tuple[int, int]) -> list[Job]:
    """The jobs of shard (K, N), in their order in `jobs`."""
    index, count = shard
    return [job for job in jobs if shard_of(job, count) == index]


def shard_measurements_name(shard: tuple[int, int]) -> str:
    """The file shard (K, N) appends its measurement rows to, in the output folder."""
    return f"measurements.shard-{shard[0]}-of-{shard[1]}.csv"


def merge_measurements(out_dir: str | Path) -> tuple[int, int]:
    """Join `out_dir`'s measurements.shard-K-of-N.csv (K = 1..N) into measurements.csv, one row
    per photograph sorted by output name (the `image` column), replacing any measurements.csv
    there; the shard files stay. Returns (N, rows).

    UserError when there are no shard files, shard files of more than one N, a shard missing,
    headers that differ, a row cut short or in a file of the wrong shard, or a photograph in
    two rows."""
    from utils.io import write_text

    out_dir = Path(out_dir)
    files = shard_files(out_dir)
    count = len(files)
    header, rows, where = None, {}, {}
    for index, path in enumerate(files, 1):
        text = path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            raise UserError(
                f"{path} ends in a row cut short (a killed shard); run shard {index}/{count} "
                "again before merging"
            )
        lines = list(csv.reader(io.StringIO(text)))
        if not lines or "image" not in lines[0] or "input" not in lines[0]:
            raise UserError(f"{path} is not a measurements file (no image and input columns)")
        if header is None:
            header = lines[0]
            image, source = header.index("image"), header.index("input")
        elif lines[0] != header:
            raise UserError(
                f"{path} has other columns than {files[0].name}; merge shards of one run"
            )
        for row in lines[1:]:
            if len(row) != len(header):
                raise UserError(f"{path} has a row of {len(row)} fields, expected {len(header)}")
            name = row[image]
            if name in rows:
                raise UserError(
                    f"photograph {name} has two rows, in {where[name].name} and {path.name}: the "
                    "shards ran on different inputs; run them again on the same ones"
                )
            belongs = shard_of(Job(Path(row[source]), name), count)
            if belongs != index:
                raise UserError(
                    f"photograph {name} in {path.name} belongs to shard {belongs}/{count}, not "
                    f"{index}/{count}; that file is not the output of predict.py --shard "
                    f"{index}/{count}"
                )
            rows[name], where[name] = row, path
    write_text(out_dir / MEASUREMENTS_CSV, csv_text([header, *(rows[n] for n in sorted(rows))]))
    return count, len(rows)


def shard_files(out_dir: Path) -> list[Path]:
    """`out_dir`'s measurements.shard-K-of-N.csv for K = 1..N, in that order; UserError for a
    missing folder, none, a K outside 1..N, files of two N or a missing K."""
    if not out_dir.is_dir():
        raise UserError(f"--merge-shards: folder {out_dir} does not exist")
    found = {}
    for path in out_dir.iterdir():
        match = SHARD_FILE.fullmatch(path.name)
        if match:
            found[int(match[1]), int(match[2])] = path
    if not found:
        raise UserError(
            f"{out_dir} holds no measurements.shard-K-of-N.csv; run predict.py --shard K/N "
            f"--measure --out {out_dir} first"
        )
    foreign = sorted(path.name for (k, n), path in found.items() if not 1 <= k <= n)
    if foreign:
        raise UserError(f"{out_dir / foreign[0]} names no shard K of N (1 <= K <= N); move it away")
    counts = sorted({count for _, count in found})
    if len(counts) > 1:
        raise UserError(
            f"{out_dir} holds shard files of {' and '.join(map(str, counts))} shards; move all "
            "but one set away and merge again"
        )
    count = counts[0]
    missing = [k for k in range(1, count + 1) if (k, count) not in found]
    if missing:
        names = ", ".join(shard_measurements_name((k, count)) for k in missing)
        raise UserError(
            f"{out_dir} lacks {names}: run {'shards' if len(missing) > 1 else 'shard'} "
            f"{', '.join(f'{k}/{count}' for k in missing)} with --measure before merging"
        )
    return [found[k, count] for k in range(1, count + 1)]

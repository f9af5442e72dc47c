"""inference/shards.py and predict.py --shard / --merge-shards: a stable share of the cohort per
shard, concurrent shards equal to one run after the merge, a rerun shard doing its share only,
the merge's refusals."""

from __future__ import annotations

import csv
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inference.pipeline import Job, collect_inputs, measurement_columns
from inference.shards import (
    merge_measurements,
    parse_shard,
    select_shard,
    shard_key,
    shard_measurements_name,
    shard_of,
)
from tests.helpers import ROOT
from tests.test_predict import KINDS, photo, predict, tiny_weights  # noqa: F401 - a fixture
from utils.errors import UserError


def names(jobs):
    return sorted(job.name for job in jobs)


def test_a_shard_is_the_same_share_whatever_the_order_and_the_shards_cover_the_cohort_once(tmp_path):
    """Files found in folders (not decoded: empty files with image names); N = 1..5 shards of the
    same list, of the list reversed and shuffled, and of a copy of the folder elsewhere (another
    machine's mount) are the same shares, disjoint, and together the whole cohort."""
    cohort = tmp_path / "here" / "cohort"
    (cohort / "left").mkdir(parents=True)
    for i in range(60):
        (cohort / ("left" if i % 3 else "") / f"p{i:02d}.jpg").touch()
    jobs = collect_inputs([str(cohort)], recursive=True)
    elsewhere = shutil.copytree(cohort, tmp_path / "there" / "mnt" / "cohort")
    moved = collect_inputs([str(elsewhere)], recursive=True)
    shuffled = jobs[::-1]
    random.Random(0).shuffle(shuffled)
    for count in range(1, 6):
        shares = [names(select_shard(jobs, (k, count))) for k in range(1, count + 1)]
        assert sorted(sum(shares, [])) == names(jobs)  # each photograph in exactly one share
        for other in (jobs[::-1], shuffled, moved):
            assert [names(select_shard(other, (k, count))) for k in range(1, count + 1)] == shares
        assert all(len(share) >= 60 / count / 2 for share in shares), [len(s) for s in shares]
    # The share keeps the list's order; a file named directly goes by its name, like the same
    # file found at the top of a folder.
    share = select_shard(jobs, (2, 3))
    assert share == [job for job in jobs if job in share]
    top = next(job for job in jobs if "/" not in job.name)
    named = collect_inputs([str(top.path)])
    assert shard_of(named[0], 7) == shard_of(top, 7)
    # Pinned: a change of the hash would move photographs of a cohort half done between shards.
    pinned = [shard_of(Job(Path(f"/any/p{i}.png"), f"p{i}"), 2) for i in range(8)]
    assert pinned == [2, 1, 1, 2, 2, 1, 2, 1]
    assert shard_key(Job(Path("/x/cohort/left/p1.png"), "left/p1")) == "left/p1.png"
    assert shard_key(Job(Path("/x/cohort/p1.png"), "p1")) == "p1.png"


@pytest.mark.parametrize("text", ["0/2", "3/2", "x", "2", "1/0", "-1/2", "1.5/2", "1/2/3", ""])
def test_bad_shard_values_are_one_sentence(text):
    with pytest.raises(UserError, match=r"^--shard must be K/N, shard K of N with whole numbers"):
        parse_shard(text)


def test_shard_values():
    assert parse_shard("1/1") == (1, 1) and parse_shard(" 3 / 4") == (3, 4)
    assert shard_measurements_name((3, 4)) == "measurements.shard-3-of-4.csv"


def _cohort(folder, count=6):
    """`count` tiny photographs p0.png ... in `folder` (both shards of 2 get some: asserted)."""
    for i in range(count):
        photo(folder / f"p{i}.png", size=48, seed=i)
    jobs = collect_inputs([str(folder)])
    assert all(select_shard(jobs, (k, 2)) for k in (1, 2))
    return jobs


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


FAST = ["--engine", "keras", "--scale", "1", "--measure"]


@pytest.mark.slow
def test_two_concurrent_shards_merged_equal_one_run(tmp_path, tiny_weights):  # noqa: F811
    """Shards 1/2 and 2/2 as two processes at once, into one --out, then --merge-shards: the same
    pictures (byte for byte) and the same measurements.csv rows as one run without --shard."""
    folder = tmp_path / "cohort"
    jobs = _cohort(folder, 5)
    photo(folder / "left" / "q.png", size=48, seed=9)
    args = ["--weights", str(tiny_weights), *FAST, "--recursive"]
    sharded, single = tmp_path / "sharded", tmp_path / "single"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "predict.py", *args, "--shard", f"{k}/2", "--out", str(sharded),
             str(folder)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for k in (1, 2)
    ]
    for k, process in enumerate(processes, 1):
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        share = len(select_shard(collect_inputs([str(folder)], recursive=True), (k, 2)))
        assert f"shard {k}/2: {share} of 6 photographs" in stdout
        assert f"{share} done, 0 skipped" in stdout
    result = subprocess.run(
        [sys.executable, "predict.py", *args, "--out", str(single), str(folder)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (sharded / "measurements.csv").exists()
    code = subprocess.run(
        [sys.executable, "predict.py", "--merge-shards", str(sharded)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert code.returncode == 0, code.stderr
    assert code.stdout.strip() == f"6 photographs from 2 shard files merged into {sharded / 'measurements.csv'}"

    def files(out):
        return {
            p.relative_to(out).as_posix(): p.read_bytes()
            for p in out.rglob("*")
            if p.is_file() and not p.name.startswith("measurements")
        }

    assert len(files(single)) == 6 * len(KINDS) and files(sharded) == files(single)
    merged, one = _rows(sharded / "measurements.csv"), _rows(single / "measurements.csv")
    assert merged[0] == one[0] == measurement_columns()
    assert merged[1:] == sorted(one[1:]) and [r[0] for r in merged[1:]] == sorted(
        [job.name for job in jobs] + ["left/q"]
    )


def test_a_rerun_shard_finishes_its_own_share_only(tmp_path, tiny_weights, capsys):  # noqa: F811
    """Shard 1/2 run, then left as a killed run leaves it (a picture missing, the last row cut,
    a temporary file): the rerun redoes only what it lacks, never a photograph of shard 2, and its
    file has each of its photographs once."""
    folder = tmp_path / "cohort"
    jobs = _cohort(folder)
    mine, theirs = select_shard(jobs, (1, 2)), select_shard(jobs, (2, 2))
    out = tmp_path / "out"
    args = ["--weights", tiny_weights, *FAST, "--shard", "1/2", "--out", out, folder]
    code, stdout, _ = predict(args, capsys)
    assert code == 0 and f"{len(mine)} done, 0 skipped" in stdout, stdout
    log = out / "measurements.shard-1-of-2.csv"
    assert sorted(row[0] for row in _rows(log)[1:]) == names(mine)
    assert not (out / "measurements.csv").exists()
    assert not [p for job in theirs for p in out.glob(f"{job.name}_*")]

    (out / f"{mine[0].name}_fov.png").unlink()  # killed before its last picture was renamed
    text = log.read_text()
    log.write_text(text[: text.rstrip("\n").rfind("\n") + 10])  # the last row cut short
    last = _rows(log)[-1][0]
    (out / f".{mine[0].name}_fov.abc123.tmp.png").write_bytes(b"half")
    code, stdout, _ = predict(args, capsys)
    redone = {mine[0].name, last}
    assert code == 0 and f"{len(redone)} done, {len(mine) - len(redone)} skipped" in stdout, stdout
    assert sorted(row[0] for row in _rows(log)[1:]) == names(mine)  # once each
    assert not [p for job in theirs for p in out.glob(f"{job.name}_*")]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert {p.name for p in out.glob("*.csv")} == {log.name}


def _write_shard_files(out, count, photographs=6, header=None):
    """Measurement files as shards 1..count of `photographs` photographs would write them."""
    header = header or measurement_columns()
    jobs = [Job(Path(f"/data/p{i}.png"), f"p{i}") for i in range(photographs)]
    out.mkdir(parents=True, exist_ok=True)
    for k in range(1, count + 1):
        rows = [[job.name, str(job.path), *["1"] * (len(header) - 2)]
                for job in select_shard(jobs, (k, count))]  # fmt: skip
        with open(out / shard_measurements_name((k, count)), "w", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows([header, *rows])
    return jobs


def test_merge_sorts_the_rows_of_all_shards(tmp_path, capsys):
    _write_shard_files(tmp_path, 3, photographs=12)
    from predict import main
    from utils.cli import run_cli

    assert run_cli(main, ["--merge-shards", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("12 photographs from 3 shard files merged into")
    rows = _rows(tmp_path / "measurements.csv")
    assert rows[0] == measurement_columns()
    assert [r[0] for r in rows[1:]] == sorted(f"p{i}" for i in range(12))
    assert merge_measurements(tmp_path) == (3, 12)  # again: the same, the shard files stay


def _missing(out):
    _write_shard_files(out, 3)
    (out / shard_measurements_name((2, 3))).unlink()


def _two_counts(out):
    _write_shard_files(out, 2)
    _write_shard_files(out, 3)


def _twice(out):
    """p0.png in shard 2, and a p0.tif in shard 1: the shards ran on different inputs."""
    _write_shard_files(out, 2)
    extra = _rows(out / shard_measurements_name((2, 2)))[1]
    assert extra[0] == "p0"
    suffix = next(s for s in (".jpg", ".tif", ".bmp", ".gif") if shard_of(Job(Path(f"p0{s}"), "p0"), 2) == 1)
    extra[1] = f"/data/p0{suffix}"
    with open(out / shard_measurements_name((1, 2)), "a", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow(extra)


def _other_header(out):
    _write_shard_files(out, 2)
    header = [*measurement_columns()[:-1], "something_else"]
    with open(out / shard_measurements_name((2, 2)), "w") as handle:
        handle.write(",".join(header) + "\n")


def _cut(out):
    _write_shard_files(out, 2)
    path = out / shard_measurements_name((2, 2))
    path.write_text(path.read_text()[:-5])


def _wrong_shard(out):
    _write_shard_files(out, 2)
    (out / shard_measurements_name((1, 2))).rename(out / "first")
    (out / shard_measurements_name((2, 2))).rename(out / shard_measurements_name((1, 2)))
    (out / "first").rename(out / shard_measurements_name((2, 2)))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda out: out.mkdir(), "holds no measurements.shard-K-of-N.csv; run predict.py --shard K/N --measure"),
        (_missing, "lacks measurements.shard-2-of-3.csv: run shard 2/3 with --measure before merging"),
        (_two_counts, "holds shard files of 2 and 3 shards; move all but one set away"),
        (_twice, "photograph p0 has two rows, in measurements.shard-1-of-2.csv and measurements.shard-2-of-2.csv"),
        (_other_header, "measurements.shard-2-of-2.csv has other columns than measurements.shard-1-of-2.csv"),
        (_cut, "ends in a row cut short (a killed shard); run shard 2/2 again before merging"),
        (_wrong_shard, "in measurements.shard-1-of-2.csv belongs to shard 2/2, not 1/2"),
        (lambda out: None, "--merge-shards: folder"),
    ],
)  # fmt: skip
def test_merge_refuses_an_incomplete_or_mixed_set(tmp_path, capsys, make, message):
    from predict import main
    from utils.cli import run_cli

    out = tmp_path / "out"
    make(out)
    assert run_cli(main, ["--merge-shards", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "measurements.csv").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "name the image files or folders to predict (or --merge-shards OUT)"),
        (["--merge-shards", "out", "photo.png"], "give it no INPUT and no --shard"),
    ],
)
def test_inputs_or_a_merge(argv, message, capsys):
    from predict import main
    from utils.cli import run_cli

    assert run_cli(main, argv) == 2
    assert message in capsys.readouterr().err

"""benchmarks/common.py: the timings summary and the Markdown tables the benchmark scripts print."""

import pytest

from benchmarks.common import machine, markdown_table, timing_summary


def test_timing_summary_against_a_baseline():
    summary = timing_summary({"plain": [4.0, 2.0, 3.0], "fast": [1.0, 1.5, 0.5, 9.0]}, "plain")
    assert summary["plain"] == {"median": 3.0, "min": 2.0, "max": 4.0, "speedup": 1.0, "runs": 3}
    assert summary["fast"]["median"] == 1.25
    assert summary["fast"]["speedup"] == pytest.approx(3.0 / 1.25)
    assert (summary["fast"]["min"], summary["fast"]["max"], summary["fast"]["runs"]) == (
        0.5,
        9.0,
        4,
    )
    with pytest.raises(ValueError, match="baseline 'keras'"):
        timing_summary({"plain": [1.0]}, "keras")


def test_markdown_table():
    columns = [("name", lambda r: r["n"]), ("s", lambda r: f"{r['s']:.2f}")]
    table = markdown_table(columns, [{"n": "a", "s": 1.234}, {"n": "b", "s": 0.5}])
    assert table.splitlines() == ["| name | s |", "| --- | --- |", "| a | 1.23 |", "| b | 0.50 |"]
    assert markdown_table(columns, []).count("\n") == 1


def test_machine_names_the_cores():
    assert machine().endswith("CPU cores")

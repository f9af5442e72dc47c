"""What the benchmark scripts share: the machine's description, timings against a baseline, Markdown tables.

The scripts put the project root on `sys.path` themselves (they run as
`python benchmarks/NAME.py`), then import this module as `benchmarks.common`.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Callable, Sequence


def machine() -> str:
    """The processor (its model name where Linux gives one) and the number of CPU cores, for a
    table's header."""
    return f"{_processor_name()}, {os.cpu_count()} CPU cores"


def _processor_name() -> str:
    """The CPU's model name from /proc/cpuinfo ("AMD EPYC 7B13"), else Python's guess ("x86_64")."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name") and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timing_summary(times: dict[str, list[float]], baseline: str) -> dict[str, dict[str, float]]:
    """Per name: median, min and max seconds, and the speed-up over `baseline` (its median / this median)."""
    if baseline not in times:
        raise ValueError(f"no timings for the baseline '{baseline}'")
    base = statistics.median(times[baseline])
    summary = {}
    for name, seconds in times.items():
        median = statistics.median(seconds)
        summary[name] = {
            "median": median,
            "min": min(seconds),
            "max": max(seconds),
            "speedup": base / median,
            "runs": len(seconds),
        }
    return summary


Column = tuple[str, Callable[[dict], str]]


def markdown_table(columns: Sequence[Column], rows: Sequence[dict]) -> str:
    """A Markdown table: one (header, cell function of a row) per column, one line per row."""
    lines = [
        "| " + " | ".join(header for header, _ in columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]
    lines += ["| " + " | ".join(cell(row) for _, cell in columns) + " |" for row in rows]
    return "\n".join(lines)

"""Shared test fixtures: repository root on sys.path, real-data location, small sizes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# The dataset folders a real-data root may hold; each test skips when its own one is absent.
REAL_DATASETS = ("DRIVE", "STARE", "CHASE_DB1", "HRF", "RITE", "HRF-AV")


def _real_data_root() -> Path | None:
    env = os.environ.get("SAUNETV2_DATA_ROOT")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "data")
    for path in candidates:
        if any((path / name).is_dir() for name in REAL_DATASETS):
            return path
    return None


REAL_DATA_ROOT = _real_data_root()


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    """The folder holding DRIVE/, STARE/, CHASE_DB1/ and/or HRF/; skips the test where it is
    absent (`real_chase_root`, `real_hrf_root`: where that dataset's folder is)."""
    if REAL_DATA_ROOT is None:
        pytest.skip(
            "real DRIVE/STARE/CHASE_DB1/HRF data not found: set SAUNETV2_DATA_ROOT or place it at ../shared/data"
        )
    return REAL_DATA_ROOT


def _real_dataset(root: Path, name: str) -> Path:
    if not (root / name).is_dir():
        pytest.skip(f"real {name} data not found: expected {root / name}")
    return root


@pytest.fixture(scope="session")
def real_chase_root(real_data_root) -> Path:
    """The real-data root when it holds CHASE_DB1/; skips the test otherwise."""
    return _real_dataset(real_data_root, "CHASE_DB1")


@pytest.fixture(scope="session")
def real_hrf_root(real_data_root) -> Path:
    """The real-data root when it holds HRF/; skips the test otherwise."""
    return _real_dataset(real_data_root, "HRF")


@pytest.fixture(scope="session")
def real_rite_root(real_data_root) -> Path:
    """The real-data root when it holds RITE/; skips the test otherwise."""
    return _real_dataset(real_data_root, "RITE")


@pytest.fixture(scope="session")
def real_hrf_av_root(real_hrf_root) -> Path:
    """The real-data root when it holds HRF/ and HRF-AV/; skips the test otherwise."""
    return _real_dataset(real_hrf_root, "HRF-AV")


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory) -> None:
    """Keep test caches out of the user's home unless CI chose a folder.

    The JAX-backend tests (subprocesses, which inherit this environment) share a
    persistent XLA compilation cache there: on the CPU, JAX compiles every weight
    initializer of a model separately (92 compilations, about 35 s, for the three
    models of complexity.py), and every later process building the same model
    reads them back.
    """
    if "SAUNETV2_CACHE" not in os.environ:
        os.environ["SAUNETV2_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(Path(os.environ["SAUNETV2_CACHE"]) / "jax")
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"


def pytest_collection_modifyitems(items) -> None:
    """Mark the tests that read real data, and put the long tests first.

    Tests that read the real DRIVE/STARE files carry the `realdata` mark
    (`-m "not realdata"`). The `slow` tests (15 s to four minutes each) run first so
    that `-n 2` (with `--dist worksteal`, pyproject.toml) ends on short tests: a long
    one left for last keeps one worker busy while the other has nothing to do.
    """
    for item in items:
        if "real_data_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# Where Python, pytest and linters keep their own files, and a user's own environment.
_NOT_OURS = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache"}


def _repository_files(skip: set[Path]) -> set[Path]:
    """Every path in the repository tree but tool caches and the folders in `skip`."""
    found = set()
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder)
        dirs[:] = [d for d in dirs if d not in _NOT_OURS and here / d not in skip]
        found.update(here / name for name in dirs + files)
    return found


@pytest.fixture(scope="session", autouse=True)
def _nothing_written_into_the_repository():
    """Fail the run if a test leaves a file in the repository tree.

    The suite must pass, and change nothing, whatever a user's earlier commands left in
    `runs/`, `predictions/` or the cache: tests write to their tmp_path only. Run folders that
    exist at the start are not looked into (a training run may be going on in one).
    """
    skip = {path for path in (ROOT / "runs").glob("*") if path.is_dir()}
    cache = os.environ.get("SAUNETV2_CACHE")
    if cache:
        skip.add(Path(cache).resolve())
    before = _repository_files(skip)
    yield
    new = sorted(str(path.relative_to(ROOT)) for path in _repository_files(skip) - before)
    assert not new, f"tests wrote into the repository tree: {', '.join(new[:10])}"

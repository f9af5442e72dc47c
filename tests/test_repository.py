"""The repository as a user meets it: the README's commands, the files it names, how it is run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
ENTRY_POINTS = sorted(ROOT.glob("*.py"))

# A repository path as the text writes it: `docs/paper.md`, configs/drive.yaml, tools/gpu/train.sh.
PATH = re.compile(
    r"(?<![\w./-])((?:docs|configs|weights|tools|benchmarks|data|models|inference|training|tests)"
    r"/[\w./-]*\w)"
)
# A markdown link to a file of the repository, with an optional #anchor.
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def _named_paths(text: str) -> set[str]:
    """Repository paths named in `text`, leaving out patterns (<stem>, *, {x}) and run outputs."""
    found = set()
    for path in PATH.findall(text):
        if any(c in path for c in "<>*{}") or path.endswith((".", "/")):
            continue
        found.add(path)
    return found


def _slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {
        _slug(line.lstrip("#"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }


def test_readme_is_at_most_15000_characters():
    size = len(README.read_bytes())
    assert size <= 15_000, f"README.md is {size} bytes"


def test_the_cameras_guide_stays_a_guide():
    """docs/cameras.md answers a user's questions; the experiment record has its own page."""
    size = len((ROOT / "docs" / "cameras.md").read_text(encoding="utf-8"))
    assert size <= 20_000, f"docs/cameras.md is {size} characters"


def test_every_file_the_documentation_names_exists():
    missing = []
    for doc in [README, *DOCS, ROOT / "weights" / "README.md"]:
        text = doc.read_text(encoding="utf-8")
        for path in _named_paths(text):
            # Paths are written from the repository root; links inside docs/ are relative.
            if not (ROOT / path).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {path}")
        for target, anchor in LINK.findall(text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file = (doc.parent / target).resolve()
            if not file.exists():
                missing.append(f"{doc.relative_to(ROOT)}: link {target}")
            elif anchor and file.suffix == ".md" and anchor[1:] not in _anchors(file):
                missing.append(f"{doc.relative_to(ROOT)}: link {target}{anchor}")
    assert not missing, missing


def test_every_file_a_help_text_or_docstring_names_exists():
    missing = []
    for source in [*ENTRY_POINTS, *sorted(ROOT.glob("*/*.py"))]:
        if ".venv" in source.parts:
            continue
        text = source.read_text(encoding="utf-8")
        spec = "SPEC" ".md"  # the project's internal notes, not part of the repository
        assert spec not in text, f"{source.name} cites {spec}: cite docs/paper.md"
        for path in _named_paths(text):
            if path.endswith((".md", ".yaml", ".json", ".sh")) and not (ROOT / path).exists():
                missing.append(f"{source.relative_to(ROOT)}: {path}")
    assert not missing, missing


def test_the_readme_starts_with_two_commands_that_ci_runs():
    text = README.read_text(encoding="utf-8")
    block = text.split("## Start here", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2, commands
    assert "train.py --config configs/demo.yaml" in commands[0]
    assert "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "## Start here" in ci and "README.md" in ci  # CI runs that block, not its own copy


def test_the_project_runs_from_its_clone_and_is_not_a_package():
    """No `pip install .`: pyproject.toml holds tool settings only, and the README says so."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "project" not in pyproject and "build-system" not in pyproject
    assert "runs from its clone" in README.read_text(encoding="utf-8")


def test_ci_script_is_valid_bash_and_finds_the_readme_block():
    """.ci/run's extraction of the Start-here block gives the README's two lines, verbatim."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    extract = script.split("block=$(", 1)[1].split("README.md)", 1)[0] + "README.md"
    result = subprocess.run(
        ["bash", "-c", extract], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    text = README.read_text(encoding="utf-8")
    for line in result.stdout.strip().splitlines():
        assert f"\n{line}\n" in text
    assert len(result.stdout.strip().splitlines()) == 2
    syntax = subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")], capture_output=True)
    assert syntax.returncode == 0

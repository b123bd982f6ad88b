"""The repository is self-contained: no code, test, build or CI file reads anything outside it.

Two checks, each able to fail on its own:

1. a scan of every tracked text file that code runs or builds from (.py, .json, Makefile, .toml,
   .yml/.yaml, .sh, .cfg/.ini, .ci/*) for the ways a path escapes the checkout: a relative
   `../shared`, an absolute path into the machine's work area, and `Path(__file__).parents[N]` /
   `.parent` chains that climb above the repository root from where the file sits;
2. a copy of the repository (its tracked and new files only) placed where nothing sits beside it,
   running a representative set of tests that load the vendored CML contract and the simulator.
   A path reaching outside the checkout finds nothing there and the run fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve().relative_to(REPO)

#: Files the code runs or builds from (documentation may mention paths freely).
SCANNED_SUFFIXES = {".py", ".json", ".toml", ".yml", ".yaml", ".sh", ".cfg", ".ini", ".txt"}
SCANNED_NAMES = {"Makefile"}
SCANNED_DIRS = {".ci"}

_SIBLING = re.compile(r"\.\./+shared\b|[\"']shared[\"']\s*/\s*[\"']cml[\"']")
_WORK_AREA = re.compile(r"(?<![\w.])/" + r"work/")
_PARENTS = re.compile(r"\.parents\[(\d+)\]")
_PARENT_CHAIN = re.compile(r"__file__\)(?:\.resolve\(\))?((?:\.parent)+)\b")

#: A representative run: the vendored contract's checker, the simulator, the client over it.
REPRESENTATIVE = ["tests/cml/test_conformance.py", "tests/cml/test_cml_endpoints.py"]


def repository_files(root: Path = REPO) -> list[Path]:
    """Tracked files plus new, not ignored ones (relative); every file under `root` without git."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "node_modules", "cdk.out", ".pytest_cache", "__pycache__"}
        return [p.relative_to(root) for p in root.rglob("*") if p.is_file() and not skip & set(p.parts)]
    return [Path(name) for name in listed.split("\0") if name and (root / name).is_file()]


def _scanned(relative: Path) -> bool:
    return (
        relative.suffix in SCANNED_SUFFIXES
        or relative.name in SCANNED_NAMES
        or bool(relative.parts and relative.parts[0] in SCANNED_DIRS)
    )


def escapes(relative: Path, text: str) -> list[str]:
    """Every place in `text` (the file at `relative` in the repository) that reads outside it."""
    found: list[str] = []
    # From a file at depth d (dirs between it and the root), parents[d] is the root: more escapes.
    depth = len(relative.parts) - 1
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{relative}:{number}"
        if _SIBLING.search(line):
            found.append(f"{where}: reads a directory beside the checkout: {line.strip()[:120]}")
        if _WORK_AREA.search(line):
            found.append(f"{where}: absolute path into the work area: {line.strip()[:120]}")
        for match in _PARENTS.finditer(line):
            if int(match.group(1)) > depth:
                found.append(f"{where}: parents[{match.group(1)}] climbs above the repository root")
        for match in _PARENT_CHAIN.finditer(line):
            if match.group(1).count(".parent") - 1 > depth:
                found.append(f"{where}: a .parent chain climbs above the repository root")
    return found


def test_no_file_reads_outside_the_repository():
    # This file is left out: its samples below are the escapes on purpose.
    problems = [
        problem
        for relative in repository_files()
        if _scanned(relative) and relative != THIS
        for problem in escapes(relative, (REPO / relative).read_text(errors="replace"))
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("relative", "line"),
    [
        ("tests/cml/x.py", 'SPEC = Path(__file__).resolve().parents[3] / "cml" / "spec.json"'),
        ("tests/cml/x.py", 'SPEC = Path(__file__).resolve().parent.parent.parent.parent / "spec.json"'),
        ("tests/cml/x.py", 'SPEC = Path(__file__).parents[2] / ".." / "shared" / "cml" / "spec.json"'),
        ("Makefile", "SPEC ?= ../" + "shared/cml/spec.json"),
        ("local/x.py", 'SPEC = "/' + 'work/shared/cml/spec.json"'),
    ],
)
def test_the_scan_catches_each_way_out(relative, line):
    assert escapes(Path(relative), line), line


@pytest.mark.parametrize(
    ("relative", "line"),
    [
        ("tests/cml/x.py", "REPO = Path(__file__).resolve().parents[2]"),
        ("local/cmlsim/x.py", 'SPEC = Path(__file__).resolve().parent / "openapi" / "spec.json"'),
        ("infra/x.py", 'ROOT = Path(__file__).parent.parent / "statemachines"'),
    ],
)
def test_the_scan_leaves_paths_inside_the_repository_alone(relative, line):
    assert not escapes(Path(relative), line), line


@pytest.mark.spawns
def test_a_copy_with_nothing_beside_it_passes_its_contract_tests(tmp_path):
    """The repository copied alone into an empty folder runs the tests that load the vendored
    spec and the simulator: anything they read from beside the checkout is not there."""
    clone = tmp_path / "alone" / "repo"
    for relative in repository_files():
        target = clone / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target)
    # Only the copy's own sources: the editable install of the checkout must not answer imports.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "CML_", "PYTHONPATH"))}
    env["PYTHONPATH"] = os.pathsep.join(str(clone / part) for part in ("functions", "local", "."))
    where = subprocess.run(
        [sys.executable, "-c", "import cmlsim, cmlcm, cml_contract; print(cmlsim.OPENAPI_SUBSET)"],
        cwd=clone,
        env={**env, "PYTHONPATH": env["PYTHONPATH"] + os.pathsep + str(clone / "tests" / "cml")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(clone)), f"the copy imported the simulator from {where}"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *REPRESENTATIVE],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]

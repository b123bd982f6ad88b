"""The Docker-free layer bundler: Lambda-targeted pip flags, output layout, loud failures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cmlcm_infra import bundling

pytestmark = pytest.mark.infra


class _Recorder:
    """Stands in for subprocess.run: records commands, answers with `returncode`."""

    def __init__(self, returncode: int) -> None:
        self.returncode = returncode
        self.commands: list[list[str]] = []

    def __call__(self, command, **_):
        self.commands.append(command)
        return subprocess.CompletedProcess(command, self.returncode)


def test_bundler_installs_lambda_wheels_into_the_layer_python_dir(tmp_path, monkeypatch):
    # Given a pip that succeeds
    run = _Recorder(returncode=0)
    monkeypatch.setattr(bundling.subprocess, "run", run)
    # When the layer is bundled
    bundled = bundling.LocalPipLayerBundler(Path("/src")).try_bundle(str(tmp_path), None)
    # Then wheels for CPython 3.12 on manylinux x86_64 go to <output>/python, binaries only
    assert bundled is True
    install = run.commands[-1]
    assert install[install.index("--requirement") + 1] == "/src/requirements.txt"
    assert install[install.index("--target") + 1] == str(tmp_path / "python")
    assert install[install.index("--platform") + 1] == "manylinux2014_x86_64"
    assert install[install.index("--python-version") + 1] == "3.12"
    assert "--only-binary=:all:" in install
    assert (tmp_path / "python").is_dir()


def test_bundler_fails_the_synth_when_pip_fails(tmp_path, monkeypatch):
    # Given pip is present (`pip --version` answers) but the install fails
    answers = iter([0, 1])
    monkeypatch.setattr(
        bundling.subprocess, "run", lambda command, **_: subprocess.CompletedProcess(command, next(answers))
    )
    # When / Then no half-filled layer: the synth stops
    with pytest.raises(RuntimeError, match="could not build the dependency layer"):
        bundling.LocalPipLayerBundler(Path("/src")).try_bundle(str(tmp_path), None)


def test_requirements_pin_every_runtime_dependency_exactly():
    requirements = (Path(bundling.__file__).resolve().parents[2] / "layers" / "requirements.txt").read_text()
    pins = [line for line in requirements.splitlines() if line.strip() and not line.startswith("#")]
    assert pins and all("==" in line for line in pins), pins

"""Docker-free bundling of the shared dependency layer.

CDK asset bundling normally runs a container. Here the layer is built on the host with
`pip install --platform manylinux2014_x86_64 --only-binary=:all:`, which downloads the wheels the
Lambda runtime (CPython 3.12, x86_64) needs whatever the host OS or Python is. The container
command is kept as a fallback for hosts without a working pip (CDK tries the local bundler first).

Bundling is skipped entirely (offline synth, tests) when the stack is excluded by the context key
`aws:cdk:bundling-stacks`; see `CmlCloudManagerStack(skip_bundling=True)`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import jsii

#: The Lambda runtime the layer is built for; the wheels must match it exactly.
LAMBDA_PYTHON_VERSION = "3.12"
LAMBDA_PLATFORM = "manylinux2014_x86_64"


def pip_install_command(requirements: Path | str, target: Path | str, python: str = sys.executable) -> list[str]:
    """The pip command that installs `requirements` as Lambda-compatible wheels into `target`."""
    return [
        python,
        "-m",
        "pip",
        "install",
        "--requirement",
        str(requirements),
        "--target",
        str(target),
        "--platform",
        LAMBDA_PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        # Binary wheels only: an sdist would be built for the host, not for Lambda.
        "--only-binary=:all:",
        # .pyc files compiled by the host interpreter would not match 3.12; Lambda compiles them.
        "--no-compile",
        "--disable-pip-version-check",
        "--quiet",
    ]


@jsii.implements(cdk.ILocalBundling)
class LocalPipLayerBundler:
    """Builds a Python layer (`<output>/python/...`) from `requirements.txt` with the host's pip."""

    def __init__(self, source_dir: Path, requirements_file: str = "requirements.txt") -> None:
        self._requirements = source_dir / requirements_file

    def try_bundle(self, output_dir: str, options: cdk.BundlingOptions) -> bool:  # noqa: ARG002 (jsii signature)
        """Install the requirements into `output_dir/python` (jsii calls this during synth).

        Returning False would let CDK fall back to Docker; a failing pip raises instead, because
        a half-filled layer must never be published.
        """
        if not _has_pip_module():
            return False
        target = Path(output_dir) / "python"
        target.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(pip_install_command(self._requirements, target), check=False)
        if result.returncode != 0:
            raise RuntimeError(f"pip could not build the dependency layer from {self._requirements}")
        return True


def _has_pip_module() -> bool:
    """Whether the interpreter running the CDK app can run `python -m pip`."""
    return subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, check=False).returncode == 0


def layer_bundling_options(source_dir: Path) -> cdk.BundlingOptions:
    """Bundling options for a Python dependency layer: local pip first, the SAM image otherwise."""
    return cdk.BundlingOptions(
        image=cdk.DockerImage.from_registry(f"public.ecr.aws/sam/build-python{LAMBDA_PYTHON_VERSION}"),
        command=[
            "bash",
            "-c",
            "pip install --no-compile -r requirements.txt -t /asset-output/python",
        ],
        local=LocalPipLayerBundler(source_dir),
    )

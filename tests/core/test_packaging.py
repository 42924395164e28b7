"""Packaging and operations files: the compose file is valid, the image has the test fonts."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from check_jsonschema import main as check_jsonschema
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]


def validate_compose(path: Path) -> tuple[int, str]:
    """Validate against the Compose Specification schema that check-jsonschema vendors."""
    result = CliRunner().invoke(check_jsonschema,
                                ["--builtin-schema", "vendor.compose-spec", str(path)])
    return result.exit_code, result.output


def test_docker_compose_follows_the_compose_specification() -> None:
    code, output = validate_compose(REPO / "docker-compose.yml")
    assert code == 0, output


def test_the_compose_check_can_fail(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  app:\n    image: x\n    ports: 8000\n    restartt: always\n")
    code, output = validate_compose(broken)
    assert code == 1 and "restartt" in output


def system_packages_of_make() -> set[str]:
    recipe = (REPO / "Makefile").read_text().split("system-deps:", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r'missing="\$\$missing ([a-z0-9-]+)"', recipe))


def test_the_image_installs_what_the_tests_install() -> None:
    # Redis runs in its own container; the browser only drives the web client's tests, and
    # openssl only makes the TLS tests' certificates.
    wanted = system_packages_of_make() - {"redis-server", "chromium-headless-shell", "openssl"}
    assert "fonts-noto-color-emoji" in wanted and "espeak-ng" in wanted
    dockerfile = (REPO / "Dockerfile").read_text()
    missing = {name for name in wanted if not re.search(rf"\b{re.escape(name)}\b", dockerfile)}
    assert not missing, f"Dockerfile lacks {missing}"


def test_image_and_make_run_start_the_same_server() -> None:
    assert '"-m", "app.main"' in (REPO / "Dockerfile").read_text()
    assert "$(PY) -m app.main" in (REPO / "Makefile").read_text()


@pytest.fixture(scope="module")
def pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_python_range_and_spdx_license(pyproject: dict[str, dict[str, object]]) -> None:
    project = pyproject["project"]
    assert project["requires-python"] == ">=3.11,<3.14"
    assert project["license"] == "MIT"  # an SPDX string: no setuptools deprecation warning
    assert pyproject["build-system"]["requires"] == ["setuptools>=77"]

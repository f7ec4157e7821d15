"""PLUGINS.md, the plugin author's guide, runs as written.

Its ``# file: <path>`` blocks (and the toml block) form a plugin package in a
temporary folder; the other Python blocks run in order in one namespace with
that package importable. The package is then built and installed with pip
(into a target folder, not the virtual environment) and its own test file,
the guide's conformance-kit snippet, runs in a fresh interpreter that finds
the plugin through its entry point.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[1] / "PLUGINS.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(GUIDE.read_text()) if lang == language]


def _write_package(root: Path) -> None:
    (toml,) = _blocks("toml")
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(toml)
    for body in _blocks("python"):
        first = body.splitlines()[0]
        if first.startswith("# file: "):
            path = root / first.removeprefix("# file: ").strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)


@pytest.fixture
def package(tmp_path, monkeypatch, fresh_registry):
    root = tmp_path / "sklearn-imgcls-tinynet"
    _write_package(root)
    monkeypatch.syspath_prepend(str(root / "src"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # the weights block fills this cache
    monkeypatch.delenv("SKLEARN_IMGCLS_BLOCK_PLUGINS", raising=False)
    monkeypatch.chdir(tmp_path)
    yield root
    sys.modules.pop("sklearn_imgcls_tinynet", None)


def test_the_guide_documents_every_hook_and_spec_field():
    from dataclasses import fields

    from sklearn_imgcls.plugin import specs
    from sklearn_imgcls.plugin.hookspecs import DEPRECATED_HOOKS, HOOKS

    text = GUIDE.read_text()
    table_rows = "\n".join(line for line in text.splitlines() if line.startswith("| "))
    for name in [*HOOKS.values(), *DEPRECATED_HOOKS.values(), "SKLEARN_IMGCLS_BLOCK_PLUGINS", "url_weights",
                 "file_weights", "check_plugin", "parametrize_with_checks", "plugin_checks"]:
        assert f"`{name}" in text, name
    for cls in (specs.BackboneSpec, specs.PretrainedWeights, specs.LossSpec, specs.AugmentationSpec,
                specs.SamplerSpec, specs.CorruptionSpec):
        for field in fields(cls):
            if field.name not in ("plugin", "name", "build", "description", "tags"):
                assert f"`{field.name}`" in table_rows, (cls.__name__, field.name)
    assert len([b for b in _blocks("python") if not b.startswith("# file: ")]) >= 3
    (toml,) = _blocks("toml")
    project = tomllib.loads(toml)["project"]
    module = project["entry-points"]["sklearn_imgcls"]["tinynet"]
    assert f"# file: src/{module}/__init__.py" in text and project["name"] in text


def test_the_guides_python_blocks_run(package, capsys):
    namespace: dict = {"__name__": "plugins_guide"}
    for index, body in enumerate(_blocks("python")):
        if body.startswith("# file: "):
            continue
        exec(compile(body, f"PLUGINS.md python block {index}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "checks passed" in out and "check_loss_soft_targets failed" in out and "Fix: accept" in out
    assert "fine-tuned from the digits weights" in out
    assert namespace["clf"].n_features_in_ == 64


def test_the_guides_package_installs_and_passes_its_own_tests(package, tmp_path):
    target = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(package)],
        capture_output=True, text=True, timeout=300,
    )
    assert pip.returncode == 0, pip.stderr
    env = {**os.environ, "PYTHONPATH": str(target), "PYTEST_ADDOPTS": ""}
    env.pop("PYTEST_XDIST_WORKER", None)
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         str(package / "tests" / "test_conformance.py")],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert re.search(r"\b(2[0-9]|3[0-9]) passed", tests.stdout), tests.stdout[-500:]
    listing = subprocess.run(
        [str(Path(sys.executable).with_name("sklearn-imgcls")), "plugins"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert listing.returncode == 0, listing.stderr
    assert re.search(r"tinynet .*\[tinynet from sklearn-imgcls-tinynet\]", listing.stdout), listing.stdout

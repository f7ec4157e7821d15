"""The command line: demo, plugin listing, and user errors."""

from __future__ import annotations

import subprocess
import sys

from sklearn_imgcls.cli import main


def test_demo_prints_a_report_and_accuracy(capsys):
    assert main(["demo", "--epochs", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1347 training and 450 test images" in out
    assert "precision" in out and "recall" in out
    accuracy = float(out.strip().splitlines()[-1].split(":")[1])
    assert 0.5 < accuracy <= 1.0


def test_plugins_lists_every_kind_with_its_source(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for heading in ("backbones:", "losses:", "augmentations:", "samplers:"):
        assert heading in out
    assert "resnet18" in out and "sklearn_imgcls.builtin.torchvision_backbones from sklearn-imgcls" in out


def test_user_error_exits_2_with_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_imgcls.cli", "demo", "--backbone", "resnet19", "--epochs", "1"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Did you mean 'resnet18'" in result.stderr
    assert "Traceback" not in result.stderr

"""The command line: demo, plugin listing, and user errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sklearn_imgcls.cli.main import main


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


def test_compare_ranks_models_on_an_image_folder_and_writes_a_report(tmp_path, capsys, digits_small):
    from PIL import Image

    X, y = digits_small
    for i in np.flatnonzero(y < 3)[:60]:
        folder = tmp_path / "data" / f"digit{y[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((X[i].reshape(8, 8) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    (tmp_path / "data" / "digit0" / "notes.txt").write_text("not an image")
    out = tmp_path / "report"
    assert main(["compare", str(tmp_path / "data"), "--budget", "40", "--cv", "2", "--report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "logistic_regression" in printed and "status" in printed
    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) >= 6 and board["status"].iloc[0] == "ok"
    assert (out / "leaderboard.html").read_text().count("</tr>") == len(board) + 1
    assert (out / "leaderboard.png").stat().st_size > 0


def test_compare_names_a_missing_dataset(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sklearn-imgcls: error: DATA must be") and "\n" not in err


def _example_commands(text: str) -> list[list[str]]:
    import shlex

    commands = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("sklearn-imgcls ") and line != "sklearn-imgcls plugins":
            line = line.split("  ")[0].split(" > ")[0]  # drop comments and redirections
            line = line.replace("[", "").replace("]", "")  # optional parts are given
            commands.append(shlex.split(line)[1:])
    return commands


def test_the_documented_examples_parse_and_use_safe_model_files():
    import re
    from pathlib import Path

    from sklearn_imgcls.cli.main import EPILOG, build_parser

    readme = Path(__file__).resolve().parents[1] / "README.md"
    section = re.search(r"## Command line\n(.*?)\n## ", readme.read_text(), re.S).group(1)
    examples = _example_commands(section) + _example_commands(EPILOG)
    assert len(examples) >= 16
    for argv in examples:
        args = build_parser().parse_args(argv)  # an outdated option or subcommand exits here
        for name in ("out", "model"):
            assert not str(getattr(args, name, None) or "").endswith(".joblib"), argv
    for words in ("--allow-pickle", "safetensors", "--threads", "--skip-invalid", "exit codes"):
        assert words in EPILOG and words.replace("exit codes", "Exit codes") in section


def test_help_documents_the_new_options(capsys):
    for command in ("train", "predict", "evaluate", "tune"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "--threads N" in text and "--allow-pickle" in text
        assert ("--skip-invalid" in text) == (command != "tune")


def _subparsers():
    import argparse

    from sklearn_imgcls.cli.main import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


def test_every_option_shows_in_its_help_and_shared_ones_read_the_same(capsys):
    helps: dict[str, set] = {}
    for command, parser in _subparsers().items():
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        for action in parser._actions:
            name = action.option_strings[-1] if action.option_strings else action.dest
            assert name in text, (command, name)
            if action.help and name in ("--threads", "--skip-invalid", "--seed", "--cv", "--param", "--estimator",
                                        "--quiet", "data", "model"):
                helps.setdefault(name, set()).add(action.help)
    assert set(helps) >= {"--threads", "--skip-invalid", "--seed", "--cv", "--param", "--estimator", "data", "model"}
    assert all(len(texts) == 1 for texts in helps.values()), helps  # one definition each
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert all(command in top for command in _subparsers())


def test_the_estimator_choices_map_to_the_classes(capsys):
    from sklearn_imgcls import CNNClassifier, TransferClassifier
    from sklearn_imgcls.cli.options import ESTIMATORS, estimator_class

    assert {kind: estimator_class(kind) for kind in ESTIMATORS} == {"cnn": CNNClassifier, "transfer": TransferClassifier}
    with pytest.raises(ValueError, match=r"--estimator must be one of \['cnn', 'transfer'\], got 'svm'"):
        estimator_class("svm")
    with pytest.raises(SystemExit):
        main(["train", "digits", "--out", "m.safetensors", "--estimator", "svm"])
    err = capsys.readouterr().err
    assert "invalid choice: 'svm'" in err and "cnn" in err and "transfer" in err


def test_a_clashing_plugin_is_one_line_and_exit_2_not_a_traceback(fresh_registry, capsys):
    from sklearn_imgcls.plugin.registry import get_registry
    from tests.plugins import duplicate_backbone

    get_registry().register_plugin(duplicate_backbone, name="impostor")
    assert main(["plugins"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sklearn-imgcls: error:") and "\n" not in err
    assert "simple_cnn" in err and "SKLEARN_IMGCLS_BLOCK_PLUGINS=impostor" in err

"""Corruption reports, shift and rotation curves, the mCA scorer, their plots, HTML section and CLI flag.

The corruptions measured here come from a test plugin registered at run time (the built-in ones are
blocked so that its ``translate`` and ``rotate`` do not clash with theirs), so every number below is
known: ``test_identity`` changes nothing, ``test_flat`` replaces the images by grey at severity 5.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls.cli.main import main
from sklearn_imgcls.plugin import CorruptionSpec, hookimpl
from sklearn_imgcls.plugin.registry import get_registry
from sklearn_imgcls.robustness import (
    CorruptionReport,
    corruption_report,
    corruption_scorer,
    rotation_curve,
    shift_curve,
)

BUILTIN = "sklearn_imgcls.builtin.corruptions,sklearn_imgcls.builtin.corruptions_spatial"
PROMISED = {"gaussian_noise": "noise", "shot_noise": "noise", "impulse_noise": "noise", "gaussian_blur": "blur",
            "motion_blur": "blur", "jpeg": "digital", "pixelate": "digital", "contrast": "digital",
            "brightness": "digital", "occlusion": "occlusion", "stripes": "occlusion", "translate": "geometry",
            "rotate": "geometry", "scale": "geometry", "shear": "geometry"}
SEEN: list[tuple[str, tuple]] = []


def _noise():
    def corrupt(images, severity, generator):
        noise = torch.randn(images.shape, generator=generator) * (0.15 * severity)
        return (images + noise).clamp(0, 1)
    return corrupt


def _flat():
    def corrupt(images, severity, generator):
        return images * (1 - severity / 5) + 0.5 * severity / 5
    return corrupt


def _identity():
    return lambda images, severity, generator: images


def _translate(pixels=None):
    def corrupt(images, severity, generator):
        step = int(severity if pixels is None else pixels) * (1 if torch.rand(1, generator=generator).item() < 0.5 else -1)
        out = torch.roll(images, shifts=step, dims=-1)
        (out[..., :step] if step > 0 else out[..., step:]).zero_()
        return out
    return corrupt


def _rotate(degrees=None):
    from torchvision.transforms.v2 import functional as F

    return lambda images, severity, generator: F.rotate(images, float(15 * severity if degrees is None else degrees))


class CorruptionsForTests:
    """A run-time plugin: corruptions whose effect the tests know."""

    @staticmethod
    @hookimpl
    def sklearn_imgcls_register_corruptions():
        return [
            CorruptionSpec("test_noise", _noise, "Gaussian noise, sigma 0.15 per severity", family="noise"),
            CorruptionSpec("test_flat", _flat, "blend towards grey, all grey at 5", family="digital"),
            CorruptionSpec("test_identity", _identity, "changes nothing", family="other"),
            CorruptionSpec("translate", _translate, "roll by pixels (severity pixels)", family="geometry"),
            CorruptionSpec("rotate", _rotate, "rotate by degrees (15 per severity)", family="geometry"),
        ]


@pytest.fixture
def corruptions(fresh_registry, monkeypatch):
    monkeypatch.setenv("SKLEARN_IMGCLS_BLOCK_PLUGINS", BUILTIN)
    get_registry().register_plugin(CorruptionsForTests, name="corruptions_for_tests")


@pytest.fixture(scope="module")
def model(digits_small):
    X, y = digits_small
    return CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=4, lr=5e-3, random_state=0).fit(X, y)


NAMES = ["test_noise", "test_flat"]


def test_report_table_summary_and_repeatability(corruptions, model, digits_small):
    X, y = digits_small
    report = corruption_report(model, X, y, NAMES, severities=(1, 3, 5))
    table = report.table
    assert list(table.columns) == ["corruption", "family", "severity", "accuracy", "change"]
    assert len(table) == 1 + 2 * 3
    assert table.iloc[0].to_dict() == {"corruption": "clean", "family": "clean", "severity": 0,
                                       "accuracy": report.clean_accuracy, "change": 0.0}
    assert report.clean_accuracy == pytest.approx(model.score(X, y))
    assert report.mean_corruption_accuracy == pytest.approx(table["accuracy"].iloc[1:].mean())
    assert table["change"].tolist() == pytest.approx((table["accuracy"] - report.clean_accuracy).tolist())
    assert set(table["family"].iloc[1:]) == {"noise", "digital"}
    flat = table[table["corruption"] == "test_flat"].set_index("severity")["accuracy"]
    assert flat[5] <= 0.2 < report.clean_accuracy  # all grey: about one class in ten
    noise = table[table["corruption"] == "test_noise"].set_index("severity")["accuracy"]
    assert noise[5] < noise[1] < report.clean_accuracy + 0.02
    assert report.accuracy_matrix().shape == (2, 3) and list(report.accuracy_matrix().index) == NAMES
    assert report.mce is None and report.relative_mce is None
    assert "mean corruption accuracy (mCA)" in report.to_string()
    again = corruption_report(model, X, y, NAMES, severities=(1, 3, 5))
    pd.testing.assert_frame_equal(report.table, again.table)


def test_relative_mce_of_a_model_against_itself_is_one(corruptions, model, digits_small):
    X, y = digits_small
    report = corruption_report(model, X, y, NAMES, severities=(2, 4), baseline=model)
    assert report.mce == pytest.approx(1.0) and report.relative_mce == pytest.approx(1.0)
    from_report = corruption_report(model, X, y, NAMES, severities=(2, 4), baseline=report.baseline)
    assert from_report.relative_mce == pytest.approx(1.0)
    assert list(from_report.per_corruption().columns) == ["family", "accuracy", "change", "ce", "relative_ce"]
    # a corruption that does not hurt the baseline has no relative CE; the others still average
    with_identity = corruption_report(model, X, y, ["test_identity", "test_flat"], severities=(5,), baseline=model)
    assert np.isnan(with_identity.per_corruption().loc["test_identity", "relative_ce"])
    assert with_identity.relative_mce == pytest.approx(1.0)
    with pytest.raises(ValueError, match="lacks"):
        corruption_report(model, X, y, NAMES, severities=(1, 2), baseline=report.baseline)
    with pytest.raises(ValueError, match="same images"):
        corruption_report(model, X[:100], y[:100], NAMES, severities=(2, 4), baseline=report.baseline)


def test_uint8_and_channels_last_reach_predict_in_the_callers_form(corruptions, model, digits_small):
    X, y = digits_small
    seen = []

    def spy(batch):
        seen.append((batch.dtype, batch.shape[1:]))
        return batch.reshape(len(batch), -1)

    pipe = make_pipeline(FunctionTransformer(spy), model)
    nhwc = np.rint(X * 255).astype(np.uint8).reshape(-1, 8, 8, 1)
    report = corruption_report(pipe, nhwc, y, ["test_noise", "test_identity"], severities=(1,))
    assert {entry for entry in seen} == {(np.dtype(np.uint8), (8, 8, 1))}
    identity = report.table.set_index("corruption").loc["test_identity", "accuracy"]
    assert identity == report.clean_accuracy == pytest.approx(model.score(nhwc.reshape(len(X), -1), y))
    # float pixels outside [0, 1] (the digits' own 0-16 scale) are corrupted in [0, 1] units and mapped back
    seen.clear()
    raw = X * 16.0
    wide = corruption_report(pipe, raw, y, ["test_flat"], severities=(5,))
    assert all(dtype == np.float32 and shape == (64,) for dtype, shape in seen)
    assert wide.table["accuracy"].iloc[1] <= 0.2


def test_file_paths_are_decoded_once_and_match_the_arrays(corruptions, model, digits_small, tmp_path):
    X, y = digits_small
    X, y = X[:60], y[:60]
    pixels = np.rint(X * 255).astype(np.uint8)
    paths = []
    for i, image in enumerate(pixels):
        Image.fromarray(image.reshape(8, 8)).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    from_files = corruption_report(model, paths, y, NAMES, severities=(1, 5))
    from_arrays = corruption_report(model, pixels.reshape(-1, 1, 8, 8), y, NAMES, severities=(1, 5))
    pd.testing.assert_frame_equal(from_files.table, from_arrays.table)
    assert shift_curve(model, paths, y, pixels=[0, 2])["accuracy"].iloc[0] == pytest.approx(model.score(paths, y))


def test_shift_and_rotation_curves(corruptions, model, digits_small):
    X, y = digits_small
    clean = model.score(X, y)
    shift = shift_curve(model, X, y, pixels=range(0, 5, 2))
    assert list(shift.columns) == ["pixels", "accuracy"] and shift["pixels"].tolist() == [0, 2, 4]
    assert shift["accuracy"].iloc[0] == pytest.approx(clean)
    assert shift["accuracy"].iloc[-1] < clean - 0.1  # half an 8-pixel digit gone
    rotation = rotation_curve(model, X, y, degrees=[0, 90, 180])
    assert list(rotation.columns) == ["degrees", "accuracy"] and rotation["accuracy"].iloc[0] == pytest.approx(clean)
    assert rotation["accuracy"].iloc[2] < clean - 0.2


def test_scorer_equals_the_report_and_runs_in_parallel_grid_search(corruptions, model, digits_small):
    X, y = digits_small
    scorer = corruption_scorer(NAMES, severities=(2, 4))
    report = corruption_report(model, X, y, NAMES, severities=(2, 4))
    assert scorer(model, X, y) == pytest.approx(report.mean_corruption_accuracy)
    assert "test_noise" in repr(scorer)
    search = GridSearchCV(CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=1, random_state=0),
                          {"lr": [1e-3, 5e-3]}, cv=2, n_jobs=2, error_score="raise",
                          scoring={"accuracy": "accuracy", "mCA": scorer}, refit="mCA")
    search.fit(X[:200], y[:200])  # the worker processes know no test plugin: the scorer carries its corruptions
    scores = search.cv_results_["mean_test_mCA"]
    assert np.all((scores >= 0) & (scores <= 1)) and np.all(scores <= search.cv_results_["mean_test_accuracy"] + 0.05)


def test_plots_and_the_html_section(corruptions, model, digits_small, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from sklearn_imgcls.plot_robustness import plot_corruption_heatmap, plot_rotation_curve, plot_shift_curve
    from sklearn_imgcls.report import write_report

    X, y = digits_small
    report = corruption_report(model, X, y, NAMES, severities=(1, 2, 3))
    fig = plot_corruption_heatmap(report)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 6 and f"{report.table['accuracy'].iloc[1]:.2f}" in texts
    assert plot_shift_curve(shift_curve(model, X, y, pixels=[0, 1])).axes[0].get_xlabel().startswith("shift")
    assert "rotation" in plot_rotation_curve(rotation_curve(model, X, y, degrees=[0, 30])).axes[0].get_xlabel()
    index = write_report(model, X[:50], y[:50], str(tmp_path / "plain"), n_examples=2)
    assert "Robustness to corruptions" not in open(index).read()  # off by default
    index = write_report(model, X[:50], y[:50], str(tmp_path / "names"), n_examples=2, corruptions=["test_flat"],
                         severities=(5,))
    page = open(index).read()
    assert "Robustness to corruptions" in page and "corruption_heatmap.png" in page
    assert "test_flat" in page and "test_noise" not in page
    assert (tmp_path / "names" / "corruption_heatmap.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "names" / "metrics.json").read_text())["corruptions"]
    assert saved["n_images"] == 50 and saved["table"][1]["corruption"] == "test_flat"


def test_cli_evaluate_prints_the_table_and_adds_the_section(corruptions, model, tmp_path, capsys, digits_small):
    X, y = digits_small[0][:100], digits_small[1][:100]
    model_file = str(tmp_path / "model.safetensors")
    model.save(model_file)
    data = str(tmp_path / "data.npz")
    np.savez(data, X=X.reshape(-1, 1, 8, 8), y=y)
    assert main(["evaluate", model_file, data, "--corruptions", "test_noise,test_flat", "--severities", "1,5",
                 "--report", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "severity 1" in out and "severity 5" in out and "test_flat" in out and "(mCA)" in out
    assert "Robustness to corruptions" in (tmp_path / "report" / "index.html").read_text()
    assert main(["evaluate", model_file, data, "--corruptions"]) == 0  # every installed corruption
    assert "test_identity" in capsys.readouterr().out
    assert main(["evaluate", model_file, data, "--corruptions", "fog"]) == 2
    out, err = capsys.readouterr()
    assert "Unknown corruption 'fog'" in err and "test_noise" in err and err.count("\n") == 1
    assert "accuracy" not in out  # refused before the metrics are computed and printed
    assert main(["evaluate", model_file, data, "--corruptions", "test_noise", "--severities", "9"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["evaluate", model_file, data, "--severities", "1,3"]) == 2  # was silently ignored
    assert "add --corruptions" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:  # --corruptions takes an optional value: it must not eat MODEL
        main(["evaluate", "--corruptions", model_file, data])
    assert info.value.code == 2 and "put --corruptions after MODEL and DATA" in capsys.readouterr().err


def test_the_builtin_corruptions_are_the_default(fresh_registry, model, digits_small):
    X, y = digits_small[0][:100], digits_small[1][:100]
    report = corruption_report(model, X, y, severities=(1, 5))
    measured = report.corrupted.drop_duplicates("corruption").set_index("corruption")["family"].to_dict()
    assert measured == PROMISED
    worst = report.accuracy_matrix()[5]
    assert worst.mean() < report.clean_accuracy and worst.min() < 0.5
    shift = shift_curve(model, X, y, pixels=[0, 1, 3])
    assert shift["accuracy"].iloc[0] == pytest.approx(report.clean_accuracy) and shift["accuracy"].iloc[2] < 0.8
    assert rotation_curve(model, X, y, degrees=[0, 180])["accuracy"].iloc[1] < report.clean_accuracy - 0.2


def test_user_mistakes_are_named(corruptions, model, digits_small, monkeypatch):
    X, y = digits_small
    with pytest.raises(ValueError, match="Unknown corruption 'tset_noise'.*Did you mean 'test_noise'.*test_flat"):
        corruption_report(model, X, y, ["tset_noise"])
    with pytest.raises(ValueError, match="severity 6 is out of range.*1 to 5"):
        corruption_report(model, X, y, NAMES, severities=(1, 6))
    with pytest.raises(ValueError, match="severity 0 is out of range"):
        corruption_scorer(NAMES, severities=(0, 1))
    with pytest.raises(TypeError, match="whole numbers"):
        corruption_report(model, X, y, NAMES, severities=(1.5,))
    with pytest.raises(ValueError, match="not fitted yet"):
        corruption_report(CNNClassifier(), X, y, NAMES)
    with pytest.raises(ValueError, match="400 images but y has 3"):
        corruption_report(model, X, y[:3], NAMES)
    with pytest.raises(ValueError, match="corruptions is empty"):  # a ValueError, as the docstring says
        corruption_report(model, X, y, [])
    with pytest.raises(ValueError, match="severities is empty"):
        corruption_report(model, X, y, NAMES, severities=[])
    with pytest.raises(TypeError, match="list of names"):
        corruption_report(model, X, y, [3])
    with pytest.raises(TypeError, match="baseline must be"):
        corruption_report(model, X, y, NAMES, baseline="resnet18")
    with pytest.raises(ValueError, match="empty"):
        shift_curve(model, X, y, pixels=[])
    get_registry().unregister_plugin("corruptions_for_tests")
    with pytest.raises(ValueError, match="No corruptions are installed"):
        corruption_report(model, X, y)


def test_the_readme_example_runs(fresh_registry, capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Corruptions, shift and rotation", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert "(mCA)" in capsys.readouterr().out
    assert np.all(namespace["scores"]["test_mCA"] <= 1) and len(namespace["report"].table) == 1 + 15 * 3


def test_column_y_and_foreign_labels_are_handled_not_broadcast(model, digits_small):
    from sklearn_imgcls.corruption import corruption_report

    clf, (X, y) = model, digits_small
    flat = corruption_report(clf, X, y, ["gaussian_noise"], (1,))
    column = corruption_report(clf, X, y.reshape(-1, 1), ["gaussian_noise"], (1,))
    assert column.table.equals(flat.table)  # a column vector once gave accuracies above 1
    assert 0.0 <= column.table["accuracy"].min() and column.table["accuracy"].max() <= 1.0
    with pytest.raises(ValueError, match="y has labels the estimator never saw in fit"):
        corruption_report(clf, X, y.astype(str), ["gaussian_noise"], (1,))


def test_a_pipeline_that_resizes_first_is_measured_on_its_own_input(digits_small):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from sklearn_imgcls import CNNClassifier
    from sklearn_imgcls.corruption import corruption_report

    X, y = digits_small

    def upscale(rows):
        return np.repeat(np.repeat(np.asarray(rows).reshape(-1, 8, 8), 2, axis=1), 2, axis=2).reshape(len(rows), -1)

    pipe = make_pipeline(FunctionTransformer(upscale), CNNClassifier(image_shape=(1, 16, 16), preset="fast",
                                                                      max_epochs=1, random_state=0)).fit(X, y)
    report = corruption_report(pipe, X, y, ["gaussian_noise"], (1,))
    assert report.clean_accuracy == pytest.approx(pipe.score(X, y))


def test_curve_amounts_are_checked_before_any_work(model, digits_small):
    from sklearn_imgcls.corruption import rotation_curve, shift_curve

    X, y = digits_small
    with pytest.raises(ValueError, match=r"degrees must be non-negative numbers .* got \[-45\]"):
        rotation_curve(model, X, y, degrees=[0, 30, -45])
    with pytest.raises(ValueError, match=r"pixels must be non-negative numbers"):
        shift_curve(model, X, y, pixels=["2"])


def test_a_family_name_is_pointed_to_its_members(model, digits_small):
    from sklearn_imgcls.corruption import corruption_report

    X, y = digits_small
    with pytest.raises(ValueError, match=r"'noise' is a family of corruptions, not one: .*family='noise'\) = "
                                         r"\['gaussian_noise', 'impulse_noise', 'shot_noise'\]"):
        corruption_report(model, X, y, "noise")


def test_a_batch_without_its_channel_axis_is_told_to_add_it():
    import torch

    from sklearn_imgcls import build_corruption

    with pytest.raises(TypeError, match=r"add the channel axis: images.unsqueeze\(1\)"):
        build_corruption("gaussian_noise")(torch.rand(2, 8, 8), 3, torch.Generator().manual_seed(0))

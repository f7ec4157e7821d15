"""Presets, learning-rate schedules, precision, memory layout, torch.compile and file streaming."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from skorch.callbacks import Callback

from sklearn_imgcls import CNNClassifier, build_augmentation
from sklearn_imgcls._core.iterators import _targets
from sklearn_imgcls._core.network import ImageNetwork, autocast_dtype
from sklearn_imgcls.presets import PRESETS

QUICK = dict(image_shape=(1, 8, 8), preset="fast", random_state=0)


def test_presets_fill_only_the_parameters_left_unset():
    default = CNNClassifier()
    for name, value in PRESETS["accurate"].items():
        assert default._param(name) == value
    fast = CNNClassifier(preset="fast", max_epochs=3, augment=None)
    assert fast._param("backbone") == "simple_cnn" and fast._param("max_epochs") == 3
    assert fast._param("augment") is None and fast._param("lr") == PRESETS["fast"]["lr"]
    # the preset's backbone_params belong to its backbone: an explicit backbone gets none of them
    assert CNNClassifier("bn_cnn")._param("backbone_params") is None
    assert CNNClassifier().get_params()["backbone"] is None  # get_params shows what the user set


def test_unknown_preset_is_a_clear_error(digits_small):
    X, y = digits_small
    with pytest.raises(ValueError, match="preset must be one of.*'accurate'.*'fast'"):
        CNNClassifier(preset="quick", image_shape=(1, 8, 8)).fit(X, y)


def test_default_model_learns_the_digits_well(digits):
    X, y = digits
    clf = CNNClassifier(image_shape=(1, 8, 8), random_state=0).fit(X[:1200], y[:1200])
    assert clf.score(X[1200:], y[1200:]) > 0.95


class _RecordLR(Callback):
    def initialize(self):
        self.rates = []
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.rates.append(net.optimizer_.param_groups[0]["lr"])


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "constant"])
def test_learning_rate_schedules_shape_the_rate_over_the_whole_fit(digits_small, schedule):
    X, y = digits_small
    record = _RecordLR()
    CNNClassifier(**QUICK, lr=1e-2, max_epochs=4, batch_size=50, lr_schedule=schedule, callbacks=[record]).fit(X, y)
    rates = np.asarray(record.rates)
    assert len(rates) == 4 * 8
    if schedule == "constant":
        np.testing.assert_allclose(rates, 1e-2)
    elif schedule == "cosine":
        assert rates[0] == pytest.approx(1e-2) and np.all(np.diff(rates) <= 1e-12) and rates[-1] < 1e-3
    else:
        peak = int(np.argmax(rates))
        assert rates[0] < 1e-3 and rates[peak] == pytest.approx(1e-2, rel=1e-3) and 0.15 < peak / len(rates) < 0.35
        assert np.all(np.diff(rates[peak:]) <= 1e-12) and rates[-1] < 1e-4


def test_one_cycle_on_a_fit_too_short_to_cycle_keeps_the_peak_rate(digits_small):
    X, y = digits_small
    record = _RecordLR()
    CNNClassifier(**QUICK, lr=1e-2, max_epochs=1, batch_size=200, lr_schedule="onecycle", callbacks=[record]).fit(X, y)
    np.testing.assert_allclose(record.rates, 1e-2)


def test_scheduled_estimator_pickles_and_refits(digits_small):
    X, y = digits_small
    clf = CNNClassifier(**QUICK, max_epochs=2).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X))
    restored.fit(X, y)  # a new fit builds a new schedule
    assert len(restored.history_) == 2


def test_precision_table():
    assert autocast_dtype("fp32", "cpu") is None
    assert autocast_dtype("bf16", "cpu") is torch.bfloat16
    assert autocast_dtype("fp16", "cpu") is None  # slower than float32 on CPUs
    assert autocast_dtype("fp16", "cuda") is torch.float16
    assert autocast_dtype("auto", "cpu") in (None, torch.bfloat16)


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_precision_sets_the_dtype_of_the_backbone_computations(precision, dtype):
    conv = torch.nn.Conv2d(1, 2, 3)
    network = ImageNetwork(torch.nn.Sequential(conv, torch.nn.Flatten()), torch.zeros(1), torch.ones(1))
    network.set_compute(precision, channels_last=True)
    seen = {}
    conv.register_forward_hook(lambda module, inputs, output: seen.update(dtype=output.dtype))
    logits = network(torch.randint(0, 255, (2, 1, 6, 6), dtype=torch.uint8))
    assert seen["dtype"] == dtype and logits.dtype == torch.float32
    assert conv.weight.dtype == torch.float32 and conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_invalid_compute_parameters_are_reported(digits_small):
    X, y = digits_small
    for params, error, pattern in [
        (dict(precision="fp8"), ValueError, "precision must be one of"),
        (dict(channels_last="yes"), TypeError, "channels_last must be True or False"),
        (dict(compile=1), TypeError, "compile must be True or False"),
        (dict(num_workers=-1), ValueError, "num_workers must be an integer >= 0"),
        (dict(lr_schedule="step"), ValueError, "lr_schedule must be one of"),
    ]:
        with pytest.raises(error, match=pattern):
            CNNClassifier(**QUICK, **params).fit(X, y)


def test_channels_last_layout_does_not_change_predictions(digits_small):
    X, y = digits_small
    clf = CNNClassifier(**QUICK, max_epochs=2, precision="fp32", channels_last=True).fit(X, y)
    first_conv = clf.net_.module_.backbone.features[0]
    assert first_conv.weight.is_contiguous(memory_format=torch.channels_last)
    channels_last = clf.predict_proba(X)
    clf.net_.module_.set_compute("fp32", channels_last=False)
    assert first_conv.weight.is_contiguous()
    np.testing.assert_allclose(clf.predict_proba(X), channels_last, atol=1e-5)


def test_bfloat16_predictions_stay_close_to_float32_ones(digits_small):
    X, y = digits_small
    clf = CNNClassifier(**QUICK, max_epochs=2, precision="bf16").fit(X, y)
    low = clf.predict_proba(X)
    clf.net_.module_.set_compute("fp32", channels_last=True)
    exact = clf.predict_proba(X)
    assert np.abs(low - exact).max() < 0.05 and (low.argmax(1) == exact.argmax(1)).mean() > 0.95


def test_float16_training_scales_the_loss(digits_small, monkeypatch):
    import sklearn_imgcls._core.network as network
    import sklearn_imgcls._core.net as skorch_net

    real = network.autocast_dtype

    def float16_on_cpu(precision, device_type):  # what "fp16" means on CUDA, here on the CPU
        return torch.float16 if precision == "fp16" else real(precision, device_type)

    monkeypatch.setattr(network, "autocast_dtype", float16_on_cpu)
    monkeypatch.setattr(skorch_net, "autocast_dtype", float16_on_cpu)
    X, y = digits_small
    clf = CNNClassifier(**QUICK, max_epochs=6, lr=5e-3, precision="fp16").fit(X, y)
    scaler = clf.net_.grad_scaler_
    assert isinstance(scaler, torch.amp.GradScaler) and scaler.get_scale() > 1.0
    assert np.isfinite(clf.history_[:, "train_loss"]).all() and clf.score(X, y) > 0.6
    plain = CNNClassifier(**QUICK, max_epochs=1, precision="fp32").fit(X, y)
    assert getattr(plain.net_, "grad_scaler_", None) is None


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="torch.compile needs a C++ compiler")
def test_compiled_network_predicts_as_the_eager_one_and_pickles(digits_small):
    X, y = digits_small
    clf = CNNClassifier(**QUICK, max_epochs=1, precision="fp32", compile=True).fit(X[:128], y[:128])
    assert clf.net_.module_._compiled is not None
    compiled = clf.predict_proba(X[:64])
    restored = pickle.loads(pickle.dumps(clf))
    assert restored.net_.module_._compiled is None  # the compiled function is rebuilt, not pickled
    clf.net_.module_.set_compute("fp32", channels_last=True, compile=False)
    np.testing.assert_allclose(clf.predict_proba(X[:64]), compiled, atol=1e-5)


def test_failed_compilation_falls_back_to_eager_mode_with_a_warning(digits_small, monkeypatch):
    X, y = digits_small

    def broken_compile(module):
        def call(x):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*runs uncompiled"):
        clf = CNNClassifier(**QUICK, max_epochs=1, compile=True).fit(X, y)
    assert clf.net_.module_.compile is False
    eager = CNNClassifier(**QUICK, max_epochs=1).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), eager.predict_proba(X), atol=1e-6)


@pytest.fixture
def digit_files(tmp_path, digits_small):
    X, y = digits_small
    paths = []
    for i, (row, label) in enumerate(zip(X[:120], y[:120])):
        path = tmp_path / f"{i:03d}_{label}.png"
        Image.fromarray((row.reshape(8, 8) * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    return paths, y[:120]


def test_file_inputs_are_decoded_by_dataloader_workers(digit_files):
    paths, y = digit_files
    clf = CNNClassifier(preset="fast", batch_size=32, max_epochs=2, num_workers=2, random_state=0).fit(paths, y)
    iterator = clf.net_.get_iterator(clf.net_.get_dataset(np.asarray(paths)), training=True)
    assert iterator.num_workers == 2
    with_workers = clf.predict_proba(paths)
    clf.set_params(num_workers=0)
    np.testing.assert_array_equal(clf.predict_proba(paths), with_workers)
    in_process = CNNClassifier(preset="fast", batch_size=32, max_epochs=2, num_workers=0, random_state=0).fit(paths, y)
    np.testing.assert_allclose(in_process.predict_proba(paths), with_workers, atol=1e-6)


def test_sampler_reads_file_labels_without_decoding_images(digit_files, monkeypatch):
    from sklearn_imgcls._core import images
    from sklearn_imgcls._core.data import as_image_data

    paths, y = digit_files
    dataset = as_image_data(paths).dataset(torch.as_tensor(y))
    monkeypatch.setattr(images, "read_image", lambda *a, **k: pytest.fail("an image was decoded"))
    subset = torch.utils.data.Subset(dataset, [5, 1, 7])
    np.testing.assert_array_equal(_targets(subset).numpy(), y[[5, 1, 7]])


def test_random_crop_padding_as_a_fraction_of_the_side():
    generator = torch.Generator().manual_seed(0)
    shift = build_augmentation("random_crop", padding=0.07)
    image = torch.zeros(64, 1, 28, 28)
    image[:, :, 14, 14] = 1.0
    moved = shift(image, generator)
    rows, cols = (moved[:, 0] == 1.0).nonzero()[:, 1:].T
    assert rows.min() >= 12 and rows.max() <= 16 and cols.min() >= 12 and cols.max() <= 16
    assert len(set(rows.tolist())) > 1  # two pixels either way at 28x28
    tiny = torch.rand(4, 1, 2, 2)
    assert torch.equal(shift(tiny, generator), tiny)  # 7 % of 2 pixels rounds to no shift
    with pytest.raises(ValueError, match="fraction in \\(0, 1\\)"):
        build_augmentation("random_crop", padding=1.5)


def test_prediction_follows_the_current_precision_parameter(digits_small):
    from sklearn_imgcls import CNNClassifier

    X, y = digits_small
    clf = CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=1, precision="fp32", random_state=0).fit(X, y)
    exact = clf.predict_proba(X)
    low = clf.set_params(precision="bf16").predict_proba(X)
    assert not np.allclose(exact, low, atol=1e-6, rtol=0)  # bfloat16 arithmetic is used once asked for
    assert np.abs(exact - low).max() < 0.05
    np.testing.assert_array_equal(clf.set_params(precision="fp32").predict_proba(X), exact)  # and undone
    with pytest.raises(ValueError, match="precision"):
        clf.set_params(precision="fp8").predict_proba(X)


def test_the_epoch_table_has_colour_codes_only_on_a_terminal(digits_small, capsys):
    from sklearn_imgcls import CNNClassifier

    X, y = digits_small
    CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=2, verbose=1, random_state=0).fit(X, y)
    out = capsys.readouterr().out  # captured: not a terminal
    assert "epoch" in out and "train_loss" in out and "\x1b[" not in out
    CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=1, verbose=0, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""  # and quiet stays quiet


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_trains_from_image_files_through_the_command_line(preset, tmp_path, digits_small):
    """`train FOLDER --preset P` with nothing else: the model file was trained with each of the preset's values."""
    from sklearn_imgcls import load
    from sklearn_imgcls.cli.main import main

    X, y = digits_small
    for i, (pixels, label) in enumerate(zip(X[:60], y[:60])):
        (tmp_path / "data" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels.reshape(8, 8) * 255).astype(np.uint8)).save(tmp_path / "data" / str(label) / f"{i}.png")
    out = tmp_path / "model.safetensors"
    before = torch.get_num_threads()
    try:
        code = main(["train", str(tmp_path / "data"), "--preset", preset, "--param", "random_state=0", "--threads", "1",
                     "--quiet", "--out", str(out)])
    finally:
        torch.set_num_threads(before)
    assert code == 0
    clf = load(out)
    assert len(clf.history_) == PRESETS[preset]["max_epochs"]
    for name, value in PRESETS[preset].items():
        assert getattr(clf, f"{name}_") == value, name
    assert clf.predict([str(tmp_path / "data" / str(y[0]) / "0.png")]).shape == (1,)

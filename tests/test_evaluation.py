"""Metrics, plots, explanations and the HTML report (issue #3)."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.model_selection import GridSearchCV

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls import plot as P
from sklearn_imgcls.explain import find_target_layer, grad_cam, occlusion_sensitivity
from sklearn_imgcls.metrics import evaluate
from sklearn_imgcls.report import write_report


@pytest.fixture(scope="module")
def fitted(digits_small):
    X, y = digits_small
    names = np.array(list("abcdefghij"))[y]
    clf = CNNClassifier(image_shape=(1, 8, 8), max_epochs=6, lr=5e-3, validation_fraction=0.2,
                        scoring="accuracy", random_state=0).fit(X[:300], names[:300])
    return clf, X[300:], names[300:], names[:300]


def test_evaluate_equals_sklearn_metrics(fitted):
    clf, X, y, _ = fitted
    result = evaluate(clf, X, y, k=2)
    proba, pred = clf.predict_proba(X), clf.predict(X)
    assert result["accuracy"] == skm.accuracy_score(y, pred)
    assert result["balanced_accuracy"] == skm.balanced_accuracy_score(y, pred)
    assert result["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert result["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert result["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", labels=clf.classes_))
    assert result["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=clf.classes_))
    assert result["top_k_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y, proba, k=2, labels=clf.classes_))
    np.testing.assert_array_equal(result["confusion_matrix"].to_numpy(), skm.confusion_matrix(y, pred, labels=clf.classes_))
    per_class = result["per_class"]
    assert list(per_class.index) == list(clf.classes_)
    assert per_class["support"].sum() == len(y)
    np.testing.assert_allclose(per_class["recall"], skm.recall_score(y, pred, average=None, labels=clf.classes_))


def test_evaluate_on_a_known_binary_case():
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Fixed(ClassifierMixin, BaseEstimator):
        def fit(self, X=None, y=None):
            self.classes_ = np.array(["neg", "pos"])
            return self

        def predict_proba(self, X):
            return np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])

    result = evaluate(Fixed().fit(), np.zeros((4, 4)), ["neg", "pos", "pos", "neg"])
    assert result["accuracy"] == 0.5
    assert result["roc_auc_ovr"] == 0.75  # pairs (pos, neg) ranked right: 3 of 4
    assert result["confusion_matrix"].loc["pos", "neg"] == 1
    with pytest.raises(ValueError, match="never saw"):
        evaluate(Fixed().fit(), np.zeros((4, 4)), ["neg", "pos", "maybe", "neg"])


def test_confusion_matrix_plots_counts_and_rates(fitted):
    clf, X, y, _ = fitted
    fig = P.plot_confusion_matrix(clf, X, y)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Predicted label" and ax.get_ylabel() == "True label"
    values = [int(t.get_text()) for t in ax.texts]
    assert sum(values) == len(y)
    rates = P.plot_confusion_matrix(clf, X, y, normalize="true").axes[0]
    assert "normalised" in rates.get_title()


def test_roc_and_pr_draw_one_curve_per_class_plus_averages(fitted):
    clf, X, y, _ = fitted
    present = len(np.unique(y))
    roc = P.plot_roc(clf, X, y).axes[0]
    assert len(roc.get_lines()) >= present + 2  # + chance lines drawn by sklearn's display
    labels = [line.get_label() for line in roc.get_lines()]
    assert any(label.startswith("micro-average") for label in labels)
    assert any(label.startswith("macro-average") for label in labels)
    pr = P.plot_precision_recall(clf, X, y).axes[0]
    assert sum(label.get_label().startswith("class ") for label in pr.get_lines()) == present


def test_history_plot_has_train_and_valid_curves(fitted):
    clf, *_ = fitted
    fig = P.plot_history(clf)
    loss_ax, score_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["train loss", "valid loss"]
    assert len(loss_ax.get_lines()[0].get_xdata()) == 6
    labels = [line.get_label() for line in score_ax.get_lines()]
    assert "valid accuracy" in labels and not any("batch" in label for label in labels)


def test_class_distribution_bars_and_ratio():
    fig = P.plot_class_distribution(["a"] * 6 + ["b"] * 2, ["a", "b", "b"])
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [6, 2, 1, 2]
    assert "imbalance ratio 3.0" in ax.get_title()


def test_top_losses_grid_shows_images_with_labels(fitted):
    clf, X, y, _ = fitted
    fig = P.plot_top_losses(clf, X, y, n=6)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 6
    assert shown[0].images[0].get_array().shape == (8, 8)
    assert shown[0].get_title().startswith("true ")


def test_search_plot_one_panel_per_parameter(digits_small):
    X, y = digits_small
    search = GridSearchCV(CNNClassifier(image_shape=(1, 8, 8), max_epochs=1, random_state=0),
                          {"lr": [1e-3, 5e-3], "batch_size": [64, 128]}, cv=2).fit(X[:200], y[:200])
    fig = P.plot_search(search)
    assert sorted(ax.get_xlabel() for ax in fig.axes) == ["batch_size", "lr"]
    with pytest.raises(ValueError, match="fitted GridSearchCV"):
        P.plot_search(object())


@pytest.fixture(scope="module")
def patch_data():
    """Class 1 has a bright 4x4 patch at a random place; class 0 is noise only."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    X = rng.uniform(0, 0.4, (300, 1, 16, 16)).astype(np.float32)
    where = rng.integers(0, 13, (300, 2))
    for i in np.flatnonzero(y):
        X[i, 0, where[i, 0] : where[i, 0] + 4, where[i, 1] : where[i, 1] + 4] = 1.0
    ones = np.flatnonzero(y == 1)[:20]
    mask = np.zeros((len(ones), 16, 16))
    for j, i in enumerate(ones):
        mask[j, max(0, where[i, 0] - 1) : where[i, 0] + 5, max(0, where[i, 1] - 1) : where[i, 1] + 5] = 1
    clf = CNNClassifier(preset="fast", lr_schedule="constant", max_epochs=8, lr=3e-3, random_state=0).fit(X, y)
    return clf, X[ones], mask


def test_grad_cam_mass_falls_on_the_deciding_patch(patch_data):
    clf, X, mask = patch_data
    maps = grad_cam(clf, X, target=1)
    assert maps.shape == (len(X), 16, 16) and maps.min() >= 0 and maps.max() <= 1
    share = (maps * mask).sum(axis=(1, 2)) / maps.sum(axis=(1, 2))
    assert np.median(share) > 0.5, f"patch holds {mask.mean():.0%} of the pixels"


def test_occlusion_mass_falls_on_the_deciding_patch(patch_data):
    clf, X, mask = patch_data
    maps = occlusion_sensitivity(clf, X[:8], target=1)
    share = (maps * mask[:8]).sum(axis=(1, 2)) / maps.sum(axis=(1, 2))
    assert np.median(share) > 0.5


@pytest.mark.parametrize("backbone", ["bn_cnn", "resnet18", "mobilenet_v3_small", "efficientnet_b0", "vit_b_16", "lenet5"])
def test_grad_cam_runs_for_every_kind_of_backbone(backbone, digits_small):
    from sklearn_imgcls import list_backbones

    assert backbone in list_backbones(), f"{backbone} is not installed (lenet5 comes with plugins/: run scripts/setup_env.sh)"
    X, y = digits_small
    clf = CNNClassifier(backbone, image_shape=(1, 8, 8), max_epochs=1, random_state=0).fit(X[:64], y[:64])
    name, _ = find_target_layer(clf)
    maps = grad_cam(clf, X[:3], layer=None)
    assert maps.shape == (3, 8, 8) and np.isfinite(maps).all() and maps.max() <= 1.0, name


def test_grad_cam_errors(patch_data):
    clf, X, _ = patch_data
    with pytest.raises(ValueError, match="no layer 'nope'"):
        grad_cam(clf, X, layer="nope")
    with pytest.raises(ValueError, match="target 7 is not one of the classes"):
        grad_cam(clf, X, target=7)


def test_cam_overlay_plot(patch_data):
    clf, X, _ = patch_data
    fig = P.plot_cam(clf, X, n=4)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 4 and all(len(ax.images) == 2 for ax in shown)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a":
            self.links.append(attrs["href"])


def test_report_is_self_contained(fitted, tmp_path):
    clf, X, y, y_train = fitted
    index = write_report(clf, X, y, str(tmp_path / "report"), y_train=y_train)
    page = open(index, encoding="utf-8").read()
    parser = _Links()
    parser.feed(page)
    assert len(parser.images) == 8 and "not drawn" not in page
    figures = page.split('<div class="figures">', 1)[1].split("</div>", 1)[0]  # laid out as a grid for a screen
    assert figures.count("<img ") == 8 and "<figcaption>" not in page  # each figure carries its own title
    for src in parser.images + parser.links:
        assert not src.startswith(("http", "/")), src
        assert (tmp_path / "report" / src).stat().st_size > 1000 or src.endswith(".json")
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(evaluate(clf, X, y)["accuracy"])
    assert set(metrics["per_class"]) == set(clf.classes_)
    assert f"{metrics['accuracy']:.4f}" in page


def _counting_predict_proba(monkeypatch, clf) -> list[int]:
    """Count ``clf.predict_proba`` calls (``predict`` goes through it too); returns the list of batch lengths."""
    calls: list[int] = []
    original = clf.predict_proba

    def counting(X):
        calls.append(len(X))
        return original(X)

    monkeypatch.setattr(clf, "predict_proba", counting)
    return calls


def test_report_and_evaluate_predict_once_and_name_the_trained_backbone(fitted, tmp_path, monkeypatch):
    clf, X, y, _ = fitted
    assert clf.backbone is None and clf.backbone_ == "bn_cnn"  # the default preset chose it in fit
    calls = _counting_predict_proba(monkeypatch, clf)
    index = write_report(clf, X, y, str(tmp_path / "one"))
    assert calls == [len(X)]  # metrics, every figure and the Grad-CAM titles share one pass
    page = open(index, encoding="utf-8").read()
    assert "<h1>CNNClassifier (bn_cnn)</h1>" in page and "not drawn" not in page

    calls.clear()
    proba = clf.predict_proba(X)
    result = evaluate(clf, X, y, proba=proba)
    write_report(clf, X, y, str(tmp_path / "two"), proba=proba)
    assert calls == [len(X)]  # the caller's pass only: what the CLI's evaluate command does
    assert result["accuracy"] == pytest.approx(evaluate(clf, X, y)["accuracy"]) and len(calls) == 2


def test_report_title_falls_back_to_the_parameter_on_models_without_backbone_(fitted, tmp_path, monkeypatch):
    from sklearn_imgcls._core.introspection import trained_backbone

    clf, X, y, _ = fitted
    old = CNNClassifier("simple_cnn")  # a model saved before fit recorded backbone_ has only the parameter
    assert trained_backbone(old) == "simple_cnn" and trained_backbone(clf) == "bn_cnn"
    monkeypatch.delattr(clf, "backbone_")
    monkeypatch.setattr(clf, "backbone", "simple_cnn")
    page = open(write_report(clf, X[:20], y[:20], str(tmp_path / "old"), n_examples=2), encoding="utf-8").read()
    assert "<h1>CNNClassifier (simple_cnn)</h1>" in page


def test_top_k_is_capped_below_the_number_of_classes_so_it_means_something():
    import warnings

    from sklearn.base import BaseEstimator, ClassifierMixin

    from sklearn_imgcls.metrics import evaluate

    class Fixed(ClassifierMixin, BaseEstimator):  # a three-class classifier whose probabilities are known
        def fit(self, X, y):
            self.classes_ = np.array(["a", "b", "c"])
            return self

        def predict_proba(self, X):
            return np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.5, 0.1, 0.4], [0.1, 0.2, 0.7]])

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn's "k >= n_classes ... meaningless" would be raised here
        result = evaluate(Fixed().fit(None, None), np.zeros((4, 4)), np.array(["a", "b", "b", "c"]))
    assert result["k"] == 2
    assert result["top_k_accuracy"] == pytest.approx(3 / 4)  # the third image's "b" ranks third


def test_history_has_one_accuracy_column_and_whole_epoch_ticks(digits_small):
    from sklearn_imgcls import CNNClassifier
    from sklearn_imgcls.plot import plot_history

    X, y = digits_small
    clf = CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=3, validation_fraction=0.2,
                        scoring=["accuracy"], random_state=0).fit(X, y)
    keys = {key for key in clf.history_[-1] if key.startswith("valid_") and not key.endswith(("_best", "_count"))}
    assert keys == {"valid_loss", "valid_accuracy"}  # skorch's own valid_acc no longer doubles it
    fig = plot_history(clf)
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
    assert [line.get_label() for line in fig.axes[1].get_lines()] == ["valid accuracy"]


def test_activation_maps_pick_every_class_and_mistakes_beside_successes(digits_small):
    from sklearn_imgcls import CNNClassifier
    from sklearn_imgcls._core.examples import diverse_examples
    from sklearn_imgcls.plot import plot_cam, plot_precision_recall

    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 0, 1, 1, 2, 0, 2])
    picked = diverse_examples(y_true, y_pred, 6).tolist()
    assert picked == [1, 3, 6, 0, 4, 5]  # per class: the mistake first, then a success; classes take turns
    X, y = digits_small
    order = np.argsort(y, kind="stable")  # sorted by class: the first images are all one class
    X, y = X[order], y[order]
    clf = CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=2, random_state=0).fit(X, y)
    fig = plot_cam(clf, X, n=8, y=y)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 8 and len({t.split(": ")[1].split(" / ")[0] for t in titles}) == 8  # 8 true classes
    ax = plot_precision_recall(clf, X, y).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("recall", "precision")  # no "Positive label: 1"

"""Evaluating a multi-label model: metrics, per-label figures, Grad-CAM per label, the HTML report in a browser.

One small real model (12x12 images carrying any of three shapes: a horizontal bar, a vertical bar,
a dot) is trained once for the module; every number is checked against scikit-learn's own functions.
"""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls import plot as P
from sklearn_imgcls.explain import grad_cam
from sklearn_imgcls.metrics import evaluate, predictions
from sklearn_imgcls.plot_multilabel import plot_label_distribution
from sklearn_imgcls.report import write_report
from sklearn_imgcls.validation_report import validate

matplotlib.use("Agg")

NAMES = np.array(["hbar", "vbar", "dot"])


def shapes(n: int, seed: int = 0, side: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """``n`` grey noise images with a horizontal bar, a vertical bar and/or a dot; their (n, 3) 0/1 labels."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, 3)) < 0.45).astype(int)
    X = (rng.random((n, side, side)) * 60).astype(np.uint8)
    for i, (h, v, d) in enumerate(Y):
        if h:
            X[i, rng.integers(1, side - 1), :] = 255
        if v:
            X[i, :, rng.integers(1, side - 1)] = 255
        if d:
            r, c = rng.integers(0, side - 3, 2)
            X[i, r : r + 3, c : c + 3] = 200
    return X, Y


def as_lists(Y: np.ndarray) -> list[list[str]]:
    return [list(NAMES[row == 1]) for row in Y]


@pytest.fixture(scope="module")
def model():
    X, Y = shapes(130)
    clf = CNNClassifier(preset="fast", max_epochs=5, lr=0.01, random_state=0, verbose=0)
    clf.fit(X[:90], as_lists(Y[:90]))
    order = [list(clf.classes_).index(name) for name in NAMES]  # classes_ are sorted: dot, hbar, vbar
    Y_test = np.zeros_like(Y[90:])
    Y_test[:, order] = Y[90:]
    return clf, X[90:], Y_test, as_lists(Y[:90])


def test_evaluate_gives_sklearn_multilabel_metrics(model):
    clf, X, Y, _ = model
    proba = clf.predict_proba(X)
    result = evaluate(clf, X, Y, proba=proba)
    Y_pred = clf.predict(X)
    assert np.array_equal(predictions(clf, X, proba)[0], Y_pred)  # one definition of a predicted label
    assert result["subset_accuracy"] == pytest.approx(skm.accuracy_score(Y, Y_pred))
    assert result["hamming_loss"] == pytest.approx(skm.hamming_loss(Y, Y_pred))
    assert result["f1_micro"] == pytest.approx(skm.f1_score(Y, Y_pred, average="micro"))
    assert result["f1_macro"] == pytest.approx(skm.f1_score(Y, Y_pred, average="macro", zero_division=0))
    assert result["f1_samples"] == pytest.approx(skm.f1_score(Y, Y_pred, average="samples", zero_division=1.0))
    assert result["label_ranking_average_precision"] == pytest.approx(skm.label_ranking_average_precision_score(Y, proba))
    per_label = result["per_label"]
    assert list(per_label.index) == list(clf.classes_)
    assert per_label["support"].tolist() == Y.sum(axis=0).tolist()
    for j, label in enumerate(clf.classes_):
        assert per_label.loc[label, "average_precision"] == pytest.approx(skm.average_precision_score(Y[:, j], proba[:, j]))
        assert per_label.loc[label, "roc_auc"] == pytest.approx(skm.roc_auc_score(Y[:, j], proba[:, j]))
        assert per_label.loc[label, "tp"] == int(((Y[:, j] == 1) & (Y_pred[:, j] == 1)).sum())
    assert "accuracy" not in result and "confusion_matrix" not in result  # no multiclass numbers
    assert result["roc_auc_macro"] > 0.6  # the model learned something: the metrics are not noise


def test_evaluate_reads_y_in_every_form_fit_takes(model):
    clf, X, Y, _ = model
    proba = clf.predict_proba(X)
    reference = evaluate(clf, X, Y, proba=proba)
    lists = [[label for label, on in zip(clf.classes_, row) if on] for row in Y]
    frame = pd.DataFrame(Y, columns=clf.classes_)[["vbar", "dot", "hbar"]]  # columns matched by name
    for form in (lists, frame, Y.tolist(), np.array(lists, dtype=object)):
        assert evaluate(clf, X, form, proba=proba)["f1_samples"] == reference["f1_samples"]


def test_per_label_threshold_changes_predictions_and_scores(model):
    clf, X, Y, _ = model
    proba = clf.predict_proba(X)
    strict = clf.set_params(threshold=[0.5, 0.5, 0.99])
    try:
        result = evaluate(strict, X, Y, proba=proba)
        assert result["per_label"].loc["vbar", "tp"] + result["per_label"].loc["vbar", "fp"] == int((proba[:, 2] >= 0.99).sum())
        assert np.array_equal(predictions(strict, X, proba)[0], strict.predict(X))
    finally:
        clf.set_params(threshold=0.5)


def test_evaluate_names_bad_labels(model, digits_small):
    clf, X, Y, _ = model
    with pytest.raises(ValueError, match="never saw: 'cat'"):
        evaluate(clf, X, [["cat"]] * len(X))
    with pytest.raises(ValueError, match="several labels per image"):
        evaluate(clf, X, ["dot"] * len(X))
    with pytest.raises(ValueError, match="2 columns but the model has 3 labels"):
        evaluate(clf, X, Y[:, :2])
    images, digits_y = digits_small
    multiclass = CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=1, random_state=0).fit(images[:60], digits_y[:60])
    with pytest.raises(ValueError, match="trained for single-label"):
        evaluate(multiclass, images[:3], [[1, 2], [3], []])


def test_multiclass_plots_draw_a_multilabel_model_per_label(model):
    clf, X, Y, y_train = model
    proba = clf.predict_proba(X)
    confusion = P.plot_confusion_matrix(clf, X, Y, proba=proba)
    assert [ax.get_title() for ax in confusion.axes] == list(clf.classes_)  # one 2x2 matrix per label
    assert confusion.axes[0].images[0].get_array().shape == (2, 2)
    normalised = P.plot_confusion_matrix(clf, X, Y, normalize="true", proba=proba)
    assert "normalised over true" in normalised._suptitle.get_text()
    curves = P.plot_precision_recall(clf, X, Y, proba=proba)
    legend = [t.get_text() for t in curves.axes[0].get_legend().get_texts()]
    assert [t.split(" (")[0] for t in legend] == [*clf.classes_, "micro-average"]
    roc = P.plot_roc(clf, X, Y, proba=proba)
    assert roc.axes[0].get_title() == "ROC curve per label"
    losses = P.plot_top_losses(clf, X, Y, n=4, proba=proba)
    assert "binary cross-entropy" in losses._suptitle.get_text()
    y_test = [[label for label, on in zip(clf.classes_, row) if on] for row in Y]
    distribution = P.plot_class_distribution(y_train, y_test)  # label lists: images per label, not per list
    heights = [bar.get_height() for bar in distribution.axes[0].patches[:3]]
    assert heights == [sum(label in row for row in y_train) for label in sorted(NAMES)]
    with pytest.raises(ValueError, match="normalize must be"):
        P.plot_confusion_matrix(clf, X, Y, normalize="rows", proba=proba)
    matplotlib.pyplot.close("all")


def test_label_distribution_counts_co_occurrence():
    y = [["a", "b"], ["a"], [], ["b", "c"], ["a", "b", "c"]]
    fig = plot_label_distribution(y)
    together = fig.axes[2].images[0].get_array()
    assert together.tolist() == [[3, 2, 1], [2, 3, 2], [1, 2, 2]]
    assert [bar.get_height() for bar in fig.axes[1].patches] == [1, 1, 2, 1]  # images with 0, 1, 2, 3 labels
    matplotlib.pyplot.close("all")


def test_grad_cam_explains_one_label_at_a_time(model):
    clf, X, Y, _ = model
    image = X[np.flatnonzero(Y[:, 1] & Y[:, 2])[:1]]  # an image with both bars
    hbar, vbar = grad_cam(clf, image, target="hbar"), grad_cam(clf, image, target="vbar")
    assert hbar.shape == (1, 12, 12) and not np.allclose(hbar, vbar)
    assert np.array_equal(grad_cam(clf, image), grad_cam(clf, image, target=clf.classes_[clf.predict_proba(image).argmax()]))
    with pytest.raises(ValueError, match="'cat' is not one of the classes"):
        grad_cam(clf, image, target="cat")
    fig = P.plot_cam(clf, X, n=6, y=Y)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 6 and {t.split(" ")[0] for t in titles} == set(clf.classes_)  # labels take turns
    assert all(("found" in t) != ("missed" in t) for t in titles)
    matplotlib.pyplot.close("all")


def test_validate_counts_images_per_label(model):
    _, X, Y, _ = model
    report = validate(X, Y.tolist())
    assert report.summary["class_counts"] == {0: int(Y[:, 0].sum()), 1: int(Y[:, 1].sum()), 2: int(Y[:, 2].sum())}


def test_the_multilabel_report_renders_in_a_browser(model, browser, tmp_path):
    clf, X, Y, y_train = model
    index = write_report(clf, X, Y, str(tmp_path / "report"), y_train=y_train)
    files = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert files == ["activation_maps.png", "history.png", "index.html", "label_confusion.png",
                     "label_distribution.png", "metrics.json", "precision_recall.png", "roc.png", "top_losses.png"]
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text(),
                       parse_constant=lambda name: pytest.fail(f"metrics.json holds {name}, which is not JSON"))
    assert set(saved["per_label"]) == set(clf.classes_) and "f1_samples" in saved
    browser.get(f"file://{index}")
    images = browser.execute_script(
        "return [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
    assert len(images) == 7 and all(loaded for _, loaded in images), images
    text = browser.find_element("tag name", "body").text
    assert "Per label" in text and "Subset accuracy (exact match)" in text and "not drawn" not in text
    assert "3 labels (multi-label; threshold 0.5)" in text
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []


def test_report_refuses_the_corruption_section_for_multilabel(model, tmp_path):
    clf, X, Y, _ = model
    with pytest.raises(ValueError, match="not available for a multi-label model"):
        write_report(clf, X, Y, str(tmp_path / "r"), corruptions=["gaussian_noise"])

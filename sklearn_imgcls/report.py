"""A self-contained HTML report of a fitted classifier: metrics, plots, explanations, and optionally robustness."""

from __future__ import annotations

import html
import json
import os
from typing import Any

import numpy as np

from . import plot as P
from . import plot_multilabel as ML
from ._core.introspection import final_estimator, trained_backbone
from .metrics import evaluate
from .metrics_multilabel import is_multilabel

__all__ = ["write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1500px; padding: 0 1em; color: #222; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 1em; align-items: start; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; } figure { margin: 0; }
img { max-width: 100%; border: 1px solid #eee; } .note { color: #a33; }
"""

_SUMMARY = [
    ("accuracy", "Accuracy"), ("balanced_accuracy", "Balanced accuracy"), ("precision_macro", "Precision (macro)"),
    ("recall_macro", "Recall (macro)"), ("f1_macro", "F1 (macro)"), ("f1_weighted", "F1 (weighted)"),
    ("roc_auc_ovr", "ROC-AUC (one-vs-rest)"), ("log_loss", "Log loss"), ("top_k_accuracy", "Top-k accuracy"),
]
_MULTILABEL_SUMMARY = [
    ("subset_accuracy", "Subset accuracy (exact match)"), ("hamming_loss", "Hamming loss"),
    ("f1_samples", "F1 (samples)"), ("f1_micro", "F1 (micro)"), ("f1_macro", "F1 (macro)"),
    ("precision_micro", "Precision (micro)"), ("recall_micro", "Recall (micro)"),
    ("average_precision_macro", "Average precision (macro)"), ("roc_auc_macro", "ROC-AUC (macro over labels)"),
    ("label_ranking_average_precision", "Label ranking average precision"),
]


def _jsonable(result: dict) -> dict:
    out = {}
    for key, value in result.items():
        if hasattr(value, "to_dict"):
            frame = value.astype(object).where(value.notna(), None)  # NaN is not JSON: null
            frame.index = frame.index.map(str)
            frame.columns = frame.columns.map(str)
            out[key] = frame.to_dict(orient="index")
        elif isinstance(value, float) and not np.isfinite(value):
            out[key] = None
        else:
            out[key] = value
    return out


def write_report(
    estimator: Any,
    X: Any,
    y: Any,
    out_dir: str,
    *,
    y_train: Any = None,
    search: Any = None,
    title: str | None = None,
    n_examples: int = 10,
    proba: np.ndarray | None = None,
    corruptions: Any = None,
    severities: Any = (1, 2, 3, 4, 5),
) -> str:
    """Write ``index.html``, its PNG figures and ``metrics.json`` into ``out_dir``.

    Parameters
    ----------
    estimator : fitted classifier of ours
    X, y : evaluation images and true labels
        For a multi-label model (``multilabel_``) ``y`` is an (n, k) 0/1
        matrix or one list of labels per image; the report then shows the
        multi-label metrics, a table per label and per-label figures
        (confusion matrices, precision-recall and ROC curves, label
        frequencies and co-occurrence, top losses, Grad-CAM of each label).
    out_dir : str
        Created if missing; existing files of the same names are replaced.
    y_train : array-like, optional
        Training labels, added to the class-distribution plot.
    search : fitted GridSearchCV, optional
        Adds the hyperparameter plot.
    title : str, optional
        Page title; defaults to the estimator's class and the backbone it
        trained (``backbone_``, the preset resolved).
    n_examples : int
        Images in the top-losses and activation-map grids.
    proba : numpy.ndarray, optional
        Precomputed ``estimator.predict_proba(X)`` (e.g. by a caller that
        already ran :func:`~sklearn_imgcls.metrics.evaluate`); otherwise it is
        computed here, once, and shared by the metrics and every figure.
    corruptions : "all", list of str or CorruptionReport, optional
        Adds a "Robustness to corruptions" section (heatmap, per-corruption
        table, mCA; also in ``metrics.json``): the corruption names to
        measure with :func:`~sklearn_imgcls.corruption.corruption_report`, or
        a report already computed. Off by default, so reports stay fast.
    severities : sequence of int
        Severities measured when ``corruptions`` names corruptions.

    Returns
    -------
    str
        Path of ``index.html``.
    """
    import matplotlib.pyplot  # noqa: F401 - the figures need it: fail before any work

    multilabel = is_multilabel(estimator)
    if multilabel and corruptions is not None:
        raise ValueError("The robustness-to-corruptions section measures single-label accuracy; it is not available "
                         "for a multi-label model: leave corruptions=None.")
    os.makedirs(out_dir, exist_ok=True)
    if proba is None:
        proba = estimator.predict_proba(X)
    result = evaluate(estimator, X, y, proba=proba)
    robustness = _corruptions(estimator, X, y, corruptions, severities)
    saved = _jsonable(result)
    if robustness is not None:
        saved["corruptions"] = {**_jsonable(robustness.summary()), "table": robustness.table.to_dict(orient="records")}
    with open(os.path.join(out_dir, "metrics.json"), "w") as handle:
        json.dump(saved, handle, indent=2, default=str)

    maker = _multilabel_figures if multilabel else _figures
    figures = maker(estimator, X, y, y_train=y_train, proba=proba, n_examples=n_examples)
    if search is not None:
        figures.append(("search.png", "Hyperparameter search", lambda: P.plot_search(search)))
    sections = [_draw(out_dir, filename, caption, make) for filename, caption, make in figures]
    robust_section = "" if robustness is None else _robustness_section(out_dir, robustness)

    summary = "".join(
        f"<tr><th>{label}{' (k=' + str(result['k']) + ')' if key == 'top_k_accuracy' else ''}</th><td>{result[key]:.4f}</td></tr>"
        for key, label in (_MULTILABEL_SUMMARY if multilabel else _SUMMARY)
    )
    per_class = result["per_label" if multilabel else "per_class"].to_html(float_format=lambda v: f"{v:.3f}", na_rep="-")
    kind = f"{len(estimator.classes_)} labels (multi-label; threshold {_threshold(estimator)})" if multilabel \
        else f"{len(estimator.classes_)} classes"
    backbone = trained_backbone(estimator)
    name = title or (f"{type(estimator).__name__} ({backbone})" if backbone is not None else type(estimator).__name__)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(name)}</title><style>{_STYLE}</style></head>
<body>
<h1>{html.escape(name)}</h1>
<p>{len(y)} evaluation images, {html.escape(kind)}. Metrics: <a href="metrics.json">metrics.json</a>.</p>
<h2>Metrics</h2><table>{summary}</table>
<h2>Per {"label" if multilabel else "class"}</h2>{per_class}
<h2>Figures</h2>
<div class="figures">{''.join(sections)}</div>
{robust_section}
</body></html>
"""
    path = os.path.join(out_dir, "index.html")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return path


def _figures(estimator: Any, X: Any, y: Any, *, y_train: Any, proba: Any, n_examples: int) -> list:
    """``(filename, caption, draw)`` of the figures of a multiclass model."""
    return [
        ("confusion_matrix.png", "Confusion matrix (counts)", lambda: P.plot_confusion_matrix(estimator, X, y, proba=proba)),
        ("confusion_matrix_normalized.png", "Confusion matrix (recall per class)",
         lambda: P.plot_confusion_matrix(estimator, X, y, normalize="true", proba=proba)),
        ("roc.png", "ROC curves", lambda: P.plot_roc(estimator, X, y, proba=proba)),
        ("precision_recall.png", "Precision-recall curves", lambda: P.plot_precision_recall(estimator, X, y, proba=proba)),
        ("history.png", "Training history", lambda: P.plot_history(estimator)),
        ("class_distribution.png", "Class distribution", lambda: P.plot_class_distribution(y_train if y_train is not None else y, y if y_train is not None else None)),
        ("top_losses.png", "Top losses", lambda: P.plot_top_losses(estimator, X, y, n=n_examples, proba=proba)),
        ("activation_maps.png", "Class activation maps (Grad-CAM)", lambda: P.plot_cam(estimator, X, n=n_examples, proba=proba, y=y)),
    ]


def _multilabel_figures(estimator: Any, X: Any, y: Any, *, y_train: Any, proba: Any, n_examples: int) -> list:
    """``(filename, caption, draw)`` of the figures of a multi-label model: one view per label."""
    labels = estimator.classes_
    n_cams = max(n_examples, min(len(labels), 20))  # every label gets a Grad-CAM panel (up to 20 labels)
    return [
        ("label_confusion.png", "Confusion matrix per label", lambda: ML.plot_label_confusion(estimator, X, y, proba=proba)),
        ("precision_recall.png", "Precision-recall curve per label",
         lambda: ML.plot_label_precision_recall(estimator, X, y, proba=proba)),
        ("roc.png", "ROC curve per label", lambda: ML.plot_label_roc(estimator, X, y, proba=proba)),
        ("history.png", "Training history", lambda: P.plot_history(estimator)),
        ("label_distribution.png", "Label distribution", lambda: ML.plot_label_distribution(
            y_train if y_train is not None else y, y if y_train is not None else None, labels=labels)),
        ("top_losses.png", "Top losses", lambda: ML.plot_label_top_losses(estimator, X, y, n=n_examples, proba=proba)),
        ("activation_maps.png", "Class activation maps per label (Grad-CAM)",
         lambda: ML.plot_label_cam(estimator, X, n=n_cams, proba=proba, y=y)),
    ]


def _threshold(estimator: Any) -> str:
    threshold = np.asarray(getattr(final_estimator(estimator), "threshold", 0.5), dtype=float)
    return f"{float(threshold):g}" if threshold.ndim == 0 else "per label: " + ", ".join(f"{t:g}" for t in threshold)


def _draw(out_dir: str, filename: str, caption: str, make: Any) -> str:
    """Save the figure ``make()`` draws as ``filename``; its HTML, or a note saying why it was not drawn."""
    import matplotlib.pyplot as plt

    try:
        fig = make()
    except Exception as exc:  # one failed figure must not lose the report
        return f'<p class="note">{html.escape(caption)}: not drawn ({html.escape(type(exc).__name__)}: {html.escape(str(exc))})</p>'
    fig.savefig(os.path.join(out_dir, filename), dpi=90)
    plt.close(fig)
    return f'<figure><img src="{filename}" alt="{html.escape(caption)}"></figure>'  # the figure carries its own title


def _corruptions(estimator: Any, X: Any, y: Any, corruptions: Any, severities: Any) -> Any:
    """The corruption report to show: None (no section), the one given, or one measured now."""
    from .corruption import CorruptionReport, corruption_report

    if corruptions is None or isinstance(corruptions, CorruptionReport):
        return corruptions
    return corruption_report(estimator, X, y, corruptions, severities)


def _robustness_section(out_dir: str, report: Any) -> str:
    """The HTML of the robustness section: summary numbers, the heatmap, the per-corruption table."""
    from .plot_robustness import plot_corruption_heatmap

    figure = _draw(out_dir, "corruption_heatmap.png", "Accuracy per corruption and severity",
                   lambda: plot_corruption_heatmap(report))
    rows = [("Clean accuracy", report.clean_accuracy), ("Mean corruption accuracy (mCA)", report.mean_corruption_accuracy)]
    if report.mce is not None:
        rows += [("mCE vs baseline", report.mce), ("Relative mCE vs baseline", report.relative_mce)]
    summary = "".join(f"<tr><th>{label}</th><td>{value:.4f}</td></tr>" for label, value in rows)
    matrix = report.accuracy_matrix()
    matrix.columns = [f"severity {s}" for s in matrix.columns]
    table = report.per_corruption().join(matrix).to_html(float_format=lambda v: f"{v:.3f}")
    return (f"<h2>Robustness to corruptions</h2><p>Accuracy on corrupted copies of the {report.n_images} evaluation "
            f"images (seed {report.random_state}); change is the mean accuracy over severities minus the clean "
            f"accuracy.</p><table>{summary}</table>{figure}{table}")

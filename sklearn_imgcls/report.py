"""A self-contained HTML report of a fitted classifier: metrics, plots, explanations."""

from __future__ import annotations

import html
import json
import os
from typing import Any

import numpy as np

from . import plot as P
from ._core.introspection import trained_backbone
from .metrics import evaluate

__all__ = ["write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; } figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
img { max-width: 100%; border: 1px solid #eee; } .note { color: #a33; }
"""

_SUMMARY = [
    ("accuracy", "Accuracy"), ("balanced_accuracy", "Balanced accuracy"), ("precision_macro", "Precision (macro)"),
    ("recall_macro", "Recall (macro)"), ("f1_macro", "F1 (macro)"), ("f1_weighted", "F1 (weighted)"),
    ("roc_auc_ovr", "ROC-AUC (one-vs-rest)"), ("log_loss", "Log loss"), ("top_k_accuracy", "Top-k accuracy"),
]


def _jsonable(result: dict) -> dict:
    out = {}
    for key, value in result.items():
        if hasattr(value, "to_dict"):
            frame = value.copy()
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
) -> str:
    """Write ``index.html``, its PNG figures and ``metrics.json`` into ``out_dir``.

    Parameters
    ----------
    estimator : fitted classifier of ours
    X, y : evaluation images and true labels
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

    Returns
    -------
    str
        Path of ``index.html``.
    """
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    if proba is None:
        proba = estimator.predict_proba(X)
    result = evaluate(estimator, X, y, proba=proba)
    with open(os.path.join(out_dir, "metrics.json"), "w") as handle:
        json.dump(_jsonable(result), handle, indent=2, default=str)

    figures: list[tuple[str, str, Any]] = [
        ("confusion_matrix.png", "Confusion matrix (counts)", lambda: P.plot_confusion_matrix(estimator, X, y, proba=proba)),
        ("confusion_matrix_normalized.png", "Confusion matrix (recall per class)",
         lambda: P.plot_confusion_matrix(estimator, X, y, normalize="true", proba=proba)),
        ("roc.png", "ROC curves", lambda: P.plot_roc(estimator, X, y, proba=proba)),
        ("precision_recall.png", "Precision-recall curves", lambda: P.plot_precision_recall(estimator, X, y, proba=proba)),
        ("history.png", "Training history", lambda: P.plot_history(estimator)),
        ("class_distribution.png", "Class distribution", lambda: P.plot_class_distribution(y_train if y_train is not None else y, y if y_train is not None else None)),
        ("top_losses.png", "Top losses", lambda: P.plot_top_losses(estimator, X, y, n=n_examples, proba=proba)),
        ("activation_maps.png", "Class activation maps (Grad-CAM)", lambda: P.plot_cam(estimator, X, n=n_examples, proba=proba)),
    ]
    if search is not None:
        figures.append(("search.png", "Hyperparameter search", lambda: P.plot_search(search)))
    sections = []
    for filename, caption, make in figures:
        try:
            fig = make()
        except Exception as exc:  # one failed figure must not lose the report
            sections.append(f'<p class="note">{html.escape(caption)}: not drawn ({html.escape(type(exc).__name__)}: {html.escape(str(exc))})</p>')
            continue
        fig.savefig(os.path.join(out_dir, filename), dpi=90)
        plt.close(fig)
        sections.append(f'<figure><img src="{filename}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>')

    summary = "".join(
        f"<tr><th>{label}{' (k=' + str(result['k']) + ')' if key == 'top_k_accuracy' else ''}</th><td>{result[key]:.4f}</td></tr>"
        for key, label in _SUMMARY
    )
    per_class = result["per_class"].to_html(float_format=lambda v: f"{v:.3f}")
    backbone = trained_backbone(estimator)
    name = title or (f"{type(estimator).__name__} ({backbone})" if backbone is not None else type(estimator).__name__)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(name)}</title><style>{_STYLE}</style></head>
<body>
<h1>{html.escape(name)}</h1>
<p>{len(y)} evaluation images, {len(estimator.classes_)} classes. Metrics: <a href="metrics.json">metrics.json</a>.</p>
<h2>Metrics</h2><table>{summary}</table>
<h2>Per class</h2>{per_class}
<h2>Figures</h2>
{''.join(sections)}
</body></html>
"""
    path = os.path.join(out_dir, "index.html")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return path

"""Figures of robustness to corruptions: the corruption x severity heatmap, the shift and rotation curves.

Each function returns a :class:`matplotlib.figure.Figure` and never calls
``plt.show()``; they draw what :mod:`sklearn_imgcls.corruption` measured.
matplotlib is an optional dependency: ``pip install 'sklearn-imgcls[plot]'``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_corruption_heatmap", "plot_rotation_curve", "plot_shift_curve"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("Plotting needs matplotlib: pip install 'sklearn-imgcls[plot]'.") from None
    return plt


def plot_corruption_heatmap(report: Any):
    """Accuracy per corruption (rows, grouped by family) and severity (columns), each cell labelled.

    Parameters
    ----------
    report : CorruptionReport
        The output of :func:`sklearn_imgcls.corruption.corruption_report`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    matrix = report.accuracy_matrix()
    families = report.per_corruption()["family"]
    order = sorted(matrix.index, key=lambda name: (families[name], list(matrix.index).index(name)))
    matrix = matrix.loc[order]
    values = matrix.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.1 * values.shape[1] + 3.2, 0.38 * values.shape[0] + 1.6))
    image = ax.imshow(values, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    for (row, col), value in np.ndenumerate(values):
        ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="black" if 0.25 < value < 0.85 else "white")
    ax.set_xticks(range(values.shape[1]), [str(s) for s in matrix.columns])
    ax.set_yticks(range(values.shape[0]), [f"{name} ({families[name]})" for name in matrix.index])
    ax.set_xlabel("severity")
    ax.set_title(f"Accuracy under corruption (clean {report.clean_accuracy:.3f}, "
                 f"mCA {report.mean_corruption_accuracy:.3f})", fontsize=10)
    fig.colorbar(image, ax=ax, label="accuracy", fraction=0.05)
    fig.tight_layout()
    return fig


def _curve(curves: Any, column: str, xlabel: str, title: str):
    plt = _pyplot()
    if hasattr(curves, "columns"):
        curves = {"model": curves}
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot(curve[column], curve["accuracy"], "o-", label=str(name))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_shift_curve(curves: Any):
    """Accuracy against the translation in pixels, one line per model.

    Parameters
    ----------
    curves : DataFrame or dict of str to DataFrame
        Output(s) of :func:`sklearn_imgcls.corruption.shift_curve`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _curve(curves, "pixels", "shift (pixels)", "Accuracy under translation")


def plot_rotation_curve(curves: Any):
    """Accuracy against the rotation in degrees, one line per model.

    Parameters
    ----------
    curves : DataFrame or dict of str to DataFrame
        Output(s) of :func:`sklearn_imgcls.corruption.rotation_curve`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _curve(curves, "degrees", "rotation (degrees)", "Accuracy under rotation")

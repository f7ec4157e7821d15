"""Everyday robustness: accuracy under image corruptions, shift and rotation curves, an sklearn scorer.

A corruption is a registry component (see ``CorruptionSpec`` in
:mod:`sklearn_imgcls.plugin`; ``sklearn_imgcls.list_corruptions()`` lists the
installed ones): ``corrupt(images, severity, generator)`` on float ``(N, C, H,
W)`` batches in ``[0, 1]``. The functions here corrupt the evaluation images
and send them through the estimator's own ``predict``, in the caller's layout
and dtype (uint8 in, uint8 out; float images outside ``[0, 1]`` are mapped to
it and back), so the estimator normalises them exactly as it does clean ones.

- :func:`corruption_report`: accuracy per corruption and severity, the clean
  accuracy, the mean corruption accuracy (mCA) and, against a baseline model,
  the corruption errors of Hendrycks & Dietterich (2019): mCE and relative mCE.
- :func:`shift_curve`, :func:`rotation_curve`: accuracy against the
  translation in pixels and the rotation in degrees.
- :func:`corruption_scorer`: mCA as a scorer for ``cross_validate`` and
  ``GridSearchCV``.

Every corruption and severity draws from its own generator, seeded from
``random_state``, the corruption's name and the severity, so results repeat
and do not change when other corruptions are added to the list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from .plugin.registry import get_registry
from .robustness_corruptions import (
    DEFAULT_BATCH_SIZE,
    EvaluationImages,
    check_batch_size,
    check_random_state,
    check_severities,
    corruption_generator,
    resolve_corruptions,
)

__all__ = ["CorruptionReport", "CorruptionScorer", "corruption_report", "corruption_scorer", "rotation_curve",
           "shift_curve"]

DEFAULT_SEVERITIES = (1, 2, 3, 4, 5)


@dataclass
class CorruptionReport:
    """Accuracy of one model under corruptions, as returned by :func:`corruption_report`.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy, one row per corruption and severity after a first ``"clean"``
        row (severity 0): columns ``corruption``, ``family``, ``severity``,
        ``accuracy``, ``change`` (accuracy minus the clean accuracy).
    clean_accuracy : float
    mean_corruption_accuracy : float
        mCA: the mean accuracy over every corruption and severity (clean row excluded).
    mce, relative_mce : float or None
        With a baseline: the mean over corruptions of the corruption error
        summed over severities and divided by the baseline's (mCE), and of the
        same for the error minus the clean error (relative mCE). 1.0 means as
        robust as the baseline, below 1.0 more robust. A corruption that does
        not hurt the baseline at all has no relative CE and is left out.
    baseline : CorruptionReport or None
    n_images : int
    random_state : int
    """

    table: Any
    clean_accuracy: float
    mean_corruption_accuracy: float
    n_images: int
    random_state: int
    mce: float | None = None
    relative_mce: float | None = None
    baseline: "CorruptionReport | None" = field(default=None, repr=False)

    @property
    def corrupted(self) -> Any:
        """The table without its clean row."""
        return self.table[self.table["corruption"] != "clean"]

    def accuracy_matrix(self) -> Any:
        """Accuracy as a corruption x severity DataFrame (rows in the order measured)."""
        rows = self.corrupted
        matrix = rows.pivot(index="corruption", columns="severity", values="accuracy")
        return matrix.loc[list(dict.fromkeys(rows["corruption"]))]

    def per_corruption(self) -> Any:
        """One row per corruption: family, mean accuracy over severities, change, and CE / relative CE with a baseline."""
        rows = self.corrupted
        out = rows.groupby("corruption", sort=False).agg(family=("family", "first"), accuracy=("accuracy", "mean"))
        out["change"] = out["accuracy"] - self.clean_accuracy
        if self.baseline is not None:
            ce, relative = _corruption_errors(self, self.baseline)
            out["ce"], out["relative_ce"] = ce, relative
        return out

    def summary(self) -> dict[str, Any]:
        """The headline numbers: clean accuracy, mCA, mCE and relative mCE (None without a baseline)."""
        return {"n_images": self.n_images, "clean_accuracy": self.clean_accuracy,
                "mean_corruption_accuracy": self.mean_corruption_accuracy, "mce": self.mce,
                "relative_mce": self.relative_mce}

    def to_string(self) -> str:
        """The accuracy matrix and the summary as plain text (what ``sklearn-imgcls evaluate --corruptions`` prints)."""
        matrix = self.accuracy_matrix()
        matrix.columns = [f"severity {s}" for s in matrix.columns]
        matrix["mean"] = self.per_corruption()["accuracy"]
        lines = [matrix.round(4).to_string(), f"clean accuracy: {self.clean_accuracy:.4f}",
                 f"mean corruption accuracy (mCA): {self.mean_corruption_accuracy:.4f}"]
        if self.mce is not None:
            lines += [f"mCE vs baseline: {self.mce:.4f}", f"relative mCE vs baseline: {self.relative_mce:.4f}"]
        return "\n".join(lines)


def _corruption_errors(report: CorruptionReport, baseline: CorruptionReport) -> tuple[Any, Any]:
    """Per corruption: CE (summed error / baseline's) and relative CE (summed error above clean / baseline's)."""
    mine = report.corrupted.set_index(["corruption", "severity"])["accuracy"]
    theirs = baseline.corrupted.set_index(["corruption", "severity"])["accuracy"]
    missing = sorted(set(mine.index) - set(theirs.index))
    if missing:
        raise ValueError(f"The baseline report lacks (corruption, severity) {missing[:5]}; make it with the same "
                         f"corruptions and severities.")
    if baseline.n_images != report.n_images:
        raise ValueError(f"The baseline report was measured on {baseline.n_images} images, this one on "
                         f"{report.n_images}; measure both on the same images.")
    error, base_error = (1 - mine).groupby(level=0, sort=False).sum(), (1 - theirs.loc[mine.index]).groupby(level=0, sort=False).sum()
    counts = mine.groupby(level=0, sort=False).size()
    above = error - counts * (1 - report.clean_accuracy)
    base_above = base_error - counts * (1 - baseline.clean_accuracy)
    with np.errstate(divide="ignore", invalid="ignore"):
        ce = (error / base_error).where(base_error > 0)
        relative = (above / base_above).where(base_above > 0)
    return ce, relative


def corruption_report(
    estimator: Any,
    X: Any,
    y: Any,
    corruptions: str | Sequence[str] = "all",
    severities: Sequence[int] = DEFAULT_SEVERITIES,
    *,
    baseline: Any = None,
    random_state: int | None = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> CorruptionReport:
    """Accuracy of a fitted classifier on corrupted copies of ``X``, per corruption and severity.

    Parameters
    ----------
    estimator : fitted classifier of ours, or a Pipeline ending in one
    X : array-like or sequence of image paths
        Any layout the estimator accepts (flat rows, ``(n, H, W)``, NCHW,
        NHWC; uint8 or float) or file paths, decoded once.
    y : array-like
        True labels.
    corruptions : "all", str or list of str
        Registered corruption names (``sklearn_imgcls.list_corruptions()``);
        ``"all"`` takes every installed one, e.g.
        ``list_corruptions(family="noise")`` one family.
    severities : sequence of int
        Severities to measure, each from 1 to the corruption's ``max_severity``.
    baseline : fitted estimator or CorruptionReport, optional
        The reference model for mCE and relative mCE: an estimator is measured
        here with the same corruptions, severities and seed; a report must
        cover them and have the same number of images.
    random_state : int or None
        Seeds the corruptions (None: a fresh seed).
    batch_size : int
        Images corrupted and predicted at a time (bounds memory); results
        repeat for the same ``random_state`` and ``batch_size``.

    Returns
    -------
    CorruptionReport
        ``.table`` (tidy DataFrame), ``.clean_accuracy``,
        ``.mean_corruption_accuracy``, ``.mce`` and ``.relative_mce``.

    Raises
    ------
    ValueError
        An unknown corruption (the message lists the installed ones), a
        severity out of range, an unfitted estimator, ``X`` and ``y`` of
        different lengths.
    """
    import pandas as pd

    specs = resolve_corruptions(corruptions)
    severities = check_severities(severities, specs)
    seed, batch_size = check_random_state(random_state), check_batch_size(batch_size)
    if baseline is not None and not isinstance(baseline, CorruptionReport) and not hasattr(baseline, "predict"):
        raise TypeError(f"baseline must be a fitted estimator or a CorruptionReport, got {type(baseline).__name__}.")
    data = EvaluationImages(estimator, X, y)
    clean = data.clean_accuracy()
    rows = [{"corruption": "clean", "family": "clean", "severity": 0, "accuracy": clean}]
    for name, spec in specs:
        corrupt = spec.build()
        for severity in severities:
            accuracy = data.accuracy(corrupt, severity, corruption_generator(seed, name, severity), batch_size)
            rows.append({"corruption": name, "family": spec.family, "severity": severity, "accuracy": accuracy})
    table = pd.DataFrame(rows)
    table["change"] = table["accuracy"] - clean
    report = CorruptionReport(table=table, clean_accuracy=clean, n_images=len(data), random_state=seed,
                              mean_corruption_accuracy=float(table["accuracy"].iloc[1:].mean()))
    if baseline is not None:
        if not isinstance(baseline, CorruptionReport):
            baseline = corruption_report(baseline, X, y, [name for name, _ in specs], severities,
                                         random_state=seed, batch_size=batch_size)
        ce, relative = _corruption_errors(report, baseline)
        report.baseline, report.mce = baseline, float(ce.mean())
        report.relative_mce = float(relative.mean()) if relative.notna().any() else float("nan")
    return report


def _curve(estimator: Any, X: Any, y: Any, name: str, parameter: str, amounts: Iterable, random_state: Any,
           batch_size: int) -> Any:
    import pandas as pd

    registry = get_registry()
    registry.get("corruption", name)  # an unknown name says which ones are installed
    seed, batch_size = check_random_state(random_state), check_batch_size(batch_size)
    amounts = list(amounts)
    bad = [a for a in amounts if isinstance(a, bool) or not isinstance(a, (int, float, np.integer, np.floating))
           or not np.isfinite(a) or a < 0]
    if bad:  # checked before any image is predicted
        raise ValueError(f"{parameter} must be non-negative numbers (magnitudes: each image's direction is drawn at "
                         f"random, seeded), got {bad[:5]}; for a fixed direction use build_corruption({name!r}, "
                         f"{parameter}=..., direction=...) with corruption_report.")
    corrupts = {a: registry.build("corruption", name, **{parameter: a}) for a in amounts if a != 0}
    data = EvaluationImages(estimator, X, y)
    rows = []
    for amount in amounts:
        if amount == 0:  # no shift / rotation at all: the clean images
            accuracy = data.clean_accuracy()
        else:
            generator = corruption_generator(seed, f"{name}:{amount}", 1)
            accuracy = data.accuracy(corrupts[amount], 1, generator, batch_size)
        rows.append({parameter: amount, "accuracy": accuracy})
    if not rows:
        raise ValueError(f"{parameter} is empty: give the amounts to measure, e.g. {parameter}=range(0, 9).")
    return pd.DataFrame(rows)


def shift_curve(estimator: Any, X: Any, y: Any, pixels: Iterable[int] = range(0, 9), *,
                random_state: int | None = 0, batch_size: int = DEFAULT_BATCH_SIZE) -> Any:
    """Accuracy when every image is translated by ``pixels`` (the ``translate`` corruption, severity 1).

    Parameters
    ----------
    estimator : fitted classifier of ours, or a Pipeline ending in one
    X, y : evaluation images (arrays or file paths) and labels
    pixels : iterable of int
        Translations to measure; 0 is the clean accuracy.
    random_state : int or None
        Seeds the direction of each shift.
    batch_size : int
        Images shifted and predicted at a time.

    Returns
    -------
    pandas.DataFrame
        Columns ``pixels`` and ``accuracy``.
    """
    return _curve(estimator, X, y, "translate", "pixels", pixels, random_state, batch_size)


def rotation_curve(estimator: Any, X: Any, y: Any, degrees: Iterable[float] = range(0, 181, 15), *,
                   random_state: int | None = 0, batch_size: int = DEFAULT_BATCH_SIZE) -> Any:
    """Accuracy when every image is rotated by ``degrees`` (the ``rotate`` corruption, severity 1).

    Parameters
    ----------
    estimator : fitted classifier of ours, or a Pipeline ending in one
    X, y : evaluation images (arrays or file paths) and labels
    degrees : iterable of float
        Rotations to measure; 0 is the clean accuracy.
    random_state : int or None
        Seeds the corruption (e.g. the sense of rotation, where it draws one).
    batch_size : int
        Images rotated and predicted at a time.

    Returns
    -------
    pandas.DataFrame
        Columns ``degrees`` and ``accuracy``.
    """
    return _curve(estimator, X, y, "rotate", "degrees", degrees, random_state, batch_size)


class CorruptionScorer:
    """An sklearn scorer ``scorer(estimator, X, y)`` returning the mean corruption accuracy; see :func:`corruption_scorer`.

    The corruptions are looked up when the scorer is made and travel with it
    (pickled), so joblib's worker processes use the same ones, including
    corruptions registered at run time in the parent process.
    """

    def __init__(self, corruptions: Any = "all", severities: Sequence[int] = DEFAULT_SEVERITIES, *,
                 random_state: int = 0, batch_size: int = DEFAULT_BATCH_SIZE):
        self.specs = resolve_corruptions(corruptions)
        self.severities = check_severities(severities, self.specs)
        self.random_state, self.batch_size = check_random_state(random_state), check_batch_size(batch_size)

    def __call__(self, estimator: Any, X: Any, y: Any) -> float:
        import pandas as pd

        data = EvaluationImages(estimator, X, y)
        accuracies = [data.accuracy(spec.build(), severity, corruption_generator(self.random_state, name, severity), self.batch_size)
                      for name, spec in self.specs for severity in self.severities]
        return float(pd.Series(accuracies).mean())

    def __repr__(self) -> str:
        return (f"corruption_scorer({[name for name, _ in self.specs]}, severities={self.severities}, "
                f"random_state={self.random_state})")


def corruption_scorer(corruptions: str | Sequence[str] = "all", severities: Sequence[int] = DEFAULT_SEVERITIES, *,
                      random_state: int = 0, batch_size: int = DEFAULT_BATCH_SIZE) -> CorruptionScorer:
    """An sklearn scorer: mean corruption accuracy (mCA) of the fitted estimator on ``X``, ``y``.

    Use it as ``cross_validate(..., scoring={"mCA": corruption_scorer(...)})``
    or ``GridSearchCV(..., scoring=corruption_scorer(...))`` to tune
    augmentation for robustness. The value equals
    ``corruption_report(estimator, X, y, corruptions, severities).mean_corruption_accuracy``.

    Parameters
    ----------
    corruptions : "all", str or list of str
        As in :func:`corruption_report`; checked now.
    severities : sequence of int
    random_state : int
    batch_size : int

    Returns
    -------
    CorruptionScorer
    """
    return CorruptionScorer(corruptions, severities, random_state=random_state, batch_size=batch_size)

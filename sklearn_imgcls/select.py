"""Model selection for images: a cross-validated leaderboard of candidates.

:func:`leaderboard` answers "which model is best for my images?" with
scikit-learn's own :func:`~sklearn.model_selection.cross_validate` run on each
candidate: classic baselines on pixels, CNNs from the registry, and
pretrained backbones when their weights are on disk. A time budget is kept by
timing a small pilot fit of each candidate, extrapolating its cost and
skipping what would not fit; one candidate failing never loses the others.
"""

from __future__ import annotations

import numbers
import time
import warnings
from typing import Any, Iterable

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, check_cv, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.utils import check_random_state

from ._core.introspection import final_estimator
from .cluster import check_backend, joblib_backend
from .pixels import FlattenPixels

__all__ = ["FlattenPixels", "Leaderboard", "auto_candidates", "leaderboard"]

_PILOT_IMAGES = 256


class Leaderboard(pd.DataFrame):
    """A :class:`pandas.DataFrame` of candidates, best first, with the refitted winner.

    Attributes
    ----------
    best_estimator_ : estimator or None
        The best candidate refitted on all data (``refit=True``), else None.
    best_name_ : str or None
        Its name.
    """

    _metadata = ["best_estimator_", "best_name_"]

    @property
    def _constructor(self):
        return Leaderboard


def _count_trainable(estimator: Any) -> float:
    """Trainable parameters of a fitted estimator (torch nets, linear models, MLPs); NaN when unknown."""
    final = final_estimator(estimator)
    net = getattr(final, "net_", None)
    if net is not None:
        return float(sum(p.numel() for p in net.module_.parameters() if p.requires_grad))
    if hasattr(final, "coefs_"):
        return float(sum(a.size for a in final.coefs_) + sum(a.size for a in final.intercepts_))
    if hasattr(final, "coef_"):
        intercept = np.size(getattr(final, "intercept_", 0))
        return float(np.size(final.coef_) + intercept)
    if hasattr(final, "estimators_") and all(hasattr(t, "tree_") for t in final.estimators_):
        return float(sum(t.tree_.node_count for t in final.estimators_))
    if hasattr(final, "dual_coef_"):
        return float(np.size(final.dual_coef_) + np.size(final.support_vectors_))
    return float("nan")


def auto_candidates(
    n_samples: int, image_shape: tuple[int, int, int], random_state: int | None = None
) -> dict[str, Any]:
    """A size-aware set of candidates from what is installed.

    Classic scikit-learn models on flattened pixels (an RBF SVC only up to
    10,000 images), CNNs trained from scratch (``simple_cnn``, ``bn_cnn`` and
    the plugin backbones tagged ``"small"``: networks that train from scratch
    in minutes on small images), and, for every backbone whose default
    pretrained weights are on disk already (nothing is downloaded), a
    fine-tuned and a linear-probe pretrained model.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    from .plugin.catalog import list_backbones
    from .cnn import CNNClassifier
    from .features import BackboneFeatures
    from .plugin.registry import get_registry
    from .transfer import TransferClassifier
    from ._core.weights import weights_cached

    flat = FlattenPixels(image_shape)
    seed = random_state
    candidates: dict[str, Any] = {
        "logistic_regression": make_pipeline(clone(flat), LogisticRegression(max_iter=300)),
        "random_forest": make_pipeline(clone(flat), RandomForestClassifier(n_estimators=200, n_jobs=1, random_state=seed)),
        "mlp": make_pipeline(clone(flat), MLPClassifier((256,), early_stopping=True, max_iter=100, random_state=seed)),
    }
    if n_samples <= 10_000:
        candidates["svc_rbf"] = make_pipeline(clone(flat), SVC(kernel="rbf", gamma="scale"))
    cnn = dict(image_shape=image_shape, random_state=seed)
    candidates["cnn:simple_cnn"] = CNNClassifier("simple_cnn", max_epochs=10, **cnn)
    candidates["cnn:bn_cnn"] = CNNClassifier("bn_cnn", max_epochs=10, lr=3e-3, **cnn)
    registry = get_registry()
    plugin_backbones = [  # plugins say which of theirs train from scratch in minutes on small images
        name for name, spec in registry.specs("backbone").items()
        if not spec.plugin.startswith("sklearn_imgcls.builtin") and "small" in spec.tags
    ]
    for name in plugin_backbones:
        candidates[f"cnn:{name}"] = CNNClassifier(name, max_epochs=10, **cnn)
    for name in list_backbones(pretrained=True):
        if weights_cached(name):
            candidates[f"transfer:{name}"] = TransferClassifier(name, weights="DEFAULT", max_epochs=5, image_shape=image_shape,
                                                                random_state=seed)
            candidates[f"probe:{name}"] = make_pipeline(
                BackboneFeatures(name, weights="DEFAULT", image_shape=image_shape), LogisticRegression(max_iter=500)
            )
    return candidates


def _named_candidates(candidates: Any, n_samples: int, image_shape, random_state) -> dict[str, Any]:
    if isinstance(candidates, str):
        if candidates != "auto":
            raise ValueError(f"candidates must be 'auto', a list or a dict of estimators, got {candidates!r}.")
        return auto_candidates(n_samples, image_shape, random_state)
    if isinstance(candidates, dict):
        named = dict(candidates)
    elif isinstance(candidates, Iterable):
        named = {}
        for item in candidates:
            name, estimator = item if isinstance(item, tuple) else (_default_name(item), item)
            if name in named:
                raise ValueError(f"Two candidates are named {name!r}; pass (name, estimator) pairs or a dict.")
            named[name] = estimator
    else:
        raise TypeError(f"candidates must be 'auto', a list or a dict of estimators, got {type(candidates).__name__}.")
    if not named:
        raise ValueError("candidates is empty: pass at least one estimator, or candidates='auto'.")
    for name, estimator in named.items():
        if not hasattr(estimator, "fit"):
            raise TypeError(f"Candidate {name!r} is not an estimator (it has no fit method): {estimator!r}.")
    return named


def _default_name(estimator: Any) -> str:
    final = final_estimator(estimator)
    backbone = getattr(final, "backbone", None)
    return f"{type(final).__name__}({backbone})" if isinstance(backbone, str) else type(final).__name__


def _scale_exponent(estimator: Any) -> float:
    """How fit time grows with the number of images: about quadratic for kernel SVMs, linear otherwise."""
    final = final_estimator(estimator)
    return 2.0 if type(final).__name__ in {"SVC", "NuSVC"} else 1.0


def _pilot_seconds(estimator: Any, X: Any, y: np.ndarray, n_train: int, n_fits: int, rng) -> tuple[float, float]:
    """Time one fit on a small stratified-ish subsample; return (pilot seconds, estimated total seconds)."""
    n_pilot = min(_PILOT_IMAGES, n_train)
    # keep every class: take up to n_pilot // n_classes of each, then fill up at random
    index = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: max(2, n_pilot // len(np.unique(y)))]
                            for c in np.unique(y)])
    start = time.perf_counter()
    clone(estimator).fit(_take(X, index), y[index])
    pilot = time.perf_counter() - start
    return pilot, n_fits * pilot * (n_train / len(index)) ** _scale_exponent(estimator)


def _take(X: Any, index: np.ndarray) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[index]
    if isinstance(X, (list, tuple)):
        return [X[i] for i in index]
    return X[index]


def _summarise(caught: list) -> str:
    """Distinct warning categories with their first line, e.g. ``ConvergenceWarning: lbfgs failed ... (x3)``."""
    seen: dict[str, int] = {}
    for record in caught:
        text = str(record.message).strip().splitlines()
        key = f"{record.category.__name__}: {text[0] if text else ''}"
        seen[key] = seen.get(key, 0) + 1
    return "; ".join(f"{key} (x{count})" if count > 1 else key for key, count in seen.items())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _cross_validate_all(named, order, estimates, rows, X, y, splits, scorers, n_jobs, budget, started,
                        time_budget, verbose) -> None:
    """Cross-validate the candidates in ``order`` (cheapest first) into ``rows``, keeping within ``budget``."""
    n_test = float(np.mean([len(test) for _, test in splits]))
    for name in order:
        left = budget - (time.perf_counter() - started)
        if estimates[name] > left:
            rows[name] = {
                "name": name,
                "status": f"skipped: estimated {estimates[name]:.0f} s > {max(left, 0):.0f} s left",
                "estimated_time": estimates[name],
            }
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = cross_validate(
                    clone(named[name]), X, y, cv=splits, scoring=scorers, n_jobs=n_jobs,
                    return_estimator=True, error_score="raise",
                )
        except Exception as exc:  # noqa: BLE001
            rows[name] = {"name": name, "status": f"failed: {_first_line(exc)}"}
            continue
        row = {"name": name, "status": "ok", "warnings": _summarise(caught)}
        if time_budget is not None:
            row["estimated_time"] = estimates[name]
        for scorer in scorers:
            scores = result[f"test_{scorer}"]
            row[f"mean_{scorer}"], row[f"std_{scorer}"] = float(np.mean(scores)), float(np.std(scores))
        row["fit_time"] = float(np.mean(result["fit_time"]))
        row["predict_time_per_image"] = float(np.mean(result["score_time"]) / n_test)
        row["n_parameters"] = _count_trainable(result["estimator"][0])
        rows[name] = row
        if verbose:
            print(f"{name}: {row[f'mean_{scorers[0]}']:.4f} (fit {row['fit_time']:.1f} s per fold)", flush=True)



def leaderboard(
    X: Any,
    y: Any,
    candidates: Any = "auto",
    *,
    cv: Any = 3,
    scoring: str | list[str] | None = None,
    time_budget: float | None = None,
    refit: bool = True,
    n_jobs: int | None = None,
    backend: str | None = None,
    image_shape: Any = None,
    random_state: int | None = None,
    verbose: int = 0,
) -> Leaderboard:
    """Cross-validate candidate models on images and rank them.

    Parameters
    ----------
    X : array-like, sequence of file paths or of PIL images
        Images in any layout the estimators accept.
    y : array-like of shape (n_samples,)
        Labels.
    candidates : "auto", list or dict
        ``"auto"`` (see :func:`auto_candidates`), a list of estimators or
        ``(name, estimator)`` pairs, or a dict name -> estimator.
    cv : int or cross-validation generator
        As in :func:`sklearn.model_selection.cross_validate`; an int means
        shuffled stratified folds seeded with ``random_state``.
    scoring : str, list of str or None
        scikit-learn scorer names; the first ranks. Default ``["accuracy",
        "balanced_accuracy", "f1_macro"]``.
    time_budget : float or None
        Seconds for the whole leaderboard (pilots and refit included). Each
        candidate's cost is estimated from a pilot fit on a few hundred images;
        candidates that would overrun are skipped and say so.
    refit : bool
        Refit the best candidate on all data as ``best_estimator_``.
    n_jobs : int or None
        Parallel folds, passed to ``cross_validate``.
    backend : {None, "loky", "threading", "dask"}
        Where the candidate x fold fits run. None: joblib's active backend
        (in-process, or what an enclosing ``joblib.parallel_backend(...)``
        chose). ``"dask"``: the workers of this process's Dask client
        (``Client(...)``; see :func:`~sklearn_imgcls.cluster.current_client`),
        all folds of a candidate at once (``n_jobs=-1`` unless given), ``X``
        and ``y`` scattered to the workers once for the whole leaderboard, and
        torch given each worker's thread count. The folds, and with fixed
        ``random_state`` and ``num_threads`` the scores, are those of a local run.
        Pilot fits and the refit run here.
    image_shape : tuple of int or None
        ``(C, H, W)`` of flat rows, used by the ``"auto"`` candidates.
    random_state : int or None
        Seed of the auto candidates, the CV shuffling and the pilot subsample.
    verbose : int
        1 prints a line per candidate.

    Returns
    -------
    Leaderboard
        One row per candidate, best first: ``name``, ``status`` (``ok``,
        ``failed: <first line of the error>``, ``skipped: ...``), ``mean_<score>``
        and ``std_<score>`` of every score, ``fit_time`` (seconds per fold),
        ``predict_time_per_image`` (seconds), ``n_parameters`` (trainable),
        ``warnings`` (distinct warnings raised while cross-validating, e.g.
        a solver that did not converge; they are not printed) and, with a
        budget, ``estimated_time``: the pilot's forecast in seconds for all folds
        and the refit, to compare with the measured fit times.
    """
    from sklearn.utils.multiclass import check_classification_targets

    from ._core.data import as_image_data

    started = time.perf_counter()
    check_backend(backend)
    y = np.asarray(y)
    check_classification_targets(y)
    scorers = [scoring] if isinstance(scoring, str) else list(scoring or ["accuracy", "balanced_accuracy", "f1_macro"])
    data = as_image_data(X, image_shape)
    if len(data) != len(y):
        raise ValueError(f"X has {len(data)} images but y has {len(y)} labels.")
    named = _named_candidates(candidates, len(y), data.image_shape, random_state)
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        labels, counts = np.unique(y, return_counts=True)
        if counts.min() < cv:
            raise ValueError(
                f"cv={cv} stratified folds need at least {cv} images of every class, but class "
                f"{labels[counts.argmin()].item()!r} has {counts.min()}. Use a smaller cv or add images of that class."
            )
        splitter = StratifiedKFold(int(cv), shuffle=True, random_state=random_state)
    else:
        splitter = check_cv(cv, y, classifier=True)
    # the same folds for every candidate, even from an unseeded user splitter
    splits = list(splitter.split(np.zeros((len(y), 1)), y))
    n_splits = len(splits)
    n_train = int(np.mean([len(train) for train, _ in splits]))
    rng = check_random_state(random_state)
    budget = float("inf") if time_budget is None else float(time_budget)
    if budget <= 0:
        raise ValueError(f"time_budget must be a positive number of seconds or None, got {time_budget!r}.")

    # pilot fits, then run the cheapest first so a budget keeps as many candidates as possible
    estimates: dict[str, float] = {}
    rows: dict[str, dict[str, Any]] = {}
    for name, estimator in named.items():
        if time_budget is not None:
            try:
                _, estimates[name] = _pilot_seconds(estimator, X, y, n_train, n_splits + int(refit), rng)
            except Exception as exc:  # noqa: BLE001 - a failing candidate must not stop the others
                rows[name] = {"name": name, "status": f"failed: {_first_line(exc)}"}
        else:
            estimates[name] = 0.0
    order = sorted((n for n in named if n not in rows), key=lambda n: estimates[n])
    with joblib_backend(backend, scatter=[X, y]) as n_jobs_default:
        _cross_validate_all(named, order, estimates, rows, X, y, splits, scorers,
                            n_jobs if n_jobs is not None else n_jobs_default, budget, started, time_budget, verbose)

    columns = ["name", "status"] + [f"{kind}_{s}" for s in scorers for kind in ("mean", "std")]
    columns += ["fit_time", "predict_time_per_image", "n_parameters", "warnings"]
    if time_budget is not None:
        columns.append("estimated_time")
    board = Leaderboard(pd.DataFrame([rows[name] for name in named], columns=columns))
    primary = f"mean_{scorers[0]}"
    board = board.assign(_ok=board["status"].eq("ok")).sort_values(["_ok", primary], ascending=[False, False])
    board = Leaderboard(board.drop(columns="_ok").reset_index(drop=True))
    board.best_estimator_, board.best_name_ = None, None
    if refit and board["status"].eq("ok").any():
        board.best_name_ = str(board.loc[0, "name"])
        board.best_estimator_ = clone(named[board.best_name_]).fit(X, y)
    return board

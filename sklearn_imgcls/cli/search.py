"""The searches ``sklearn-imgcls tune`` runs: a grid search, or successive halving over epochs.

Successive halving is scikit-learn's ``HalvingRandomSearchCV`` with the
number of training epochs as the resource (``resource="max_epochs"``):
every candidate trains a few epochs, the best ``1 / factor`` of them go on
with ``factor`` times as many, until ``max_epochs``. It is still marked
experimental in scikit-learn, hence the ``enable_halving_search_cv`` import.
"""

from __future__ import annotations

import re
import sys

from typing import Any

__all__ = ["HALVING_FACTOR", "SEARCHES", "make_search"]

#: the ``--search`` choices
SEARCHES = ("grid", "halving")
#: each halving round keeps the best third of the candidates and trains them three times as many epochs
HALVING_FACTOR = 3


def make_search(search: str, estimator: Any, space: dict[str, list], cv: Any, n_jobs: int | None, seed: int,
                min_epochs: int | None = None, max_epochs: int | None = None, scoring: Any = None) -> Any:
    """The unfitted search object of ``tune``.

    Parameters
    ----------
    search : {"grid", "halving"}
        ``GridSearchCV`` over ``space``, or ``HalvingRandomSearchCV`` over
        ``space`` (its lists sampled without repetition) with
        ``resource="max_epochs"`` from ``min_epochs`` to ``max_epochs``.
    estimator, space, cv, n_jobs
        As for the scikit-learn searches.
    seed : int
        ``random_state`` of the halving search's sampling.
    min_epochs, max_epochs : int or None
        Epochs of the first and of the last round (halving only; both needed).
    scoring : str, callable or None
        The searches' ``scoring`` (None: the estimator's own score).

    Returns
    -------
    GridSearchCV or HalvingRandomSearchCV

    Raises
    ------
    ValueError
        An unknown ``search``; epochs given for a grid search; halving without
        both epoch bounds, with ``min_epochs > max_epochs``, or with a grid
        that also varies ``max_epochs``.
    """
    from sklearn.model_selection import GridSearchCV

    if search not in SEARCHES:
        raise ValueError(f"--search must be one of {list(SEARCHES)}, got {search!r}.")
    if search == "grid":
        if min_epochs is not None or max_epochs is not None:
            raise ValueError("--min-epochs/--max-epochs belong to --search halving; for a grid search put "
                             "max_epochs in the grid or in --param max_epochs=N.")
        return GridSearchCV(estimator, space, cv=cv, n_jobs=n_jobs, scoring=scoring)
    if min_epochs is None or max_epochs is None:
        raise ValueError("--search halving needs --min-epochs and --max-epochs, e.g. --min-epochs 1 --max-epochs 9 "
                         f"(each round trains the best 1/{HALVING_FACTOR} of the candidates {HALVING_FACTOR}x as long).")
    if not 1 <= min_epochs <= max_epochs:
        raise ValueError(f"--min-epochs ({min_epochs}) must be at least 1 and at most --max-epochs ({max_epochs}).")
    if "max_epochs" in space:
        raise ValueError("--search halving sets max_epochs itself (from --min-epochs to --max-epochs); "
                         "remove max_epochs from the grid.")
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401 - still experimental in scikit-learn
    from sklearn.model_selection import HalvingRandomSearchCV

    return HalvingRandomSearchCV(estimator, space, resource="max_epochs", min_resources=min_epochs,
                                 max_resources=max_epochs, factor=HALVING_FACTOR, n_candidates="exhaust",
                                 cv=cv, n_jobs=n_jobs, random_state=seed, scoring=scoring)


_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?(\w*(?:Error|Exception|Warning))(?:: (.*))?$")


def _first_error(messages: list[str]) -> str:
    """The last ``SomeError: message`` line of the first traceback in ``messages`` (a warning's text)."""
    for message in messages:
        found = [m for m in (_ERROR_LINE.match(line.strip()) for line in message.splitlines()) if m]
        if found:
            name, text = found[-1].groups()
            return f"{name}: {text}" if text else name
    return "see the warnings above"


def fit_search(search: Any, X: Any, y: Any) -> Any:
    """``search.fit(X, y)``, with failures said in one line each instead of scikit-learn's tracebacks.

    A candidate whose fit or scoring failed scores NaN (scikit-learn's
    ``error_score``) and the search goes on; each such candidate gets one
    line on stderr naming its parameters and the error.

    Raises
    ------
    ValueError
        Every candidate failed: the message names the first error.
    """
    import warnings

    import numpy as np
    from sklearn.exceptions import FitFailedWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            search.fit(X, y)
        except ValueError as exc:  # scikit-learn's "All the N fits failed" with every traceback inlined
            if "fits failed" not in str(exc):
                raise
            raise ValueError(f"every candidate of the search failed ({_first_error([str(exc)])}); fix the grid or "
                             f"the --param values.") from None
    failures = [str(w.message) for w in caught if issubclass(w.category, FitFailedWarning)
                or "Scoring failed" in str(w.message)]
    for w in caught:  # everything else as usual
        if not (issubclass(w.category, FitFailedWarning) or "Scoring failed" in str(w.message)
                or "scores are non-finite" in str(w.message)):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    scores = np.asarray(search.cv_results_["mean_test_score"], dtype=float)
    if np.isnan(scores).all():
        raise ValueError(f"every candidate of the search failed ({_first_error(failures)}); fix the grid or "
                         f"the --param values.")
    for params, score in zip(search.cv_results_["params"], scores):
        if np.isnan(score):
            print(f"sklearn-imgcls: note: {params} failed and scored NaN ({_first_error(failures)})", file=sys.stderr)
    return search


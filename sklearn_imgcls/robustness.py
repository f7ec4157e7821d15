"""Adversarial robustness: FGSM and PGD attacks, robustness curves, an sklearn scorer.

Robustness to everyday corruptions (noise, blur, occlusion, shift, rotation)
lives in :mod:`sklearn_imgcls.corruption` and is re-exported here:
:func:`corruption_report`, :func:`shift_curve`, :func:`rotation_curve`,
:func:`corruption_scorer`.

Attacks work on any fitted estimator of this package, through its network's
gradients, and return adversarial images in the caller's own layout, dtype
and value range:

- uint8 images are attacked in ``[0, 1]`` units (``eps=0.1`` is about 25
  grey levels) and returned as uint8;
- float images are attacked in their own units and clipped to ``[0, 1]``
  when they lie in it, else to the range of the given batch.

The attacks compute in float32 even when the model runs in bfloat16
(``precision``), so that low-precision gradients do not weaken them.

Adversarial *training* is the estimators' ``adversarial=`` parameter (see
:class:`~sklearn_imgcls._core.net.ImageNeuralNet`), which uses :func:`perturb`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._core.attacks import perturb, perturb_kl, pixel_bounds
from ._core.introspection import final_estimator
from ._core.multilabel import refuse_multilabel
from ._core.network import float32_compute, module_device, to_float_images
from .corruption import (
    CorruptionReport,
    CorruptionScorer,
    corruption_report,
    corruption_scorer,
    rotation_curve,
    shift_curve,
)

__all__ = [
    "CorruptionReport",
    "CorruptionScorer",
    "adversarial_accuracy",
    "corruption_report",
    "corruption_scorer",
    "perturb_kl",
    "fgsm",
    "make_adversarial_scorer",
    "perturb",
    "pgd",
    "pixel_bounds",
    "robustness_curve",
    "rotation_curve",
    "shift_curve",
]


def _encode(estimator: Any, y: Any, n: int) -> torch.Tensor:
    y = np.asarray(y)
    if len(y) != n:
        raise ValueError(f"X has {n} images but y has {len(y)} labels.")
    classes = estimator.classes_.tolist()  # plain values: messages show 'cat', not np.str_('cat')
    lookup = {label: i for i, label in enumerate(classes)}
    try:
        return torch.as_tensor([lookup[label] for label in y.tolist()], dtype=torch.long)
    except KeyError as exc:
        raise ValueError(f"y contains label {exc.args[0]!r}, which the estimator was not fitted on ({classes}).") from None


def _to_caller(adversarial: torch.Tensor, X: Any, scale: float) -> np.ndarray:
    """Return ``adversarial`` (N, C, H, W in attack units) in the layout and dtype of ``X``."""
    X = np.asarray(X)
    out = adversarial.cpu().numpy() * scale
    if X.dtype == np.uint8:
        out = np.clip(np.rint(out), 0, 255)
    if X.ndim == 2:
        out = out.reshape(len(out), -1)
    elif X.ndim == 3:
        out = out[:, 0]
    elif X.ndim == 4 and X.shape[1:] != out.shape[1:]:
        out = out.transpose(0, 2, 3, 1)  # channels last
    return out.astype(X.dtype, copy=False)


def _attack(estimator: Any, X: Any, y: Any, eps: float, **options: Any) -> np.ndarray:
    check_is_fitted(estimator)
    refuse_multilabel(estimator, "The adversarial attacks (fgsm, pgd, robustness_curve)", "They push one true class "
                      "down; a multi-label model has no single class to attack.", y)
    from ._core.data import as_image_data

    if not isinstance(X, np.ndarray) and not hasattr(X, "to_numpy"):
        raise TypeError("Attacks need images as an array (flat rows, (n, H, W), NCHW or NHWC), not files or PIL images.")
    X = X.to_numpy() if hasattr(X, "to_numpy") else X
    data = as_image_data(X, fitted_shape=estimator.image_shape_, estimator_name=type(estimator).__name__)
    targets = _encode(estimator, y, len(data))
    images = data.tensor
    scale = 255.0 if images.dtype == torch.uint8 else 1.0
    floats = to_float_images(images)
    bounds = pixel_bounds(floats)
    module = estimator.net_.module_
    device = module_device(module)
    seed = options.pop("random_state", None)
    generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    pieces = []
    size = estimator.batch_size_
    with float32_compute(module):
        for start in range(0, len(floats), size):
            batch = floats[start : start + size].to(device)
            labels = targets[start : start + size].to(device)
            pieces.append(perturb(module, batch, labels, eps, bounds=bounds, generator=generator, **options).cpu())
    return _to_caller(torch.cat(pieces), X, scale)


def fgsm(estimator: Any, X: Any, y: Any, eps: float) -> np.ndarray:
    """Fast gradient sign method (Goodfellow et al., 2015): one L-inf step of size ``eps``.

    Returns adversarial copies of ``X`` in its own layout, dtype and range.
    """
    return _attack(estimator, X, y, eps, steps=1, step_size=eps, random_start=False, norm="inf")


def pgd(
    estimator: Any,
    X: Any,
    y: Any,
    eps: float,
    steps: int = 10,
    norm: str = "inf",
    step_size: float | None = None,
    random_state: int | None = 0,
) -> np.ndarray:
    """Projected gradient descent (Madry et al., 2018) within an L-inf or L2 ball of radius ``eps``.

    Returns adversarial copies of ``X`` in its own layout, dtype and range.
    """
    return _attack(estimator, X, y, eps, steps=steps, norm=norm, step_size=step_size, random_start=True,
                   random_state=random_state)


def robustness_curve(
    estimator: Any, X: Any, y: Any, eps: Any = (0.0, 0.02, 0.05, 0.1, 0.2), attack: str = "pgd", **options: Any
):
    """Accuracy under attack for each ``eps``, as a DataFrame with columns ``eps`` and ``accuracy``.

    ``options`` go to :func:`pgd` (``steps``, ``norm``, ...); ``attack="fgsm"`` uses FGSM.
    """
    import pandas as pd

    if attack not in ("pgd", "fgsm"):
        raise ValueError(f"attack must be 'pgd' or 'fgsm', got {attack!r}.")
    y = np.asarray(y)
    rows = []
    for e in eps:
        adversarial = pgd(estimator, X, y, e, **options) if attack == "pgd" else fgsm(estimator, X, y, e)
        rows.append({"eps": float(e), "accuracy": float(np.mean(estimator.predict(adversarial) == y))})
    return pd.DataFrame(rows)


def make_adversarial_scorer(eps: float = 0.1, attack: str = "pgd", **options: Any) -> Callable:
    """An sklearn scorer ``scorer(estimator, X, y)``: accuracy on adversarial copies of ``X``.

    Use it in ``cross_validate(..., scoring={"robust": make_adversarial_scorer(0.1)})`` or
    ``GridSearchCV(..., scoring=...)`` to tune robustness like any other metric.
    """
    if attack not in ("pgd", "fgsm"):
        raise ValueError(f"attack must be 'pgd' or 'fgsm', got {attack!r}.")

    def scorer(estimator: Any, X: Any, y: Any) -> float:
        final = final_estimator(estimator)
        if hasattr(estimator, "steps") and len(estimator.steps) > 1:
            raise TypeError("adversarial scorers attack the network directly: score the classifier, not a pipeline.")
        adversarial = pgd(final, X, y, eps, **options) if attack == "pgd" else fgsm(final, X, y, eps)
        return float(np.mean(final.predict(adversarial) == np.asarray(y)))

    scorer.__name__ = f"adversarial_accuracy_{attack}_eps{eps:g}"
    return scorer


#: accuracy under PGD (L-inf, eps=0.1, 10 steps), as an sklearn scorer
adversarial_accuracy = make_adversarial_scorer(0.1)

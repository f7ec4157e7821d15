"""Training targets: label encoding and per-class loss weights (checked, with messages naming the fix)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from .labels import check_label_values, plain
from .multilabel import label_positive_weights, multilabel_targets

__all__ = ["class_weight_tensor", "encode_labels"]


def encode_labels(y: Any, n_images: int, estimator_name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, encoded)``: the sorted labels of ``y`` and ``y`` as int64 indices into them.

    A multi-label ``y`` (an indicator matrix or label collections, see
    :func:`sklearn_imgcls._core.multilabel.multilabel_targets`) gives
    ``(labels, Y)`` instead, ``Y`` a float32 ``(n_images, n_labels)`` 0/1
    matrix: a 2-D ``encoded`` is what marks a multi-label fit.

    Raises
    ------
    ValueError
        For a missing ``y``, a length other than ``n_images``, mixed label
        types, or fewer than two classes.
    """
    if y is None:
        raise ValueError(f"{estimator_name} requires y to be passed, but the target y is None.")
    multilabel = multilabel_targets(y, n_images)
    if multilabel is not None:
        return multilabel
    if isinstance(y, (list, tuple)):  # before numpy turns [1, "cat"] into ["1", "cat"]
        check_label_values(np.asarray(y, dtype=object).reshape(-1) if np.ndim(y) == 1 else np.asarray(y))
    y = column_or_1d(np.asarray(y) if not hasattr(y, "to_numpy") else y.to_numpy(), warn=True)
    if len(y) != n_images:
        raise ValueError(f"X holds {n_images} images but y has {len(y)} labels; they must match.")
    check_label_values(y)
    check_classification_targets(y)
    encoder = LabelEncoder()
    encoded = encoder.fit_transform(y)
    if len(encoder.classes_) < 2:
        raise ValueError(
            f"y has only one class ({plain(encoder.classes_[0])!r}); a classifier needs samples of at "
            f"least 2 classes."
        )
    return encoder.classes_, encoded.astype(np.int64)


def class_weight_tensor(class_weight: Any, classes: np.ndarray, y_encoded: np.ndarray) -> torch.Tensor | None:
    """The loss weight of each class for ``class_weight`` (None, ``"balanced"`` or a dict of labels).

    For multi-label targets (a 2-D ``y_encoded``) the weight of each label's
    positive images, see :func:`sklearn_imgcls._core.multilabel.label_positive_weights`.
    """
    if class_weight is None:
        return None
    if np.ndim(y_encoded) == 2:
        return label_positive_weights(class_weight, classes, y_encoded)
    if class_weight == "balanced":
        weights = compute_class_weight("balanced", classes=np.arange(len(classes)), y=y_encoded)
    else:
        unknown = set(class_weight) - set(classes.tolist())
        if unknown:
            raise ValueError(
                f"class_weight names classes that are not in y: {sorted(unknown, key=repr)}. "
                f"Classes in y: {classes.tolist()}."
            )
        weights = [float(class_weight.get(c, 1.0)) for c in classes.tolist()]
        bad = {c: w for c, w in zip(classes.tolist(), weights) if not (np.isfinite(w) and w > 0)}
        if bad:
            raise ValueError(f"class_weight must give every class a positive, finite weight; got {bad}. "
                             "Leave a class out of the dict for weight 1.")
    return torch.as_tensor(weights, dtype=torch.float32)

"""Building blocks of :mod:`sklearn_imgcls.corruption`: decoded evaluation images, seeded generators, argument checks.

:class:`EvaluationImages` decodes the evaluation images once (arrays of any
layout, or files), hands out float ``[0, 1]`` batches for the corruptions and
turns corrupted batches back into the caller's layout, dtype and value range
before they reach the estimator's ``predict``.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._core.attacks import pixel_bounds
from ._core.data import as_image_data
from ._core.introspection import final_estimator
from ._core.multilabel import refuse_multilabel
from ._core.network import to_float_images
from .plugin.registry import get_registry

__all__ = ["DEFAULT_BATCH_SIZE", "EvaluationImages", "check_batch_size", "check_random_state", "check_severities",
           "corruption_generator", "resolve_corruptions"]

#: images corrupted and predicted at a time
DEFAULT_BATCH_SIZE = 256


class EvaluationImages:
    """The evaluation images of ``estimator``, decoded once: float ``[0, 1]`` views and the way back to the caller's form.

    Raises TypeError for an estimator that is not ours, ValueError when it is not fitted or ``y`` does not match ``X``.
    """

    def __init__(self, estimator: Any, X: Any, y: Any):
        final = final_estimator(estimator)
        if not hasattr(final, "predict") or not hasattr(final, "image_shape_") and not hasattr(final, "image_shape"):
            raise TypeError(f"Corruption reports need a classifier of sklearn_imgcls (or a pipeline ending in one), "
                            f"got {type(final).__name__}.")
        check_is_fitted(final, msg=f"This {type(final).__name__} is not fitted yet: call fit(X, y) before measuring "
                                   f"its robustness to corruptions.")
        refuse_multilabel(final, "Accuracy under corruptions, shifts and rotations", "Score a multi-label model with "
                          "sklearn_imgcls.metrics.evaluate on copies made by sklearn_imgcls.build_corruption(name)(images, "
                          "severity, generator).", y)
        self.estimator = estimator
        array = X.to_numpy() if hasattr(X, "to_numpy") and getattr(X, "ndim", 1) == 2 else X
        if final is estimator:
            data = as_image_data(array, fitted_shape=final.image_shape_, estimator_name=type(final).__name__)
        else:  # a pipeline: its first steps may change the images (resize, crop), so read X as given
            try:
                data = as_image_data(array, fitted_shape=final.image_shape_, estimator_name=type(final).__name__)
            except ValueError:
                data = as_image_data(array)
        if data.in_memory:
            images = data.tensor
            self.layout = np.asarray(array)
        else:  # files (or lazily decoded images): decode once, predict on the decoded (N, C, H, W) array
            images = torch.cat(list(data.batches(DEFAULT_BATCH_SIZE)))
            self.layout = images.numpy()
        self.y = column_or_1d(y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y), warn=False)
        if len(self.y) != len(images):
            raise ValueError(f"X has {len(images)} images but y has {len(self.y)} labels.")
        unknown = set(np.unique(self.y).tolist()) - set(np.asarray(final.classes_).tolist())
        if unknown:  # e.g. string labels against a model trained on integers: every prediction would count as wrong
            raise ValueError(f"y has labels the estimator never saw in fit: {sorted(map(repr, unknown))[:10]}; it "
                             f"predicts {np.asarray(final.classes_).tolist()[:10]}. Pass y with the labels used in fit.")
        self.uint8 = images.dtype == torch.uint8
        self.images = images
        self.bounds = (0.0, 1.0) if self.uint8 else pixel_bounds(images.float())

    def __len__(self) -> int:
        return len(self.images)

    def unit(self, start: int, stop: int) -> torch.Tensor:
        """Images ``start:stop`` as float ``(n, C, H, W)`` in ``[0, 1]``."""
        low, high = self.bounds
        floats = to_float_images(self.images[start:stop])
        return floats if (low, high) == (0.0, 1.0) else (floats - low) / max(high - low, 1e-12)

    def back(self, floats: torch.Tensor) -> np.ndarray:
        """``floats`` (``[0, 1]``, ``(n, C, H, W)``) in the caller's layout, dtype and value range."""
        low, high = self.bounds
        out = floats.detach().cpu().numpy()
        if self.uint8:
            out = np.clip(np.rint(out * 255.0), 0, 255)
        elif (low, high) != (0.0, 1.0):
            out = out * (high - low) + low
        like = self.layout
        if like.ndim == 2:
            out = out.reshape(len(out), -1)
        elif like.ndim == 3:
            out = out[:, 0]
        elif like.shape[1:] != out.shape[1:]:
            out = out.transpose(0, 2, 3, 1)  # channels last
        return out.astype(like.dtype if like.dtype.kind in "uif" else np.float32, copy=False)

    def clean_accuracy(self) -> float:
        """Accuracy of the estimator on the images as given."""
        return float(np.mean(self.estimator.predict(self.layout) == self.y))

    def accuracy(self, corrupt: Callable, severity: int, generator: torch.Generator, batch_size: int) -> float:
        """Accuracy on the images corrupted by ``corrupt`` at ``severity``, ``batch_size`` images at a time."""
        correct = 0
        for start in range(0, len(self), batch_size):
            clean = self.unit(start, start + batch_size)
            with torch.no_grad():
                corrupted = corrupt(clean, severity, generator)
            if not isinstance(corrupted, torch.Tensor) or corrupted.shape != clean.shape:
                raise ValueError(f"corruption {corrupt!r} returned {type(corrupted).__name__} of shape "
                                 f"{tuple(getattr(corrupted, 'shape', ()))}; the contract is a tensor of the input's "
                                 f"shape {tuple(clean.shape)}.")
            predicted = self.estimator.predict(self.back(corrupted.clamp(0.0, 1.0)))
            correct += int(np.sum(predicted == self.y[start : start + batch_size]))
        return correct / len(self)


def corruption_generator(random_state: int, name: str, severity: int) -> torch.Generator:
    """The generator of one corruption at one severity, seeded from all three (independent of the others)."""
    state = np.random.SeedSequence([int(random_state), zlib.crc32(name.encode()), int(severity)]).generate_state(1)
    return torch.Generator().manual_seed(int(state[0]))


def check_random_state(random_state: Any) -> int:
    """``random_state`` as an int (None: a fresh seed); TypeError otherwise."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, (bool, float)) or not isinstance(random_state, (int, np.integer)):
        raise TypeError(f"random_state must be an int (or None for a fresh seed), got {random_state!r}.")
    return int(random_state)


def check_batch_size(batch_size: Any) -> int:
    """``batch_size`` as a positive int; ValueError otherwise."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size!r}.")
    return int(batch_size)


def resolve_corruptions(corruptions: Any) -> list[tuple[str, Any]]:
    """``(name, spec)`` for ``"all"``, one name or a list of names; unknown names raise, listing the installed ones."""
    registry = get_registry()
    if isinstance(corruptions, str) and corruptions == "all":
        names = registry.names("corruption")
        if not names:
            raise ValueError("No corruptions are installed; install a plugin that registers some, or pass their "
                             "names once one is (see sklearn_imgcls.list_corruptions()).")
    elif isinstance(corruptions, str):
        names = [corruptions]
    elif isinstance(corruptions, Iterable) and not isinstance(corruptions, (bytes, dict)):
        names = list(corruptions)
        if not names:
            raise ValueError("corruptions is empty: pass 'all', a corruption name or a non-empty list of names.")
        if not all(isinstance(n, str) for n in names):
            raise TypeError(f"corruptions must be 'all', a corruption name or a list of names, got {corruptions!r}.")
    else:
        raise TypeError(f"corruptions must be 'all', a corruption name or a list of names, got {corruptions!r}.")
    if len(set(names)) != len(names):
        raise ValueError(f"corruptions names a corruption twice: {names}.")
    specs = registry.specs("corruption")
    families = sorted({spec.family for spec in specs.values()})
    for name in names:
        if name not in specs and name in families:  # "noise" is a family, not a corruption
            raise ValueError(f"{name!r} is a family of corruptions, not one: pass its members, "
                             f"sklearn_imgcls.list_corruptions(family={name!r}) = "
                             f"{[n for n, spec in specs.items() if spec.family == name]}.")
    return [(name, registry.get("corruption", name)) for name in names]


def check_severities(severities: Any, specs: Sequence[tuple[str, Any]]) -> tuple[int, ...]:
    """``severities`` as a tuple of ints, each within every corruption's 1..max_severity."""
    if isinstance(severities, (int, np.integer)) and not isinstance(severities, bool):
        severities = (severities,)
    try:
        values = tuple(severities)
    except TypeError:
        raise TypeError(f"severities must be a list of whole numbers, e.g. (1, 2, 3, 4, 5), got {severities!r}.") from None
    if not values:
        raise ValueError("severities is empty: pass the severities to measure, e.g. (1, 2, 3, 4, 5).")
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in values):
        raise TypeError(f"severities must be whole numbers, e.g. (1, 2, 3, 4, 5), got {severities!r}.")
    if len(set(values)) != len(values):
        raise ValueError(f"severities lists a severity twice: {values}.")
    for name, spec in specs:
        bad = [s for s in values if not 1 <= s <= spec.max_severity]
        if bad:
            raise ValueError(f"severity {bad[0]} is out of range for corruption {name!r}: severities run from 1 to "
                             f"{spec.max_severity} (the clean accuracy is always measured); pass severities within that range "
                             f"or leave {name!r} out of corruptions.")
    return tuple(int(s) for s in values)

"""Built-in training-set samplers (plugin): class-balanced over/undersampling, SMOTE.

A sampler either declares ``stage="epoch"`` and is called once per epoch
with the encoded training labels, returning in random order the indices that
epoch visits; or it declares ``stage="training_split"`` and is an
imbalanced-learn style object with ``fit_resample(X, y)``, applied once to
the flattened in-memory training images before training (``smote``).

All of them balance the classes of a 1-D ``y``; the estimators refuse them for
multi-label targets (an image with several labels is in no single class), where
``class_weight="balanced"`` weights each label's positives instead.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..plugin.hookspecs import hookimpl
from ..plugin.specs import SamplerSpec

Sample = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _balanced(per_class: Callable[[torch.Tensor], int], replacement: bool) -> Sample:
    def sample(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if y.ndim != 1:
            raise ValueError(
                f"Class-balanced sampling needs one class per image (a 1-D y), not labels of shape {tuple(y.shape)}; "
                "for multi-label targets use class_weight='balanced' instead of a sampler."
            )
        classes, counts = torch.unique(y, return_counts=True)
        target = per_class(counts)
        chosen = []
        for cls, count in zip(classes.tolist(), counts.tolist()):
            members = torch.nonzero(y == cls).flatten()
            if replacement:
                pick = torch.randint(0, count, (target,), generator=generator)
            else:
                pick = torch.randperm(count, generator=generator)[:target]
            chosen.append(members[pick])
        indices = torch.cat(chosen)
        return indices[torch.randperm(len(indices), generator=generator)]

    return sample


def oversample() -> Sample:
    """Draw every class, with replacement, as often as the largest class."""
    return _balanced(lambda counts: int(counts.max()), replacement=True)


def undersample() -> Sample:
    """Keep, per epoch, a random subset of every class the size of the smallest."""
    return _balanced(lambda counts: int(counts.min()), replacement=False)


def smote(k_neighbors: int = 5):
    """SMOTE (Chawla et al., 2002) from imbalanced-learn, in pixel space.

    Synthesises minority-class images by interpolating between neighbours
    until every class is as large as the largest.
    """
    try:
        from imblearn.over_sampling import SMOTE
    except ImportError:
        raise ImportError(
            "The 'smote' sampler needs imbalanced-learn: pip install 'sklearn-imgcls[imbalance]'."
        ) from None
    return SMOTE(k_neighbors=k_neighbors)


@hookimpl
def sklearn_imgcls_register_samplers() -> list[SamplerSpec]:
    """Register ``oversample``, ``undersample`` and ``smote``."""
    return [
        SamplerSpec("oversample", oversample, "class-balanced epochs, minority classes repeated", stage="epoch"),
        SamplerSpec("undersample", undersample, "class-balanced epochs, majority classes cut", stage="epoch"),
        SamplerSpec("smote", smote, "SMOTE in pixel space (imbalanced-learn), once before training", tags=("imbalance",),
                    stage="training_split"),
    ]

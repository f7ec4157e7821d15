"""Built-in label-mixing augmentations (plugin): mixup and cutmix.

Unlike the per-image augmentations these change the targets too: each batch
is blended with a shuffled copy of itself and the labels are blended in the
same proportion, giving soft targets of shape ``(N, n_classes)`` that every
built-in loss accepts (losses declare it with ``LossSpec(soft_targets=True)``).
A label-mixing augmentation declares ``AugmentationSpec(mixes_labels=True)``
and is called as ``mix(images, soft_targets, generator)``, returning
``(images, soft_targets)``; the training iterator one-hot encodes the labels
first, so mixup and cutmix can follow each other in one ``augment`` list.

Multi-label targets arrive as ``(N, n_labels)`` 0/1 indicators and are mixed the
same way, linearly: the result, in [0, 1] per label, is a soft target for the
multi-label losses (``binary_cross_entropy``, ``binary_focal``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..plugin.hookspecs import hookimpl
from ..plugin.specs import AugmentationSpec


def _beta(alpha: float, generator: torch.Generator) -> float:
    """One Beta(alpha, alpha) draw, seeded from ``generator`` (torch has no seeded Beta sampler)."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


class _LabelMixer:
    """Shared checks and pairing for mixup and cutmix."""

    def __init__(self, alpha: float, p: float) -> None:
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}.")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}.")
        self.alpha = float(alpha)
        self.p = float(p)

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if targets.ndim != 2:
            raise ValueError("mixup/cutmix need (N, n_classes) one-hot or (N, n_labels) indicator targets; the training "
                             "iterator provides them.")
        if len(images) < 2 or float(torch.rand(1, generator=generator)) >= self.p:
            return images, targets
        partner = torch.randperm(len(images), generator=generator).to(images.device)  # drawn on the CPU, as everywhere
        return self._mix(images, targets, partner, _beta(self.alpha, generator), generator)

    def _mix(self, images, targets, partner, lam, generator):  # pragma: no cover - abstract
        raise NotImplementedError


class MixUp(_LabelMixer):
    """mixup (Zhang et al., 2018): ``lam * x_i + (1 - lam) * x_j`` with ``lam ~ Beta(alpha, alpha)``."""

    def _mix(self, images, targets, partner, lam, generator):
        mixed = images.mul(lam).add_(images[partner], alpha=1 - lam)
        return mixed, targets * lam + targets[partner] * (1 - lam)


class CutMix(_LabelMixer):
    """CutMix (Yun et al., 2019): paste a box of the partner image; labels weighted by area."""

    def _mix(self, images, targets, partner, lam, generator):
        h, w = images.shape[-2:]
        cut = np.sqrt(1.0 - lam)
        ch, cw = int(round(h * cut)), int(round(w * cut))
        cy = int(torch.randint(0, h, (1,), generator=generator))
        cx = int(torch.randint(0, w, (1,), generator=generator))
        top, bottom = max(cy - ch // 2, 0), min(cy + ch - ch // 2, h)
        left, right = max(cx - cw // 2, 0), min(cx + cw - cw // 2, w)
        mixed = images.clone()
        mixed[..., top:bottom, left:right] = images[partner][..., top:bottom, left:right]
        kept = 1.0 - (bottom - top) * (right - left) / (h * w)  # exact share after clipping at the border
        return mixed, targets * kept + targets[partner] * (1 - kept)


def mixup(alpha: float = 0.2, p: float = 1.0) -> MixUp:
    """Blend each batch with a shuffled copy; see :class:`MixUp`."""
    return MixUp(alpha, p)


def cutmix(alpha: float = 1.0, p: float = 1.0) -> CutMix:
    """Paste boxes between images of a batch; see :class:`CutMix`."""
    return CutMix(alpha, p)


@hookimpl
def sklearn_imgcls_register_augmentations() -> list[AugmentationSpec]:
    """Register ``mixup`` and ``cutmix``."""
    return [
        AugmentationSpec("mixup", mixup, "blend image pairs and their labels (Zhang et al., 2018)",
                         tags=("mixes_labels",), mixes_labels=True),
        AugmentationSpec("cutmix", cutmix, "paste a box from another image; labels by area (Yun et al., 2019)",
                         tags=("mixes_labels",), mixes_labels=True),
    ]

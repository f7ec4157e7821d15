"""Test-only plugin written against the first release's contract (0.1), kept to prove it still works.

It uses the old import paths (``sklearn_imgcls.hookspecs`` / ``sklearn_imgcls.specs``) and the
deprecated, unprefixed hook names, and declares none of contract v2's fields: registering it warns
(DeprecationWarning), and the estimators fall back to 0.1's inference for its components (see
``sklearn_imgcls._core.components``).
"""

import torch
from torch import nn

# the import paths of the first release, kept working by re-exports (tests rely on them here)
from sklearn_imgcls.hookspecs import hookimpl
from sklearn_imgcls.specs import AugmentationSpec, BackboneSpec, LossSpec, SamplerSpec

CALLS = {"augment": 0, "images": 0}


def linear(in_channels, num_classes, image_size):
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size[0] * image_size[1], num_classes))


def counting():
    def augment(images, generator):
        CALLS["augment"] += 1
        CALLS["images"] += len(images)
        return images

    return augment


class SwapPairs:
    """A 0.1-style label mixer: says so with a ``mixes_labels`` attribute (swaps images and targets of pairs)."""

    mixes_labels = True

    def __call__(self, images, targets, generator):
        return images.flip(0), targets.flip(0)


class PriorShiftLoss(nn.Module):
    """Cross-entropy on ``logits + log(priors)``; 0.1 passed priors because the builder names ``class_priors``."""

    def __init__(self, class_weight=None, class_priors=None):
        super().__init__()
        self.seen_priors = class_priors
        shift = torch.zeros(1) if class_priors is None else torch.log(class_priors)
        self.register_buffer("shift", shift)
        self.loss = nn.CrossEntropyLoss(weight=class_weight)
        self.reduction = "mean"

    def forward(self, logits, targets):
        self.loss.reduction = self.reduction
        return self.loss(logits + self.shift, targets)


class HardLabelsOnly(nn.Module):
    """Negative log-likelihood: integer targets only (soft targets raise), no ``reduction`` attribute."""

    def forward(self, logits, targets):
        return nn.functional.nll_loss(torch.log_softmax(logits, 1), targets)


class HalfResampler:
    """An imbalanced-learn style object (``fit_resample``): keeps every other image."""

    def fit_resample(self, X, y):
        return X[::2], y[::2]


@hookimpl
def register_backbones():
    return [BackboneSpec("tiny_linear", linear, "a linear layer", tags=("test",))]


@hookimpl
def register_augmentations():
    return [
        AugmentationSpec("counting", counting, "identity that counts its calls"),
        AugmentationSpec("legacy_swap", SwapPairs, "0.1-style label mixer (attribute, no declaration)"),
    ]


@hookimpl
def register_losses():
    return [
        LossSpec("legacy_prior_ce", PriorShiftLoss, "0.1-style loss taking class_priors"),
        LossSpec("legacy_nll", lambda class_weight=None: HardLabelsOnly(), "0.1-style loss for integer targets"),
    ]


@hookimpl
def register_samplers():
    return [SamplerSpec("legacy_half", HalfResampler, "0.1-style fit_resample sampler")]

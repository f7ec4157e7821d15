"""Frozen dataclasses that describe the components plugins contribute.

A plugin never hands the registry a live object: it hands a *spec*, a small
immutable record with a name, a one-line description and a ``build`` callable
that makes the component when an estimator is fitted. The registry fills in
``plugin`` (which plugin contributed the spec) when it collects them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = [
    "AugmentationSpec",
    "BackboneSpec",
    "ComponentSpec",
    "CorruptionSpec",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LossSpec",
    "PretrainedWeights",
    "SAMPLER_STAGES",
    "SamplerSpec",
]

#: ImageNet normalisation, the usual one for pretrained weights (0-1 pixel units)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ComponentSpec:
    """Fields every component kind shares.

    Parameters
    ----------
    name : str
        Registry name users pass to estimators (``backbone="resnet18"``).
    build : callable
        Factory that makes the component; its signature depends on the kind.
    description : str
        One line shown by ``list_*()`` and the command line.
    tags : tuple of str
        Free-form labels usable as filters in ``list_*(tag=...)``.
    plugin : str
        Name of the plugin that registered the spec; set by the registry.
    """

    name: str
    build: Callable[..., Any]
    description: str = ""
    tags: tuple[str, ...] = ()
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class PretrainedWeights:
    """One set of pretrained weights a backbone offers, declared with what they expect.

    Parameters
    ----------
    name : str
        What users pass as ``weights=`` (``"IMAGENET1K_V1"``, ``"in1k"``).
    load : callable
        ``load() -> dict[str, torch.Tensor]``: the state dict of the *native*
        architecture (``BackboneSpec.build_native(num_classes)``). It reads
        local files only when they exist (the torch hub cache, a Hugging Face
        cache, a path the plugin knows) and may download otherwise; when the
        file is missing and cannot be fetched it raises ``OSError`` whose
        message names the file expected and where to put it. See
        :mod:`sklearn_imgcls.plugin.sources` for ready-made loaders.
    num_classes : int
        Outputs of the pretrained head (1000 for ImageNet-1k).
    input_size : tuple of int
        ``(H, W)`` the weights were trained at; inputs are resized to it.
    mean, std : tuple of float
        Per-channel normalisation the weights expect (0-1 pixel units).
    default : bool
        Whether ``weights="DEFAULT"`` picks these (at most one per backbone;
        else the first listed is the default).
    description : str
        One line for listings (e.g. the accuracy the source reports).
    """

    name: str
    load: Callable[[], Any]
    num_classes: int = 1000
    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    default: bool = False
    description: str = ""


@dataclass(frozen=True)
class BackboneSpec(ComponentSpec):
    """A network architecture, with the facts the core needs declared rather than guessed.

    ``build(in_channels, num_classes, image_size, **params)`` returns a
    :class:`torch.nn.Module` mapping ``(N, in_channels, H, W)`` float tensors to
    ``(N, num_classes)`` logits, where ``image_size == (H, W)``: the network
    adapted to the images, trained from scratch.

    Parameters
    ----------
    classifier : str or None
        Dotted name of the final classification layer (an ``nn.Linear``, or a
        1x1 ``nn.Conv2d``) in the modules ``build`` and ``build_native``
        return; transfer learning replaces it by one sized to the new classes.
        Cf. timm's ``pretrained_cfg["classifier"]``. In every layer name a
        negative index picks from the end of an ``nn.Sequential`` /
        ``nn.ModuleList`` (``"classifier.-1"``), and a wrapper module that sets
        ``sklearn_imgcls_inner = "<attribute>"`` lets names that are not found
        in it be looked up in that submodule.
    first_conv : str or None
        Dotted name of the first convolution (what sees the image channels).
    target_layer : str or None
        Dotted name of the layer Grad-CAM looks at (a late convolutional
        block's output).
    build_native : callable or None
        ``build_native(num_classes) -> nn.Module``: the architecture exactly
        as its pretrained weights were trained (3 input channels, native input
        size, no adaptation). Needed when ``weights`` is non-empty, and to load
        checkpoints of the standard architecture. One native architecture per
        spec: weights trained for another variant (another input size that
        changes the layers) belong to a spec of their own.
    weights : tuple of PretrainedWeights
        The pretrained weights available (empty: none).
    input_size : tuple of int or None
        ``(H, W)`` of the native architecture (listings; defaults to the
        default weights' size).

    Declaring nothing still works for ``CNNClassifier``; transfer learning,
    Grad-CAM and checkpoints then fall back to documented guesses (the last
    ``nn.Linear``, the first 4-D weight, the last ``Conv2d``) with a warning.
    """

    classifier: str | None = None
    first_conv: str | None = None
    target_layer: str | None = None
    build_native: Callable[[int], Any] | None = None
    weights: tuple[PretrainedWeights, ...] = ()
    input_size: tuple[int, int] | None = None

    def default_weights(self) -> PretrainedWeights | None:
        """The weights ``weights="DEFAULT"`` picks, or None when there are none."""
        marked = [w for w in self.weights if isinstance(w, PretrainedWeights) and w.default]
        return marked[0] if marked else (self.weights[0] if self.weights else None)


@dataclass(frozen=True)
class LossSpec(ComponentSpec):
    """A training loss.

    ``build(class_weight=None, **params)`` returns a module called as
    ``loss(logits, targets)``; ``targets`` are integer class indices, or
    ``(N, num_classes)`` probabilities when ``soft_targets`` is declared and
    a label-mixing augmentation (mixup, cutmix) is used. ``class_weight`` is
    ``None`` or a float tensor with one weight per class.

    Parameters
    ----------
    soft_targets : bool
        The loss accepts ``(N, num_classes)`` probability targets; losses that
        do not are refused, by name, with label-mixing augmentations.
    needs_class_priors : bool
        ``build`` takes ``class_priors``: the training labels' class
        frequencies (a float tensor summing to 1), e.g. for logit adjustment.
    sample_weights : bool
        The built module has a ``reduction`` attribute that honours
        ``"none"`` (one loss per sample), so ``fit(sample_weight=...)`` can
        weight samples; losses that do not are refused with sample weights.
    multilabel : bool
        A multi-label loss (one independent sigmoid per label, e.g. binary
        cross-entropy): ``targets`` are ``(N, num_labels)`` 0/1 (or, mixed,
        in [0, 1]) float indicators, ``class_weight`` is None or the weight
        of each label's positive images (``pos_weight``), and
        ``class_priors`` (with ``needs_class_priors``) each label's share of
        positive images. Only such losses train on multi-label ``y``, and
        they are refused for one label per image. ``reduction="none"`` gives
        one loss per image (the mean over its labels).
    """

    soft_targets: bool = False
    needs_class_priors: bool = False
    sample_weights: bool = False
    multilabel: bool = False


@dataclass(frozen=True)
class AugmentationSpec(ComponentSpec):
    """A training-time augmentation on whole batches.

    ``build(**params)`` returns a callable ``augment(images, generator)`` that
    takes a float batch ``(N, C, H, W)`` and a :class:`torch.Generator` and
    returns a batch of the same shape and dtype; with ``mixes_labels`` it is
    called as ``augment(images, targets, generator)`` with one-hot
    ``(N, num_classes)`` targets and returns ``(images, mixed_targets)``.

    Parameters
    ----------
    mixes_labels : bool
        The augmentation blends images of different classes and their labels
        (mixup, cutmix); the loss must declare ``soft_targets``.
    """

    mixes_labels: bool = False


#: when a sampler acts: every epoch on indices, or once on the training split's images
SAMPLER_STAGES = ("epoch", "training_split")


@dataclass(frozen=True)
class SamplerSpec(ComponentSpec):
    """A rebalancing of the training set.

    With ``stage="epoch"``, ``build(**params)`` returns a callable
    ``sample(y, generator)`` taking the encoded training labels (1-D int64
    tensor) and returning the indices (1-D int64 tensor) the epoch visits, in
    order. With ``stage="training_split"``, ``build(**params)`` returns an
    imbalanced-learn style object whose ``fit_resample(X, y)`` runs once on
    the training split (after the validation split is held out), e.g. SMOTE.

    Parameters
    ----------
    stage : {"epoch", "training_split"}
        When the sampler acts (see above).
    """

    stage: str = "epoch"


@dataclass(frozen=True)
class CorruptionSpec(ComponentSpec):
    """An everyday corruption of images at graded severities, for robustness reports.

    ``build(**params)`` returns ``corrupt(images, severity, generator)``: it
    takes a float batch ``(N, C, H, W)`` with values in ``[0, 1]`` (any number
    of channels), an integer ``severity`` from 0 to ``max_severity`` and a
    :class:`torch.Generator` (its only source of randomness), and returns a
    batch of the same shape and dtype with values in ``[0, 1]``. Severity 0
    returns the images unchanged; a higher severity changes them more.

    Parameters
    ----------
    family : str
        ``"noise"``, ``"blur"``, ``"digital"``, ``"occlusion"``, ``"geometry"``
        or another word a report groups by.
    max_severity : int
        The strongest severity (5, as in ImageNet-C and MNIST-C).
    """

    family: str = "other"
    max_severity: int = 5

"""TransferClassifier: fine-tune a pretrained backbone, as a scikit-learn estimator."""

from __future__ import annotations

import numbers
from typing import Any

from torch import nn

from skorch.callbacks import Unfreezer

from ._core.data import ImageData, check_image_shape
from ._core.params import check_dict, check_positive_float
from ._core.pretrained import apply_freeze, build_pretrained_network, first_conv_channels
from ._core.weights import is_checkpoint_path
from .classifier import ImageClassifier
from .plugin.registry import get_registry

__all__ = ["TransferClassifier"]


class TransferClassifier(ImageClassifier):
    """Image classifier that adapts a pretrained network to new classes.

    The backbone is loaded with ``weights``, its classification head is
    replaced by one sized to the classes, and inputs are adapted to what the
    weights expect (grayscale repeated to RGB, resized to the weights' input
    size, normalised with the weights' own mean and std). Training follows a
    fine-tuning policy: the first ``max_epochs - fine_tune_epochs`` epochs
    train what ``freeze`` leaves trainable; the last ``fine_tune_epochs``
    unfreeze the backbone, which learns at ``lr * backbone_lr_ratio`` while
    the head keeps ``lr`` (discriminative learning rates). Frozen BatchNorm
    layers keep their running statistics.

    Parameters
    ----------
    backbone : str, default="resnet18"
        Registry backbone name; :func:`sklearn_imgcls.describe_backbones`
        shows which have pretrained weights.
    weights : str or None, default="DEFAULT"
        A torchvision weights name (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ...;
        read from the torch hub cache, downloaded when possible), a local
        checkpoint (``.pth``/``.pt`` loaded with ``weights_only=True``, or
        ``.safetensors``; e.g. one written by :meth:`save_weights`), or None
        for random initialisation.
    freeze : "none", "backbone" or int, default="none"
        What stays frozen before the fine-tuning epochs: nothing (every layer
        trains from the start, the backbone at the lower rate), everything
        but the head, or the first ``freeze`` blocks (those stay frozen
        throughout). The default was chosen by ``benchmarks/bench_transfer.py``
        (see ``benchmarks/RESULTS.md``); ``"backbone"`` is cheaper per epoch
        and the safer choice for large pretrained networks on tiny data.
    fine_tune_epochs : int or None, default=None
        Final epochs with the backbone unfrozen; used with
        ``freeze="backbone"`` only (ignored otherwise, so a grid over
        ``freeze`` needs no matching value). None: the second half of the
        epochs (``max_epochs // 2``), so it never conflicts with a small
        ``max_epochs``; the value used is ``fine_tune_epochs_``.
    backbone_lr_ratio : float, default=0.1
        Backbone learning rate as a fraction of ``lr``.
    input_size : tuple of int or None, default=None
        ``(H, W)`` images are resized to; None uses the weights' size
        (224x224 for torchvision's) or, for checkpoints and random
        initialisation, the images' own size.
    max_epochs : int, default=10
        Epochs in all, fine-tuning included.
    normalize : bool, default=True
        When the weights carry no normalisation of their own
        (``weights=None``, checkpoints without one): standardise each
        channel with the training images' mean and std (False: feed the
        images as they are). Weights with their own mean and std
        (torchvision's, :meth:`save_weights` files) always use those.
    **other parameters
        As :class:`~sklearn_imgcls.CNNClassifier`: ``backbone_params``,
        ``image_shape``, ``loss``, ``loss_params``, ``class_weight``,
        ``optimizer``, ``optimizer_params``, ``lr``, ``lr_schedule`` (default
        ``"constant"``), ``batch_size``, ``validation_fraction``,
        ``early_stopping``, ``scoring``, ``augment``, ``sampler``, ``tta``,
        ``adversarial``, ``device``, ``precision``, ``channels_last``,
        ``compile``, ``num_workers``, ``num_threads``, ``random_state``, ``verbose``,
        ``callbacks``, ``accelerator``, ``threshold``, ``log``.

    Attributes
    ----------
    classes_, multilabel_, n_features_in_, image_shape_, net_, history_
        As :class:`~sklearn_imgcls.CNNClassifier` (multi-label ``y`` works as there).
    backbone_, backbone_params_, max_epochs_, batch_size_, lr_, lr_schedule_, augment_
        The values trained with (here the parameters themselves: no preset
        fills them), as in :class:`~sklearn_imgcls.CNNClassifier`.
    frozen_parameters_ : list of str
        Backbone parameters frozen at the start of training.
    fine_tune_epochs_ : int
        Epochs trained with the backbone released at the end of the fit (0
        unless ``freeze="backbone"``).

    Examples
    --------
    >>> clf = TransferClassifier("resnet50", weights="IMAGENET1K_V2", freeze="backbone",
    ...                          fine_tune_epochs=3, max_epochs=5)  # doctest: +SKIP
    >>> clf.fit(paths_train, y_train).predict_proba(paths_test)  # doctest: +SKIP
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        *,
        weights: str | None = "DEFAULT",
        freeze: str | int = "none",
        fine_tune_epochs: int | None = None,
        backbone_lr_ratio: float = 0.1,
        input_size: tuple[int, int] | None = None,
        backbone_params: dict | None = None,
        image_shape: tuple[int, ...] | None = None,
        loss: str = "cross_entropy",
        loss_params: dict | None = None,
        class_weight: str | dict | None = None,
        optimizer: Any = "adam",
        optimizer_params: dict | None = None,
        lr: float = 1e-3,
        lr_schedule: str = "constant",
        batch_size: int = 64,
        max_epochs: int = 10,
        validation_fraction: float | None = None,
        early_stopping: int | None = None,
        scoring: str | list | None = None,
        augment: str | list | None = None,
        sampler: str | tuple | None = None,
        tta: str | list | None = None,
        adversarial: dict | None = None,
        normalize: bool = True,
        device: str = "auto",
        precision: str = "auto",
        channels_last: bool = True,
        compile: bool = False,
        num_workers: int | str = "auto",
        num_threads: int | None = None,
        random_state: Any = None,
        verbose: int = 0,
        callbacks: list | None = None,
        accelerator: Any = None,
        threshold: float = 0.5,
        log: str | list | None = None,
    ) -> None:
        self.backbone = backbone
        self.weights = weights
        self.freeze = freeze
        self.fine_tune_epochs = fine_tune_epochs
        self.backbone_lr_ratio = backbone_lr_ratio
        self.input_size = input_size
        self.backbone_params = backbone_params
        self.image_shape = image_shape
        self.loss = loss
        self.loss_params = loss_params
        self.class_weight = class_weight
        self.optimizer = optimizer
        self.optimizer_params = optimizer_params
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.scoring = scoring
        self.augment = augment
        self.sampler = sampler
        self.tta = tta
        self.adversarial = adversarial
        self.normalize = normalize
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        self.num_workers = num_workers
        self.num_threads = num_threads
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.accelerator = accelerator
        self.threshold = threshold
        self.log = log

    def _validate_extra_params(self) -> None:
        get_registry().get("backbone", self.backbone)
        check_dict("backbone_params", self.backbone_params)
        if self.weights is not None and not isinstance(self.weights, str):
            raise TypeError(f"weights must be None, a weights name or a checkpoint path, got {self.weights!r}.")
        valid_int = isinstance(self.freeze, numbers.Integral) and not isinstance(self.freeze, bool) and self.freeze >= 0
        if self.freeze not in ("backbone", "none") and not valid_int:
            raise ValueError(f"freeze must be 'backbone', 'none' or a number of blocks >= 0, got {self.freeze!r}.")
        if self.fine_tune_epochs is not None and (
            isinstance(self.fine_tune_epochs, bool)
            or not isinstance(self.fine_tune_epochs, numbers.Integral)
            or not 0 <= self.fine_tune_epochs <= self.max_epochs
        ):
            raise ValueError(
                f"fine_tune_epochs must be None or an integer from 0 to max_epochs={self.max_epochs!r}, "
                f"got {self.fine_tune_epochs!r}."
            )
        check_positive_float("backbone_lr_ratio", self.backbone_lr_ratio)
        if self.input_size is not None:
            check_image_shape(self.input_size)
            if len(tuple(self.input_size)) != 2:
                raise ValueError(f"input_size must be (height, width), got {self.input_size!r}.")

    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, resume_from: str | None = None) -> "TransferClassifier":
        """Fine-tune on images ``X`` with labels ``y`` (see the class docstring).

        ``sample_weight`` and ``resume_from`` are as in
        :meth:`CNNClassifier.fit <sklearn_imgcls.CNNClassifier.fit>`.

        Returns
        -------
        self
        """
        return super().fit(X, y, sample_weight, resume_from=resume_from)

    #: ``freeze`` may keep backbone parameters frozen (``frozen_parameters_``)
    _freezes = True

    def _record_fitted(self, net: Any, classes: Any, image_shape: tuple[int, int, int],
                       frozen_parameters: list[str] | None = None) -> None:
        """As the base, plus ``frozen_parameters_`` (those of this fit, or of a loaded file) and ``fine_tune_epochs_``."""
        super()._record_fitted(net, classes, image_shape)
        self.frozen_parameters_ = list(self._frozen if frozen_parameters is None else frozen_parameters)
        self.fine_tune_epochs_ = self._fine_tune_epochs()

    def _recipe_without_record(self) -> dict:
        """The fitted network's recipe when it records none (built before recipes were recorded)."""
        network = self.net_.module_
        channels, height, width = self.image_shape_
        recipe = {"backbone": self.backbone, "backbone_params": self.backbone_params or {},
                  "num_outputs": len(self.classes_), "network_in_channels": network.in_channels,
                  "network_input_size": network.input_size, "build_size": (height, width), "replace_head": True}
        if self.weights is not None and not is_checkpoint_path(self.weights):
            return {**recipe, "source": "native", "build_channels": 3}
        spec = get_registry().get("backbone", self.backbone)
        return {**recipe, "source": "registry", "build_channels": first_conv_channels(network.backbone, spec) or channels}

    def _fine_tune_epochs(self) -> int:
        """The final epochs with the backbone released: ``fine_tune_epochs``, by default half of ``max_epochs``."""
        if self.freeze != "backbone":
            return 0
        return int(self.max_epochs) // 2 if self.fine_tune_epochs is None else int(self.fine_tune_epochs)

    def _build_network(self, data: ImageData, n_classes: int, settings: dict) -> tuple[nn.Module, list, dict]:
        built = build_pretrained_network(
            self.backbone, self.weights, data, n_classes, self.input_size, self.backbone_params, self.normalize
        )
        frozen = apply_freeze(built.network.backbone, built.head, self.freeze)
        self._frozen = frozen
        callbacks = []
        fine_tune = self._fine_tune_epochs()
        if fine_tune and frozen:  # skorch matches the net's parameter names: the backbone's carry "backbone."
            unfreezer = Unfreezer([f"backbone.{name}" for name in frozen], at=int(self.max_epochs) - fine_tune + 1)
            callbacks.append(("unfreeze", unfreezer))
        # skorch: parameters matching a group pattern get its settings; the
        # rest (the backbone) learn at the net's lr.
        net_params = {
            "lr": settings["lr"] * self.backbone_lr_ratio,
            "optimizer__param_groups": [(f"backbone.{built.head}.*", {"lr": settings["lr"]})],
        }
        return built.network, callbacks, net_params

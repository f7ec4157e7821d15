"""The estimator base shared by every classifier: input checks, labels, skorch net.

:class:`BaseImageClassifier` does everything that is not specific to how the
network is made: it validates parameters in ``fit``, turns the input into
images (:mod:`sklearn_imgcls._core.data`), encodes labels, builds the loss,
augmentations and sampler from the registry, trains a skorch
``NeuralNetClassifier`` kept as ``net_``, and predicts with a lean
inference loop. Subclasses implement :meth:`BaseImageClassifier._build_backbone`
(or ``_build_network``) and describe what they build for persistence
(``__sklearn_imgcls_recipe__``, see :mod:`sklearn_imgcls._core.recipe`).
Saving, ONNX export and the learning-rate finder are added by the public
:class:`sklearn_imgcls.classifier.ImageClassifier`, so nothing here imports
the public modules.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetClassifier
from torch import nn

from . import params as P
from .preset_data import RESOLVED_PARAMS
from .components import (augmentation_chain, build_criterion, check_label_mixing, check_sample_weight_support,
                         resolve_sampler, training_loss)
from .data import ImageData, as_image_data, naming_invalid_files
from .divergence import non_finite_output_message
from .errors import NonFiniteOutputError
from .inference import inference_batch_size, predicted_probabilities
from .loader_workers import resolve_workers
from .multilabel import check_threshold, indicator_over
from .multilabel_fit import check_multilabel_settings
from .net_factory import training_net
from .network import PRECISIONS, ImageNetwork, module_device
from ..plugin.registry import get_registry
from .pretrained import input_statistics
from .recipe import RECIPE_KEYS, ModelRecipe, registry_recipe
from .resume import describe_training, restore_checkpoint
from .run_logging import logging_callbacks
from .schedules import LR_SCHEDULES
from .targets import class_weight_tensor, encode_labels
from .threads import torch_threads

__all__ = ["BaseImageClassifier"]




class BaseImageClassifier(ClassifierMixin, BaseEstimator):
    """Shared machinery of the image classifiers; not used directly.

    Subclasses define ``__init__`` (storing their parameters, which must
    include every attribute read here) and ``_build_backbone``.
    """

    # -- to be provided by subclasses -----------------------------------
    def _build_backbone(self, image_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
        raise NotImplementedError

    def _validate_extra_params(self) -> None:
        """Validate subclass-specific parameters (called first in ``fit``)."""

    #: whether ``fit`` may freeze backbone parameters (recorded as ``frozen_parameters_``)
    _freezes = False

    def _param(self, name: str) -> Any:
        """The value a parameter takes in training (subclasses resolve presets here)."""
        return getattr(self, name)

    def _fixed_recipe(self, image_shape: tuple[int, int, int]) -> dict:
        """Recipe values the parameters decide for images of ``image_shape`` (see :class:`ModelRecipe`)."""
        return {"backbone": self._param("backbone")}

    def _recipe_without_record(self) -> dict:
        """The fitted network's recipe, for networks built before recipes were recorded on them."""
        network = self.net_.module_
        recipe = registry_recipe(self._param("backbone"), self._param("backbone_params"), self.image_shape_,
                                 len(self.classes_))
        return {**recipe, "network_in_channels": network.in_channels, "network_input_size": network.input_size}

    # -- fit -------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, resume_from: str | None = None) -> "BaseImageClassifier":
        """Train the network on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like, sequence of file paths or of PIL images
            Images in any layout :mod:`sklearn_imgcls._core.data` accepts.
        y : array-like of shape (n_samples,), or multi-label targets
            Class labels: integers or strings. Multi-label targets (each image
            any number of labels): an ``(n_samples, n_labels)`` 0/1 indicator
            matrix (a DataFrame's column names become ``classes_``) or one
            collection of labels per image (``[["cat"], ["cat", "dog"], []]``);
            the network then has a sigmoid per label, and ``loss`` left at
            ``"cross_entropy"`` trains with ``"binary_cross_entropy"``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each image in the loss (training and
            validation): each batch's loss is ``sum(w_i * l_i) / sum(w_i)``,
            multiplied with ``class_weight`` where both are given.
        resume_from : str or None, default=None
            Folder written by a
            :class:`~sklearn_imgcls.checkpoints.TrainingCheckpoint` callback
            of an interrupted fit with the same parameters and data: training
            continues from its last complete epoch up to ``max_epochs``, with
            the random states restored (on a CPU the result equals an
            uninterrupted fit). Other parameters or labels are refused.

        Returns
        -------
        self
        """
        with torch_threads(getattr(self, "num_threads", None)):
            with self._training_session(X, y, sample_weight=sample_weight) as (net, data, classes, y_encoded, weights):
                dataset = data.dataset(torch.as_tensor(y_encoded), weights)
                describe_training(net, self, classes, y_encoded, data.image_shape)  # what TrainingCheckpoint records
                with naming_invalid_files(data):  # one unreadable file: name every one, from any DataLoader worker
                    if resume_from is None:
                        net.fit(dataset, y_encoded)
                    else:  # weights, optimizer, history and RNG states, checked against this fit's parameters and data
                        remaining = int(self._param("max_epochs")) - restore_checkpoint(net, os.fspath(resume_from))
                        if remaining > 0:
                            net.partial_fit(dataset, y_encoded, epochs=remaining)
        self._record_fitted(net, classes, data.image_shape)
        return self

    def _record_fitted(self, net: NeuralNetClassifier, classes: np.ndarray, image_shape: tuple[int, int, int],
                       frozen_parameters: list[str] | None = None) -> None:
        """Set the fitted attributes (from ``fit``, or from a loaded model file: then with its ``frozen_parameters``)."""
        self.classes_ = classes
        self.multilabel_ = bool(getattr(net, "multilabel", False))  # the net knows: trained or loaded
        for name in RESOLVED_PARAMS:  # what was trained, presets resolved (read these, not the parameters)
            setattr(self, f"{name}_", self._param(name))
        self.image_shape_ = tuple(image_shape)
        self.n_features_in_ = int(np.prod(image_shape))
        self.net_ = net
        self.history_ = net.history

    # -- the persistence protocol (see sklearn_imgcls._core.recipe) ----------
    def __sklearn_imgcls_recipe__(self, image_shape: tuple[int, int, int] | None = None) -> ModelRecipe:
        """Describe the network for :mod:`sklearn_imgcls.persistence`.

        Parameters
        ----------
        image_shape : tuple of int or None
            None: describe the fitted network (``architecture``; ``fixed``
            for the fitted image shape). A shape: what ``fit`` would decide
            for images of that shape, the parameters checked first as
            ``fit`` checks them (ValueError or TypeError otherwise).

        Returns
        -------
        ModelRecipe
        """
        if image_shape is None:
            check_is_fitted(self)
            image_shape = self.image_shape_
        else:
            self._validate_params()
        architecture = None
        if hasattr(self, "net_"):
            recorded = getattr(self.net_.module_, "recipe", None)  # what the estimator built, where it says so
            fine = isinstance(recorded, dict) and set(recorded) == RECIPE_KEYS
            architecture = dict(recorded) if fine else self._recipe_without_record()
        return ModelRecipe(architecture, self._fixed_recipe(tuple(image_shape)), self._freezes)

    def __sklearn_imgcls_restore__(self, net: NeuralNetClassifier, classes: np.ndarray,
                                   image_shape: tuple[int, int, int], frozen_parameters: list[str]):
        """Become the fitted estimator holding ``net`` (a model file's network); returns ``self``."""
        self._record_fitted(net, classes, image_shape, frozen_parameters)
        return self

    @contextlib.contextmanager
    def _training_session(self, X: Any, y: Any, sample_weight: Any = None, **setting_overrides: Any):
        """Validate, resolve inputs and labels, and build the skorch net under the seed.

        Yields ``(net, data, classes, y_encoded, weights)`` (``weights``: the
        validated sample weights or None); torch's global RNG is
        seeded from ``random_state`` inside the block (dropout, initialisation)
        and restored after it.
        """
        settings = {**self._validate_params(), **setting_overrides}
        data = as_image_data(X, self.image_shape)
        classes, y_encoded = encode_labels(y, len(data), type(self).__name__)
        multilabel = y_encoded.ndim == 2
        settings["loss"] = training_loss(get_registry(), self.loss, multilabel)  # multi-label: BCE for the default
        if multilabel:  # samplers and adversarial training have no multi-label meaning: refused by name
            check_threshold(self.threshold, len(classes))
            check_multilabel_settings(settings, self.sampler, self.scoring, len(classes))
        weights = P.check_sample_weight(sample_weight, len(data))
        if weights is not None:
            check_sample_weight_support(get_registry(), settings["loss"])
        if weights is not None and settings["resampler"] is not None:
            raise ValueError(
                f"sample_weight cannot be combined with sampler={self.sampler!r}: the images it synthesises "
                "have no weight. Drop one of them (class_weight='balanced' also counters imbalance)."
            )
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        if settings["resampler"] is not None and not data.in_memory:
            raise ValueError(
                f"The sampler {self.sampler!r} resamples the training split's images in memory "
                "(stage='training_split'); load the files into an array first, or use a per-epoch sampler "
                "such as sampler='oversample'."
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self._initialized_net(data, classes, y_encoded, settings, seed, weighted=weights is not None)
            yield net, data, classes, y_encoded, weights

    def _initialized_net(self, data, classes, y_encoded, settings, seed, weighted=False) -> NeuralNetClassifier:
        """Build loss, network and skorch net for ``data`` (under the caller's seed).

        The loss comes first: its checks (class weights, a deprecated-hook
        loss probed for soft targets) fail before the network is built.
        """
        class_weight = class_weight_tensor(self.class_weight, classes, y_encoded)
        criterion = build_criterion(get_registry(), settings.get("loss", self.loss), class_weight,
                                    settings["loss_params"], y_encoded,
                                    weighted=weighted, augment=settings["augment"])
        module, callbacks, net_params = self._build_network(data, len(classes), settings)
        module.set_compute(settings["precision"], settings["channels_last"], settings["compile"])
        return training_net(module, criterion, settings, seed, y_encoded, classes, user_callbacks=self.callbacks,
                            extra_callbacks=callbacks + logging_callbacks(self.log, self, settings), net_params=net_params,
                            accelerator=self.accelerator)

    def _validate_params(self) -> dict[str, Any]:
        self._validate_extra_params()
        registry = get_registry()
        registry.get("loss", self.loss)
        settings = {
            "optimizer": P.check_optimizer(self.optimizer),
            "lr": P.check_positive_float("lr", self._param("lr")),
            "batch_size": P.check_int("batch_size", self._param("batch_size")),
            "max_epochs": P.check_int("max_epochs", self._param("max_epochs")),
            "lr_schedule": P.check_choice("lr_schedule", self._param("lr_schedule"), LR_SCHEDULES),
            "precision": P.check_choice("precision", self._param("precision"), PRECISIONS),
            "channels_last": P.check_bool("channels_last", self._param("channels_last")),
            "compile": P.check_bool("compile", self._param("compile")),
            "num_workers": resolve_workers(self._param("num_workers")),
            "validation_fraction": P.check_fraction("validation_fraction", self.validation_fraction),
            "early_stopping": P.check_int("early_stopping", self.early_stopping, allow_none=True),
            "device": P.check_device(self.device),
            "verbose": P.check_int("verbose", self.verbose, minimum=0),
            "scoring": P.check_scoring(self.scoring),
            "loss_params": P.check_dict("loss_params", self.loss_params),
            "optimizer_params": P.check_optimizer_params(self.optimizer, self.optimizer_params),
            "augment": augmentation_chain(self._param("augment")),
            "tta": P.check_tta(self.tta),
            "adversarial": P.check_adversarial(self.adversarial),
            "sampler": None,
            "resampler": None,
        }
        check_label_mixing(registry, self.loss, settings["augment"])  # a loss without soft targets under mixup
        sampler = P.check_sampler(self.sampler)
        if sampler is not None:  # per epoch, or once on the training split (imbalanced-learn's fit_resample)
            settings["sampler"], settings["resampler"] = resolve_sampler(registry, sampler)
        if settings["early_stopping"] and not settings["validation_fraction"]:
            raise ValueError(
                "early_stopping needs a validation split to watch: set validation_fraction "
                "(e.g. 0.1) or early_stopping=None."
            )
        if settings["scoring"] and not settings["validation_fraction"]:
            raise ValueError(
                "scoring is tracked on the validation split: set validation_fraction (e.g. 0.1) "
                "or scoring=None."
            )
        if not (self.class_weight is None or self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {self.class_weight!r}.")
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise TypeError(f"callbacks must be None or a list of skorch callbacks, got {self.callbacks!r}.")
        return settings

    def _build_network(self, data: ImageData, n_classes: int, settings: dict) -> tuple[nn.Module, list, dict]:
        """Return the network, extra skorch callbacks and extra skorch parameters."""
        backbone = self._build_backbone(data.image_shape, n_classes)
        network = ImageNetwork(backbone, *input_statistics(data, self.normalize))
        # how to rebuild this network (save_weights and save record it; see weights.LoadedWeights)
        network.recipe = registry_recipe(self._param("backbone"), self._param("backbone_params"), data.image_shape,
                                         n_classes)
        return network, [], {}

    # -- predict ---------------------------------------------------------
    def _images(self, X: Any) -> ImageData:
        check_is_fitted(self)
        return as_image_data(X, fitted_shape=self.image_shape_, estimator_name=type(self).__name__)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities, one column per entry of ``classes_``.

        Multi-label models give each label's independent (sigmoid)
        probability: rows do not sum to 1.

        Parameters
        ----------
        X : array-like, sequence of file paths or of PIL images
            Images of the layout and shape seen in ``fit``.

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_classes)
        """
        data = self._images(X)
        views = P.check_tta(getattr(self, "tta", None))
        # prediction follows the current ``precision`` (set_params(precision="fp32") on a fitted model takes effect)
        self.net_.module_.precision = P.check_choice("precision", self._param("precision"), PRECISIONS)
        batch_size = self._predict_batch_size(module_device(self.net_.module_))  # validates batch_size
        workers = resolve_workers(self._param("num_workers"))
        with torch_threads(getattr(self, "num_threads", None)):
            probabilities = predicted_probabilities(self.net_.module_, data, views, batch_size, workers,
                                                    multilabel=self._multilabel())
        finite = np.isfinite(probabilities).all(axis=1)
        if not finite.all():
            raise NonFiniteOutputError(non_finite_output_message(np.flatnonzero(~finite), self.net_.module_, data))
        probabilities = probabilities.astype(np.float64)
        if self._multilabel():
            return probabilities  # independent per label
        return probabilities / probabilities.sum(axis=1, keepdims=True)  # exact in float64

    def _multilabel(self) -> bool:
        return bool(getattr(self, "multilabel_", False))

    def _predict_batch_size(self, device: torch.device | None = None) -> int:
        """Images per inference batch (see :func:`sklearn_imgcls._core.inference.inference_batch_size`)."""
        return inference_batch_size(P.check_int("batch_size", self._param("batch_size")), self.image_shape_, device)

    def predict(self, X: Any) -> np.ndarray:
        """Return the predicted class label of each image (labels as given to ``fit``).

        Multi-label models return the ``(n_samples, n_labels)`` 0/1 indicator
        matrix (columns as ``classes_``): a label is set where its probability
        is at least ``threshold`` (the current value; one float or one per label).
        """
        if self._multilabel():
            threshold = check_threshold(getattr(self, "threshold", 0.5), len(self.classes_))
            return (self.predict_proba(X) >= threshold).astype(np.int64)
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``(X, y)``; for a multi-label model subset accuracy (every label of an image right).

        A multi-label ``y`` may be the indicator matrix or label collections
        (binarised over ``classes_``).
        """
        if self._multilabel():
            y = indicator_over(y, self.classes_, len(X) if hasattr(X, "__len__") else None)
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        tags.classifier_tags.multi_label = True  # an indicator matrix or label collections as y
        return tags

"""The estimator base shared by every classifier: input checks, labels, skorch net.

:class:`BaseImageClassifier` does everything that is not specific to how the
network is made: it validates parameters in ``fit``, turns the input into
images (:mod:`sklearn_imgcls._core.data`), encodes labels, builds the loss,
augmentations and sampler from the registry, trains a skorch
``NeuralNetClassifier`` kept as ``net_``, and predicts with a lean
inference loop. Subclasses implement :meth:`BaseImageClassifier._build_backbone`.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, EpochScoring, ProgressBar
from skorch.dataset import ValidSplit
from torch import nn

from . import params as P
from .labels import check_label_values, plain
from ..builtin.augmentations import PRESETS as AUGMENT_PRESETS
from ..checkpoints import describe_training
from .data import ImageData, as_image_data, channel_statistics, naming_invalid_files
from .divergence import DivergenceGuard, non_finite_output_message
from ..errors import NonFiniteOutputError
from .inference import inference_batch_size, predicted_probabilities
from .iterators import BatchIterator
from .loader_workers import resolve_workers
from .network import PRECISIONS, ImageNetwork, module_device
from ..plugin.registry import ComponentChain, get_registry
from .resampling import ResampledSplit
from .schedules import LR_SCHEDULES, LRSchedule
from .net import ImageNeuralNet, accelerated_net_class, per_sample_criterion
from .threads import torch_threads

__all__ = ["BaseImageClassifier"]


def _silent(*args: Any, **kwargs: Any) -> None:
    """A print sink that prints nothing (module level, so nets pickle)."""


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=-1)


#: images used to estimate the per-channel mean and std of file inputs
_STATS_SAMPLE = 512

#: values of the compute parameters for estimators that do not define them
_COMPUTE_DEFAULTS = {"lr_schedule": "constant", "precision": "fp32", "channels_last": False, "compile": False,
                     "num_workers": 0}


#: parameters whose value in training may differ from the one set (presets fill unset ones);
#: ``fit`` records each as a fitted attribute with a trailing underscore (``backbone_``, ``lr_``, ...)
RESOLVED_PARAMS = ("backbone", "backbone_params", "max_epochs", "batch_size", "lr", "lr_schedule", "augment")


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

    def _param(self, name: str) -> Any:
        """The value a parameter takes in training (subclasses resolve presets here)."""
        return getattr(self, name, _COMPUTE_DEFAULTS.get(name))

    # -- fit -------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, resume_from: str | None = None) -> "BaseImageClassifier":
        """Train the network on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like, sequence of file paths or of PIL images
            Images in any layout :mod:`sklearn_imgcls._core.data` accepts.
        y : array-like of shape (n_samples,)
            Class labels: integers or strings.
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
                    else:
                        remaining = self._restore_checkpoint(net, resume_from)
                        if remaining > 0:
                            net.partial_fit(dataset, y_encoded, epochs=remaining)
        self.classes_ = classes
        for name in RESOLVED_PARAMS:  # what was trained, presets resolved (read these, not the parameters)
            setattr(self, f"{name}_", self._param(name))
        self.image_shape_ = data.image_shape
        self.n_features_in_ = int(np.prod(data.image_shape))
        self.net_ = net
        self.history_ = net.history
        return self

    def _restore_checkpoint(self, net: NeuralNetClassifier, folder: str) -> int:
        """Check and load the checkpoint in ``folder`` into ``net``; return the epochs left to train.

        See :func:`sklearn_imgcls.checkpoints.restore_checkpoint` (weights, optimizer, history and
        RNG states, checked against the manifest and this fit's parameters and data).
        """
        from ..checkpoints import restore_checkpoint

        return int(self._param("max_epochs")) - restore_checkpoint(net, os.fspath(folder))

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
        classes, y_encoded = self._encode_labels(y, len(data))
        weights = P.check_sample_weight(sample_weight, len(data))
        if weights is not None and settings["resampler"] is not None:
            raise ValueError(
                f"sample_weight cannot be combined with sampler={self.sampler!r}: the images it synthesises "
                "have no weight. Drop one of them (class_weight='balanced' also counters imbalance)."
            )
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        if settings["resampler"] is not None and not data.in_memory:
            raise ValueError(
                f"The sampler {self.sampler!r} resamples images in memory; load the files into an "
                "array first, or use sampler='oversample'."
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self._initialized_net(data, classes, y_encoded, settings, seed, weighted=weights is not None)
            yield net, data, classes, y_encoded, weights

    def _initialized_net(self, data, classes, y_encoded, settings, seed, weighted=False) -> NeuralNetClassifier:
        """Build network, loss and skorch net for ``data`` (under the caller's seed)."""
        module, callbacks, net_params = self._build_network(data, len(classes), settings)
        module.set_compute(settings["precision"], settings["channels_last"], settings["compile"])
        class_weight = self._class_weight_tensor(classes, y_encoded)
        registry = get_registry()
        extra = {}
        if "class_priors" in inspect.signature(registry.get("loss", self.loss).build).parameters:
            extra["class_priors"] = torch.as_tensor(np.bincount(y_encoded) / len(y_encoded), dtype=torch.float32)
        criterion = registry.build("loss", self.loss, class_weight=class_weight, **extra, **settings["loss_params"])
        if weighted:
            criterion = per_sample_criterion(criterion, self.loss)
        return self._make_net(module, criterion, settings, seed, y_encoded, callbacks, net_params, classes)

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
            "optimizer_params": P.check_dict("optimizer_params", self.optimizer_params),
            "augment": ComponentChain("augmentation", P.check_augment(self._param("augment"), AUGMENT_PRESETS)).build(),
            "tta": P.check_tta(self.tta),
            "adversarial": P.check_adversarial(self.adversarial),
            "sampler": None,
            "resampler": None,
        }
        sampler = P.check_sampler(self.sampler)
        if sampler is not None:
            built = registry.build("sampler", sampler[0], **sampler[1])
            if hasattr(built, "fit_resample"):  # imbalanced-learn API: once, on the training split
                settings["resampler"] = built
            else:
                settings["sampler"] = ComponentChain("sampler", [sampler]).build()
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

    def _encode_labels(self, y: Any, n_images: int) -> tuple[np.ndarray, np.ndarray]:
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
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

    def _class_weight_tensor(self, classes: np.ndarray, y_encoded: np.ndarray) -> torch.Tensor | None:
        if self.class_weight is None:
            return None
        if self.class_weight == "balanced":
            weights = compute_class_weight("balanced", classes=np.arange(len(classes)), y=y_encoded)
        else:
            unknown = set(self.class_weight) - set(classes.tolist())
            if unknown:
                raise ValueError(
                    f"class_weight names classes that are not in y: {sorted(unknown, key=repr)}. "
                    f"Classes in y: {classes.tolist()}."
                )
            weights = [float(self.class_weight.get(c, 1.0)) for c in classes.tolist()]
            bad = {c: w for c, w in zip(classes.tolist(), weights) if not (np.isfinite(w) and w > 0)}
            if bad:
                raise ValueError(f"class_weight must give every class a positive, finite weight; got {bad}. "
                                 "Leave a class out of the dict for weight 1.")
        return torch.as_tensor(weights, dtype=torch.float32)

    def _build_network(self, data: ImageData, n_classes: int, settings: dict) -> tuple[nn.Module, list, dict]:
        """Return the network, extra skorch callbacks and extra skorch parameters."""
        backbone = self._build_backbone(data.image_shape, n_classes)
        mean, std = self._input_statistics(data)
        network = ImageNetwork(backbone, mean, std)
        channels, height, width = data.image_shape
        network.recipe = {  # how to rebuild this network (save_weights records it; see weights.LoadedWeights)
            "source": "registry", "backbone": self._param("backbone"),
            "backbone_params": self._param("backbone_params") or {}, "build_channels": channels,
            "build_size": (height, width), "num_outputs": n_classes, "replace_head": False,
            "network_in_channels": None, "network_input_size": None,
        }
        return network, [], {}

    def _input_statistics(self, data: ImageData) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images (in [0, 1] units for uint8)."""
        channels = data.image_shape[0]
        if not self.normalize:
            return torch.zeros(channels), torch.ones(channels)
        images = data.tensor if data.in_memory else data.sample(_STATS_SAMPLE)
        mean, std = channel_statistics(images)
        return mean, torch.where(std > 1e-12, std, torch.ones_like(std))

    def _make_net(
        self, module, criterion, settings, seed, y_encoded, extra_callbacks, net_params, classes
    ) -> NeuralNetClassifier:
        callbacks = [("divergence_guard", DivergenceGuard())] + list(self.callbacks or []) + list(extra_callbacks)
        for name in settings["scoring"]:
            callbacks.append((f"valid_{name}", EpochScoring(name, lower_is_better=name.startswith("neg_"), name=f"valid_{name}")))
        if settings["early_stopping"]:
            callbacks.append(("early_stopping", EarlyStopping(patience=settings["early_stopping"], load_best=True)))
        if settings["lr_schedule"] != "constant":
            callbacks.append(("lr_schedule", LRSchedule(settings["lr_schedule"], settings["max_epochs"])))
        if settings["verbose"] >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        train_split = None
        if settings["validation_fraction"]:
            counts = np.bincount(y_encoded)
            train_split = ValidSplit(
                settings["validation_fraction"], stratified=bool(counts.min() >= 2), random_state=seed
            )
        if settings["resampler"] is not None:
            train_split = ResampledSplit(settings["resampler"], train_split, seed, classes=classes)
        generator = torch.Generator().manual_seed(seed)
        optimizer_params = {f"optimizer__{k}": v for k, v in settings["optimizer_params"].items()}
        params = dict(
            module=module,
            criterion=criterion,
            optimizer=settings["optimizer"],
            lr=settings["lr"],
            batch_size=settings["batch_size"],
            max_epochs=settings["max_epochs"],
            train_split=train_split,
            callbacks=callbacks or None,
            device=settings["device"],
            classes=list(range(len(classes))),
            predict_nonlinearity=_softmax,
            iterator_train=BatchIterator,
            iterator_train__shuffle=True,
            iterator_train__generator=generator,
            iterator_train__augment=settings["augment"] if settings["augment"].items else None,
            iterator_train__sampler=settings["sampler"],
            iterator_train__num_classes=len(classes),
            iterator_train__num_workers=settings["num_workers"],
            iterator_valid=BatchIterator,
            iterator_valid__num_workers=settings["num_workers"],
            adversarial=settings["adversarial"],
            verbose=settings["verbose"],
            **optimizer_params,
        )
        params.update(net_params)
        if self.accelerator is not None:
            processes = getattr(self.accelerator, "num_processes", 1)
            if processes > 1 and settings["validation_fraction"]:
                raise ValueError(
                    "validation_fraction is not supported across several accelerate processes (each would score "
                    "its own copy of the validation split); set validation_fraction=None for distributed runs."
                )
            params.update(device=None, accelerator=self.accelerator)
            if settings["verbose"] == 0:  # AccelerateMixin routes the epoch table to accelerator.print
                params["callbacks__print_log__sink"] = _silent
            if processes > 1:
                params["iterator_train__shard"] = (self.accelerator.process_index, processes)
            return accelerated_net_class()(**params)
        return ImageNeuralNet(**params)

    def save_weights(self, path: str) -> None:
        """Save the fitted network (weights and input normalisation) for transfer.

        ``TransferClassifier(backbone=<same backbone>, weights=path)`` and
        ``BackboneFeatures(<same backbone>, weights=path)`` load it. A path
        ending in ``.safetensors`` writes safetensors, else ``torch.save``.
        """
        from .weights import save_weights

        check_is_fitted(self)
        save_weights(self.net_.module_, os.fspath(path))

    def lr_find(self, X: Any, y: Any, start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100):
        """Learning-rate range test on a throw-away copy of the network.

        The rate rises exponentially from ``start_lr`` to ``end_lr`` over
        ``num_steps`` batches; the estimator itself is not changed. Set
        ``lr`` to the result's ``suggested_lr`` (see
        :func:`sklearn_imgcls.lr_finder.plot_lr_find` for the curve).

        Returns
        -------
        sklearn_imgcls.lr_finder.LRFinderResult
        """
        from ..lr_finder import run_lr_range_test

        if not 0 < start_lr < end_lr:
            raise ValueError(f"need 0 < start_lr < end_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}.")
        P.check_int("num_steps", num_steps, minimum=2)
        with torch_threads(getattr(self, "num_threads", None)), \
                self._training_session(X, y, validation_fraction=None, lr_schedule="constant") as (net, data, _, y_encoded, _weights):
            net.initialize()
            with naming_invalid_files(data):
                return run_lr_range_test(net, data.dataset(torch.as_tensor(y_encoded)), start_lr, end_lr, num_steps)

    # -- predict ---------------------------------------------------------
    def _images(self, X: Any) -> ImageData:
        check_is_fitted(self)
        return as_image_data(X, fitted_shape=self.image_shape_, estimator_name=type(self).__name__)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities, one column per entry of ``classes_``.

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
        batch_size = self._predict_batch_size(module_device(self.net_.module_))  # validates batch_size
        workers = resolve_workers(self._param("num_workers"))
        with torch_threads(getattr(self, "num_threads", None)):
            probabilities = predicted_probabilities(self.net_.module_, data, views, batch_size, workers)
        finite = np.isfinite(probabilities).all(axis=1)
        if not finite.all():
            raise NonFiniteOutputError(non_finite_output_message(np.flatnonzero(~finite), self.net_.module_, data))
        probabilities = probabilities.astype(np.float64)
        return probabilities / probabilities.sum(axis=1, keepdims=True)  # exact in float64

    def _predict_batch_size(self, device: torch.device | None = None) -> int:
        """Images per inference batch (see :func:`sklearn_imgcls._core.inference.inference_batch_size`)."""
        return inference_batch_size(P.check_int("batch_size", self._param("batch_size")), self.image_shape_, device)

    def save(self, path: str) -> str:
        """Save the fitted model as safetensors + JSON (no pickle); see :func:`sklearn_imgcls.persistence.save`."""
        from ..persistence import save

        return save(self, path)

    def to_onnx(self, path: str) -> str:
        """Export the fitted network (with softmax) to ONNX; see :func:`sklearn_imgcls.onnx_export.export_onnx`."""
        from ..onnx_export import export_onnx

        return export_onnx(self, path)

    def predict(self, X: Any) -> np.ndarray:
        """Return the predicted class label of each image (labels as given to ``fit``)."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

"""The skorch net the estimators train: sample weights on top of ``NeuralNetClassifier``.

Following skorch's convention for extra per-sample data, a sample-weighted
fit passes inputs as dicts ``{"images": ..., "sample_weight": ...}``. The
module only sees the images; the criterion (switched to ``reduction="none"``)
returns one loss per image, and the batch loss is their weighted mean
``sum(w_i * l_i) / sum(w_i)``. Without weights nothing changes.
"""

from __future__ import annotations

import collections
import contextlib
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.utils import to_tensor

from .allocator import pad_heap
from .data import to_float_images
from .iterators import images_of, with_images
from .network import autocast_dtype, module_device

__all__ = ["ImageNeuralNet", "class_probabilities", "per_sample_criterion"]


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis: the nets' ``predict_nonlinearity`` (module level, so nets pickle).

    skorch's ``predict_nonlinearity="auto"`` applies a softmax only after
    ``CrossEntropyLoss``; every loss of the registry (focal, label smoothing,
    logit adjustment, plugins) trains logits too, so the estimators name this
    function explicitly instead.
    """
    return torch.softmax(logits, dim=-1)


def per_sample_criterion(criterion: torch.nn.Module, loss_name: str, declared: bool = False) -> torch.nn.Module:
    """Switch ``criterion`` to one loss per sample (``reduction = "none"``).

    Parameters
    ----------
    criterion : torch.nn.Module
        The built loss.
    loss_name : str
        Its registry name, for messages.
    declared : bool
        Whether its spec declares ``sample_weights=True`` (then a missing
        ``reduction`` attribute is the plugin's error, not the user's).

    Raises
    ------
    TypeError
        When the loss declares ``sample_weights`` but has no ``reduction``.
    ValueError
        When an undeclared loss (a deprecated-hook plugin) has no ``reduction``.
    """
    if not hasattr(criterion, "reduction"):
        if declared:
            raise TypeError(
                f"The loss {loss_name!r} declares sample_weights=True but its module {type(criterion).__name__} "
                "has no 'reduction' attribute to set to 'none'; the plugin must add one (see LossSpec)."
            )
        raise ValueError(
            f"The loss {loss_name!r} cannot weight samples: its module has no 'reduction' attribute to "
            "set to 'none'. Fit without sample_weight, or use a loss that supports it (all built-in losses do)."
        )
    criterion.reduction = "none"
    return criterion


class ImageNeuralNet(NeuralNetClassifier):
    """:class:`skorch.NeuralNetClassifier` with per-sample weights and optional adversarial training.

    Parameters
    ----------
    multilabel : bool
        The module has one logit per label of a multi-label target (its
        ``predict`` gives the indicator matrix at 0.5; pass
        ``predict_nonlinearity`` as the sigmoid).
    adversarial : dict or None
        Validated adversarial-training settings (``method``, ``eps``,
        ``steps``, ``norm``, ``fraction``): before each training step that
        share of the batch is replaced by attacks on the current network
        (:func:`sklearn_imgcls.robustness.perturb`). Validation and prediction
        stay clean.
    *args, **kwargs
        As :class:`skorch.NeuralNetClassifier`.

    Notes
    -----
    Pickles (``pickle``, ``joblib``, ``copy.deepcopy``, loky workers) hold
    what prediction and further training need, once, and load on any device:

    - skorch pickles ``module_``, ``criterion_`` and ``optimizer_`` apart and
      restores them with a ``map_location`` (a net trained on CUDA unpickles
      on a CPU-only machine). The constructor arguments ``module`` and
      ``criterion`` are the very same objects (the estimators pass
      instances), so they join that group: stored once, identical to
      ``module_``/``criterion_`` after unpickling, never deserialised on a
      missing CUDA device.
    - The optimizer's per-parameter state (Adam's moment estimates, SGD
      momentum buffers) is left out; it would double or triple the file.
      Its hyperparameters and current learning rates are kept, so a further
      ``partial_fit`` after unpickling works and starts those statistics
      afresh, as a new optimizer would. Gradients are never pickled.
    """

    #: constructor arguments that hold the objects skorch keeps as ``module_`` / ``criterion_``
    _DEVICE_BOUND_ARGUMENTS = ("module", "criterion")

    def __init__(self, *args: Any, adversarial: dict | None = None, multilabel: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.adversarial = adversarial
        self.multilabel = multilabel

    def predict(self, X: Any) -> Any:
        """Class indices (argmax), or with ``multilabel`` the 0/1 indicator matrix at probability 0.5.

        skorch's validation scores (``valid_acc``, the estimator's ``scoring``)
        call this: for multi-label targets ``accuracy`` is then scikit-learn's
        subset accuracy (every label of an image right) at threshold 0.5.
        """
        if not getattr(self, "multilabel", False):
            return super().predict(X)
        return (self.predict_proba(X) >= 0.5).astype(np.int64)

    def __getstate__(self) -> dict:
        with self._pickling_view() as original_attributes:
            state = super().__getstate__()
        key = "cuda_dependent_attributes_"
        if original_attributes is None:
            state.pop(key, None)
        else:
            state[key] = original_attributes
        return state

    @contextlib.contextmanager
    def _pickling_view(self) -> Iterator[list | None]:
        """While skorch pickles: ``module``/``criterion`` pickled with the device-bound
        attributes, optimizers without their per-parameter state. Yields the instance's
        own ``cuda_dependent_attributes_`` (None when it has none) and restores everything."""
        own = vars(self)
        key = "cuda_dependent_attributes_"
        original = own.get(key)
        extra = [name for name in self._DEVICE_BOUND_ARGUMENTS if isinstance(own.get(name), torch.nn.Module)]
        optimizers = [own[name + "_"] for name in self._optimizers if own.get(name + "_") is not None]
        states = [optimizer.state for optimizer in optimizers]
        own[key] = list(self.cuda_dependent_attributes_) + extra
        try:
            for optimizer in optimizers:
                optimizer.state = collections.defaultdict(dict)
            yield original
        finally:
            for optimizer, state in zip(optimizers, states):
                optimizer.state = state
            if original is None:
                del own[key]
            else:
                own[key] = original

    def fit_loop(self, X: Any, y: Any = None, epochs: int | None = None, **kwargs: Any) -> "ImageNeuralNet":
        """skorch's training loop, with glibc told to keep freed memory between steps (:func:`pad_heap`)."""
        pad_heap()
        return super().fit_loop(X, y, epochs=epochs, **kwargs)

    def train_step_single(self, batch, **fit_params):  # noqa: D102
        from skorch.dataset import unpack_data

        if self.adversarial and self.adversarial["method"] == "trades":
            return self._trades_step(batch, **fit_params)
        if self.adversarial:
            batch = self._adversarial_batch(batch)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self._backward(loss)
        return {"loss": loss, "y_pred": y_pred}

    def _loss_scaler(self) -> torch.amp.GradScaler | None:
        """A gradient scaler while the module computes in float16 (whose small gradients underflow), else None."""
        if getattr(self, "accelerator", None) is not None:  # Accelerate scales losses itself
            return None
        device = module_device(self.module_)
        if autocast_dtype(getattr(self.module_, "precision", "fp32"), device.type) is not torch.float16:
            return None
        if getattr(self, "grad_scaler_", None) is None:
            self.grad_scaler_ = torch.amp.GradScaler(device.type)
        return self.grad_scaler_

    def _backward(self, loss: torch.Tensor) -> None:
        scaler = self._loss_scaler()
        (scaler.scale(loss) if scaler is not None else loss).backward()

    def _step_optimizer(self, step_fn) -> None:
        scaler = self._loss_scaler()
        if scaler is None:
            super()._step_optimizer(step_fn)
            return
        step_fn()  # scaled gradients; GradScaler unscales them, skips steps with inf/NaN and adapts the scale
        for name in self._optimizers:
            scaler.step(getattr(self, name + "_"))
        scaler.update()

    def _attack_inputs(self, Xi) -> tuple[torch.Tensor, tuple[float, float]]:
        """The batch's images as float on the module's device, and their valid pixel range."""
        from .attacks import pixel_bounds

        images = to_float_images(images_of(Xi)).to(module_device(self.module_))
        return images, pixel_bounds(images)

    def _trades_step(self, batch, **fit_params):
        """TRADES (Zhang et al., 2019): clean loss + beta * KL(clean || adversarial) predictions."""
        from skorch.dataset import unpack_data

        from .attacks import perturb_kl

        self._set_training(True)
        Xi, yi = unpack_data(batch)
        images, bounds = self._attack_inputs(Xi)
        settings = self.adversarial
        attacked = perturb_kl(self.module_, images, settings["eps"], steps=settings["steps"], norm=settings["norm"],
                              bounds=bounds)
        clean_inputs = with_images(Xi, images)
        y_pred = self.infer(clean_inputs, **fit_params)
        loss = self.get_loss(y_pred, yi, X=clean_inputs, training=True)
        robust = torch.nn.functional.kl_div(
            torch.log_softmax(self.module_(attacked), dim=1), torch.softmax(y_pred, dim=1), reduction="batchmean"
        )
        loss = loss + settings["beta"] * robust
        self._backward(loss)
        return {"loss": loss, "y_pred": y_pred}

    def _adversarial_batch(self, batch):
        from skorch.dataset import unpack_data

        from .attacks import perturb

        Xi, yi = unpack_data(batch)
        settings = self.adversarial
        n = int(round(settings["fraction"] * len(images_of(Xi))))
        if n == 0:
            return batch
        images, bounds = self._attack_inputs(Xi)
        targets = to_tensor(yi, images.device)
        attacked = perturb(
            self.module_, images[:n], targets[:n], settings["eps"], steps=settings["steps"], norm=settings["norm"],
            random_start=settings["method"] == "pgd", step_size=settings["eps"] if settings["method"] == "fgsm" else None,
            bounds=bounds,
        )
        return with_images(Xi, torch.cat([attacked, images[n:]])), yi

    def infer(self, x: Any, **fit_params: Any) -> torch.Tensor:  # noqa: D102
        return super().infer(images_of(x), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training: bool = False):  # noqa: D102
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if isinstance(X, Mapping) and "sample_weight" in X:
            weight = to_tensor(X["sample_weight"], self.device).to(loss.dtype)
            return (loss * weight).sum() / weight.sum().clamp_min(torch.finfo(loss.dtype).tiny)
        return loss


"""Assembling the skorch nets the estimators train and predict with.

:func:`training_net` turns validated settings (``BaseImageClassifier``'s
``fit``) into an :class:`~sklearn_imgcls._core.net.ImageNeuralNet` (or its
Accelerate variant): callbacks, validation split, batch iterators, optimizer
groups. :func:`inference_net` wraps a network rebuilt from a model file in an
initialised net that predicts and can train further.
"""

from __future__ import annotations

import functools
import re
import sys
from typing import Any

import numpy as np
import torch
from skorch.callbacks import EarlyStopping, EpochScoring, ProgressBar
from skorch.dataset import ValidSplit
from skorch.history import History
from torch import nn

from .divergence import DivergenceGuard
from .iterators import BatchIterator
from .multilabel import label_probabilities
from .net import ImageNeuralNet, class_probabilities
from .resampling import ResampledSplit
from .schedules import LRSchedule

__all__ = ["inference_net", "training_net"]


def silent(*args: Any, **kwargs: Any) -> None:
    """A print sink that prints nothing (module level, so nets pickle)."""


#: terminal colour codes (skorch colours the epoch table's columns)
_COLOUR_CODES = re.compile(r"\x1b\[[0-9;]*m")


def print_plain(text: str) -> None:
    """Print skorch's epoch table without colour codes (for output that is not a terminal: logs, pipes)."""
    print(_COLOUR_CODES.sub("", text), flush=True)


def _print_plain_on_main(accelerator: Any, text: str) -> None:
    accelerator.print(_COLOUR_CODES.sub("", text))  # accelerator.print prints on the main process only


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # a closed stream
        return False


def _callbacks(settings: dict, user_callbacks: list, extra_callbacks: list, main_process: bool = True) -> list:
    """The net's callbacks: divergence guard, the user's, the subclass's, then those the settings ask for
    (a progress bar only on the main process of several)."""
    callbacks = [("divergence_guard", DivergenceGuard())] + list(user_callbacks) + list(extra_callbacks)
    for name in settings["scoring"]:
        callbacks.append((f"valid_{name}", EpochScoring(name, lower_is_better=name.startswith("neg_"), name=f"valid_{name}")))
    if settings["early_stopping"]:
        callbacks.append(("early_stopping", EarlyStopping(patience=settings["early_stopping"], load_best=True)))
    if settings["lr_schedule"] != "constant":
        callbacks.append(("lr_schedule", LRSchedule(settings["lr_schedule"], settings["max_epochs"])))
    if settings["verbose"] >= 2 and main_process:
        callbacks.append(("progress_bar", ProgressBar()))
    return callbacks


def training_net(
    module: nn.Module,
    criterion: nn.Module,
    settings: dict,
    seed: int,
    y_encoded: np.ndarray,
    classes: np.ndarray,
    *,
    user_callbacks: list | None = None,
    extra_callbacks: list | None = None,
    net_params: dict | None = None,
    accelerator: Any = None,
) -> ImageNeuralNet:
    """The (uninitialised) skorch net that trains ``module`` with ``criterion`` under ``settings``.

    Parameters
    ----------
    module, criterion : torch.nn.Module
        The network and the loss (instances).
    settings : dict
        Validated settings (``BaseImageClassifier._validate_params``).
    seed : int
        Seed of the validation split and of the shuffling generator.
    y_encoded : numpy.ndarray
        Encoded training labels (stratification of the split); a 2-D 0/1
        matrix makes a multi-label net (sigmoid outputs, unstratified split).
    classes : numpy.ndarray
        The class labels (their number sizes the iterators; resamplers see them).
    user_callbacks, extra_callbacks : list or None
        The estimator's ``callbacks`` and those its subclass adds (fine-tuning).
    net_params : dict or None
        skorch parameters that override the defaults (learning-rate groups).
    accelerator : accelerate.Accelerator or None
        Train through skorch's Accelerate integration.
    """
    train_split = None
    multilabel = np.ndim(y_encoded) == 2
    if settings["validation_fraction"]:  # multi-label: a plain shuffled split (no stratification of label sets)
        stratified = not multilabel and bool(np.bincount(y_encoded).min() >= 2)
        train_split = ValidSplit(settings["validation_fraction"], stratified=stratified, random_state=seed)
    if settings["resampler"] is not None:
        train_split = ResampledSplit(settings["resampler"], train_split, seed, classes=classes)
    callbacks = _callbacks(settings, user_callbacks or [], extra_callbacks or [],
                           main_process=getattr(accelerator, "is_main_process", True))
    optimizer_params = {f"optimizer__{k}": v for k, v in settings["optimizer_params"].items()}
    # in-memory arrays live on the training device (a card: copied once, batches cut and augmented there);
    # under Accelerate, which places every batch itself, they stay where they are
    resident_on = settings["device"] if accelerator is None else None
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
        predict_nonlinearity=label_probabilities if multilabel else class_probabilities,
        multilabel=multilabel,
        iterator_train=BatchIterator,
        iterator_train__shuffle=True,
        iterator_train__generator=torch.Generator().manual_seed(seed),
        iterator_train__augment=settings["augment"] if settings["augment"].items else None,
        iterator_train__sampler=settings["sampler"],
        iterator_train__num_classes=len(classes),
        iterator_train__num_workers=settings["num_workers"],
        iterator_valid=BatchIterator,
        iterator_valid__num_workers=settings["num_workers"],
        iterator_train__device=resident_on,
        iterator_valid__device=resident_on,
        adversarial=settings["adversarial"],
        verbose=settings["verbose"],
        **optimizer_params,
    )
    params.update(net_params or {})
    if "accuracy" in settings["scoring"]:  # one accuracy column: the user's valid_accuracy, not also skorch's valid_acc
        params["callbacks__valid_acc"] = None
    if accelerator is None:
        if settings["verbose"] >= 1 and not _is_terminal(sys.stdout):  # colour only on a terminal
            params["callbacks__print_log__sink"] = print_plain  # (skorch calls a custom sink even when quiet)
        return ImageNeuralNet(**params)
    from .accelerated import accelerated_net_class

    processes = getattr(accelerator, "num_processes", 1)
    params.update(device=None, accelerator=accelerator)
    if settings["verbose"] == 0:  # AccelerateMixin routes the epoch table to accelerator.print (main process)
        params["callbacks__print_log__sink"] = silent
    elif not _is_terminal(sys.stdout):  # colour only on a terminal, still from the main process only
        params["callbacks__print_log__sink"] = functools.partial(_print_plain_on_main, accelerator)
    if processes > 1:
        # Our BatchIterator slices in-memory tensors and is not a DataLoader, so accelerator.prepare (which
        # skorch's AccelerateMixin calls on it) passes it through unsharded; it deals its batches out itself
        # with Accelerate's BatchSamplerShard (iterators.shard_batches), the sharding prepare() would apply.
        # The validation split is the same on every process (seeded) and is scored once in total: each
        # process predicts its share, AcceleratedImageNeuralNet gathers the predictions (accelerated.py).
        shard = (accelerator.process_index, processes)
        params.update(iterator_train__shard=shard, iterator_valid__shard=shard)
    return accelerated_net_class()(**params)


def inference_net(module: nn.Module, n_classes: int, device: str, history: list | None = None,
                  multilabel: bool = False) -> ImageNeuralNet:
    """An initialised net around a trained ``module`` (in eval mode), e.g. one rebuilt from a model file.

    Parameters
    ----------
    module : torch.nn.Module
        The trained network.
    n_classes : int
        Number of classes (outputs of ``module``).
    device : str
        Where the net computes.
    history : list or None
        The training log to restore as ``net.history``.
    multilabel : bool
        The module has one logit per label (sigmoid outputs, binary cross-entropy for further training).
    """
    net = ImageNeuralNet(module=module, criterion=nn.BCEWithLogitsLoss if multilabel else nn.CrossEntropyLoss,
                         device=str(device), classes=list(range(n_classes)), multilabel=multilabel,
                         predict_nonlinearity=label_probabilities if multilabel else class_probabilities,
                         train_split=None)
    net.initialize()
    net.module_.eval()
    net.history = History(history or [])
    return net

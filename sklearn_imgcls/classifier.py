"""The estimator-facing classifier class: what a fitted model can be turned into.

:class:`ImageClassifier` adds to the training and prediction machinery of
:class:`~sklearn_imgcls._core.base.BaseImageClassifier` the methods that hand
a model to the public modules: :meth:`~ImageClassifier.save`
(:mod:`sklearn_imgcls.persistence`), :meth:`~ImageClassifier.save_weights`,
:meth:`~ImageClassifier.to_onnx` (:mod:`sklearn_imgcls.onnx_export`) and
:meth:`~ImageClassifier.lr_find` (:mod:`sklearn_imgcls.lr_finder`).
:class:`~sklearn_imgcls.CNNClassifier` and
:class:`~sklearn_imgcls.TransferClassifier` derive from it. It lives at the
top level so that ``_core`` never imports the public modules.
"""

from __future__ import annotations

import copy
import html
import os
from typing import Any

import torch
from sklearn.utils.validation import check_is_fitted

from ._core import params as P
from ._core.base import BaseImageClassifier
from ._core.preset_data import RESOLVED_PARAMS
from ._core.data import naming_invalid_files
from ._core.threads import torch_threads
from ._core.weights import save_weights
from .lr_finder import LRFinderResult, run_lr_range_test
from .onnx_export import export_onnx
from .persistence import save

__all__ = ["ImageClassifier"]


class ImageClassifier(BaseImageClassifier):
    """Shared base of the public image classifiers; not used directly.

    Subclasses define ``__init__`` and how the network is built (see
    :class:`~sklearn_imgcls._core.base.BaseImageClassifier`).
    """

    def save(self, path: str | os.PathLike) -> str:
        """Save the fitted model as safetensors + JSON (no pickle); see :func:`sklearn_imgcls.persistence.save`.

        Trained with ``accelerator=``, the file stores ``accelerator=None`` (an
        accelerator is this run's live object), and under several processes
        (``accelerate launch``) only the main process writes: the others,
        which hold the same weights, return ``path`` at once. Call it on
        every process or on the main one only; a process that reads the file
        afterwards waits for it with ``accelerator.wait_for_everyone()``.

        Returns
        -------
        str
            ``path``.
        """
        accelerator = getattr(self, "accelerator", None)
        if accelerator is None:
            return save(self, path)
        if not getattr(accelerator, "is_main_process", True):
            return os.fspath(path)
        plain = copy.copy(self)  # shares the fitted state; only this copy forgets the accelerator
        plain.accelerator = None
        return save(plain, path)

    def save_weights(self, path: str | os.PathLike) -> None:
        """Save the fitted network (weights and input normalisation) for transfer.

        ``TransferClassifier(backbone=<same backbone>, weights=path)`` and
        ``BackboneFeatures(<same backbone>, weights=path)`` load it. A path
        ending in ``.safetensors`` writes safetensors, else ``torch.save``.
        """
        check_is_fitted(self)
        save_weights(self.net_.module_, os.fspath(path))

    def to_onnx(self, path: str) -> str:
        """Export the fitted network (with softmax; multi-label: a sigmoid per label) to ONNX; see :func:`sklearn_imgcls.onnx_export.export_onnx`.

        Returns
        -------
        str
            ``path``.
        """
        return export_onnx(self, path)

    def lr_find(self, X: Any, y: Any, start_lr: float = 1e-7, end_lr: float = 10.0,
                num_steps: int = 100) -> LRFinderResult:
        """Learning-rate range test on a throw-away copy of the network.

        The rate rises exponentially from ``start_lr`` to ``end_lr`` over
        ``num_steps`` batches; the estimator itself is not changed. Set
        ``lr`` to the result's ``suggested_lr`` (see
        :func:`sklearn_imgcls.lr_finder.plot_lr_find` for the curve).

        Returns
        -------
        sklearn_imgcls.lr_finder.LRFinderResult
        """
        if not 0 < start_lr < end_lr:
            raise ValueError(f"need 0 < start_lr < end_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}.")
        P.check_int("num_steps", num_steps, minimum=2)
        with torch_threads(getattr(self, "num_threads", None)), \
                self._training_session(X, y, validation_fraction=None, lr_schedule="constant") as (net, data, _, y_encoded, _weights):
            net.initialize()
            with naming_invalid_files(data):
                return run_lr_range_test(net, data.dataset(torch.as_tensor(y_encoded)), start_lr, end_lr, num_steps)

    # -- what was trained, shown where the estimator is shown ----------------
    def trained_with(self) -> dict[str, Any]:
        """The values ``fit`` chose for parameters left unset (the preset's choices), or {} before fit.

        ``CNNClassifier(preset="fast").fit(X, y).trained_with()`` gives
        ``{"backbone": "simple_cnn", "max_epochs": 10, ...}``; a parameter the
        user set is not listed (its fitted attribute, e.g. ``lr_``, equals it).
        """
        chosen = {}
        for name in RESOLVED_PARAMS:
            if not hasattr(self, f"{name}_"):
                return {}  # not fitted (or loaded from a file of an older version: load() fills these)
            value, fitted = getattr(self, name, None), getattr(self, f"{name}_")
            unset = value == "auto" if name == "augment" else value is None
            if unset and fitted not in (None, {}, [], ()):
                chosen[name] = fitted
        return chosen

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        """scikit-learn's repr; once fitted, followed by a comment naming what the preset chose.

        ``CNNClassifier(max_epochs=1)  # trained with backbone='bn_cnn', ...``:
        the comment keeps the text valid Python (``eval`` ignores it).
        """
        text = super().__repr__(N_CHAR_MAX=N_CHAR_MAX)
        chosen = self.trained_with()
        if not chosen:
            return text
        return f"{text}  # trained with {', '.join(f'{k}={v!r}' for k, v in chosen.items())}"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        """IPython's rich display: scikit-learn's diagram, with a line naming what the preset chose."""
        bundle = super()._repr_mimebundle_(**kwargs)
        chosen = self.trained_with()
        if chosen and "text/html" in bundle:
            line = ", ".join(f"{k}={html.escape(repr(v))}" for k, v in chosen.items())
            caption = f'<div class="sklearn-imgcls-trained"><small>trained with {line}</small></div>'
            page = bundle["text/html"]
            end = page.rfind("</body>")
            bundle["text/html"] = page[:end] + caption + page[end:] if end >= 0 else page + caption
        return bundle

"""Export a fitted classifier to ONNX, so it runs without Python, torch or this package.

The exported graph takes ``images``: float32 ``(N, C, H, W)`` in the units the
model was fitted in (uint8 training images become ``pixels / 255``) at the
fitted size, and returns ``probabilities`` ``(N, n_classes)`` whose columns
follow the estimator's ``classes_`` (softmax; for a multi-label model each
label's sigmoid, and ``metadata_props["multilabel"]`` is ``"true"``) (also stored as JSON in the model's
``metadata_props["classes"]``). Needs ``pip install 'sklearn-imgcls[onnx]'``.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from typing import Any

import torch
from sklearn.utils.validation import check_is_fitted

from ._core.multilabel import label_probabilities
from ._core.net import class_probabilities
from ._core.network import float32_compute

__all__ = ["export_onnx"]


class _Probabilities(torch.nn.Module):
    def __init__(self, network: torch.nn.Module, multilabel: bool = False) -> None:
        super().__init__()
        self.network = network
        self.multilabel = multilabel

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # noqa: D102
        logits = self.network(images)
        return label_probabilities(logits) if self.multilabel else class_probabilities(logits)


def export_onnx(estimator: Any, path: str) -> str:
    """Write ``estimator``'s network, with softmax (multi-label: sigmoid), as an ONNX model at ``path``; returns ``path``.

    The file is self-contained (weights inline, no ``.data`` side file) and
    written atomically: on failure ``path`` is unchanged and nothing is left
    beside it.

    Parameters
    ----------
    estimator : CNNClassifier or TransferClassifier
        A fitted classifier.
    path : str
        Output file, conventionally ``*.onnx``.

    Raises
    ------
    OSError
        When ``path`` cannot be written, naming ``path``.
    """
    from ._core.atomic import atomic_path

    check_is_fitted(estimator)
    try:
        import onnx
        import onnxscript  # noqa: F401 - torch's exporter needs it
    except ImportError:
        raise ImportError("ONNX export needs onnx and onnxscript: pip install 'sklearn-imgcls[onnx]'.") from None
    if getattr(estimator, "tta", None):
        warnings.warn("tta is not part of the exported graph: the ONNX model predicts the plain image only.", stacklevel=2)
    network = estimator.net_.module_
    was_training = network.training
    network.eval()
    example = torch.rand(2, *estimator.image_shape_)
    try:  # float32: ONNX Runtime's CPU kernels have no bfloat16 convolutions
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), float32_compute(network):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(  # f=None: the graph stays in memory, weights inline
                _Probabilities(network, bool(getattr(estimator, "multilabel_", False))), (example,), None, input_names=["images"], output_names=["probabilities"],
                dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False,
            )
    finally:
        network.train(was_training)
    model = program.model_proto
    classes = [c.item() if hasattr(c, "item") else c for c in estimator.classes_]
    for key, value in (("classes", json.dumps(classes)), ("image_shape", json.dumps(list(estimator.image_shape_))),
                       ("producer", f"sklearn-imgcls {type(estimator).__name__}({estimator.backbone_})"),
                       *((("multilabel", "true"),) if getattr(estimator, "multilabel_", False) else ())):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_path(path) as temporary:
        onnx.save_model(model, temporary)
    return path

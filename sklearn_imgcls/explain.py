"""Explanations: where in an image the fitted network looks (Grad-CAM, occlusion).

Both return one map per image, in ``[0, 1]``, at the input's resolution
(``estimator.image_shape_``), for the predicted class or a given ``target``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._core.data import as_image_data
from ._core.introspection import trained_backbone
from ._core.layers import declared_layer, resolve_layer
from ._core.network import float32_compute, module_device, to_float_images
from .plugin.registry import get_registry

__all__ = ["find_target_layer", "grad_cam", "occlusion_sensitivity"]


def find_target_layer(estimator: Any, layer: str | None = None) -> tuple[str, nn.Module]:
    """Return ``(name, module)`` of the layer Grad-CAM should read.

    ``layer`` (a dotted name inside the backbone) wins; else the layer the
    backbone's spec declares as ``target_layer`` (names as described in
    :mod:`sklearn_imgcls._core.layers`: negative indices, wrappers). A spec
    that declares none gets the documented fallback, the first activation
    after the backbone's last ``Conv2d`` (or that convolution), with an
    :class:`~sklearn_imgcls._core.layers.UndeclaredLayerWarning`.
    """
    backbone = estimator.net_.module_.backbone
    if layer is None:
        name = trained_backbone(estimator)
        spec = get_registry().specs("backbone").get(name)
        try:
            layer = declared_layer(spec, backbone, "target_layer", backbone=name)
        except ValueError as exc:
            raise ValueError(f"{exc} Or pass layer='<dotted name>' to grad_cam.") from None
    resolved = resolve_layer(backbone, layer)
    if resolved is None:
        names = [n for n, _ in backbone.named_modules() if n][:20]
        raise ValueError(f"The backbone has no layer {layer!r}; some of its layers: {', '.join(names)}, ...")
    return resolved, backbone.get_submodule(resolved)


def _as_spatial(activation: torch.Tensor) -> torch.Tensor:
    """(N, K, h, w) as is; ViT tokens (N, T, D) to (N, D, s, s), class token dropped."""
    if activation.ndim == 4:
        return activation
    if activation.ndim == 3:
        tokens = activation[:, 1:] if math.isqrt(activation.shape[1] - 1) ** 2 == activation.shape[1] - 1 else activation
        side = math.isqrt(tokens.shape[1])
        if side * side == tokens.shape[1]:
            return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], side, side)
    raise ValueError(
        f"The target layer gives activations of shape {tuple(activation.shape)}, not a spatial map; "
        f"pass layer= naming a convolutional layer."
    )


def _normalise(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    maps = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    flat = maps.flatten(1)
    low = flat.min(dim=1).values[:, None, None]
    high = flat.max(dim=1).values[:, None, None]
    span = (high - low).clamp_min(1e-12)
    scaled = ((maps - low) / span).clamp(0, 1)
    # a constant positive map (e.g. one ViT patch) says "all of it": ones, not zeros
    scaled = torch.where((high - low <= 1e-12) & (high > 0), torch.ones_like(scaled), scaled)
    return scaled.detach().cpu().numpy()


def _targets(estimator: Any, target: Any, logits: torch.Tensor) -> torch.Tensor:
    if target is None:
        return logits.argmax(dim=1)
    classes = estimator.classes_.tolist()  # plain values: messages show 'cat', not np.str_('cat')
    labels = np.broadcast_to(np.asarray(target, dtype=object), (len(logits),))
    missing = [t for t in set(labels.tolist()) if t not in classes]
    if missing:
        raise ValueError(f"target {missing[0]!r} is not one of the classes {classes}.")
    return torch.as_tensor([classes.index(t) for t in labels], device=logits.device)


def grad_cam(estimator: Any, X: Any, target: Any = None, layer: str | None = None, batch_size: int = 64) -> np.ndarray:
    """Grad-CAM maps (Selvaraju et al., 2017) for a fitted classifier of ours.

    Parameters
    ----------
    estimator : fitted CNNClassifier or TransferClassifier
    X : images in any accepted input format
    target : label, array of labels, or None
        Class to explain per image; None explains the predicted class. For a
        multi-label model (``multilabel_``) a label name of ``classes_``: the
        map explains that label's own logit, so each label of one image has
        its map; None explains the label with the highest probability.
    layer : str or None
        Dotted layer name inside the backbone; None picks it (see
        :func:`find_target_layer`).
    batch_size : int
        Images per forward/backward pass.

    Returns
    -------
    numpy.ndarray of shape (n_samples, H, W)
        Maps scaled to ``[0, 1]`` per image, at the input resolution.
    """
    check_is_fitted(estimator)
    data = as_image_data(X, fitted_shape=estimator.image_shape_, estimator_name=type(estimator).__name__)
    module = estimator.net_.module_
    device = module_device(module)
    _, target_module = find_target_layer(estimator, layer)
    captured: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        output = output[0] if isinstance(output, tuple) else output
        output.retain_grad()
        captured["activation"] = output

    handle = target_module.register_forward_hook(keep)
    was_training = module.training
    module.eval()
    maps = []
    try:
        targets = np.asarray(target, dtype=object) if target is not None and np.ndim(target) else target
        start = 0
        for batch in data.batches(batch_size):
            with torch.enable_grad(), float32_compute(module):  # exact float32 activations and gradients
                logits = module(batch.to(device))
                batch_target = targets[start : start + len(batch)] if isinstance(targets, np.ndarray) else targets
                chosen = _targets(estimator, batch_target, logits)
                module.zero_grad(set_to_none=True)
                logits.gather(1, chosen[:, None]).sum().backward()
            activation = _as_spatial(captured["activation"])
            gradient = _as_spatial(captured["activation"].grad)
            weights = gradient.mean(dim=(2, 3), keepdim=True)
            maps.append(_normalise(F.relu((weights * activation).sum(dim=1)).detach(), data.image_shape[1:]))
            start += len(batch)
    finally:
        handle.remove()
        module.zero_grad(set_to_none=True)
        module.train(was_training)
    return np.concatenate(maps)


def occlusion_sensitivity(
    estimator: Any, X: Any, target: Any = None, patch: int | None = None, stride: int | None = None
) -> np.ndarray:
    """Drop in the target's probability when a square patch is blanked out.

    Model-agnostic (no gradients): each position of a ``patch`` x ``patch``
    square (filled with the image's mean), moved by ``stride``, is scored.

    Parameters
    ----------
    estimator : fitted classifier of ours
    X : images in any accepted input format
    target : label, array of labels, or None (the predicted class)
    patch, stride : int or None
        Defaults: a quarter and an eighth of the smaller image side.

    Returns
    -------
    numpy.ndarray of shape (n_samples, H, W)
        Maps scaled to ``[0, 1]`` per image.
    """
    check_is_fitted(estimator)
    data = as_image_data(X, fitted_shape=estimator.image_shape_, estimator_name=type(estimator).__name__)
    _, height, width = data.image_shape
    patch = patch or max(1, min(height, width) // 4)
    stride = stride or max(1, patch // 2)
    classes = estimator.classes_.tolist()  # plain values: messages show 'cat', not np.str_('cat')
    maps = []
    images = torch.cat([to_float_images(batch) for batch in data.batches(256)])  # batches may differ in dtype
    base = estimator.predict_proba(images.numpy())
    labels = base.argmax(1) if target is None else [classes.index(t) for t in np.broadcast_to(np.asarray(target, dtype=object), (len(images),))]
    positions = [(r, c) for r in range(0, max(1, height - patch + 1), stride) for c in range(0, max(1, width - patch + 1), stride)]
    for image, label, p0 in zip(images, labels, base[np.arange(len(images)), labels]):
        occluded = image.repeat(len(positions), 1, 1, 1)
        for i, (r, c) in enumerate(positions):
            occluded[i, :, r : r + patch, c : c + patch] = image.mean()
        drops = p0 - estimator.predict_proba(occluded.numpy())[:, label]
        heat = torch.zeros(height, width)
        count = torch.zeros(height, width)
        for drop, (r, c) in zip(drops, positions):
            heat[r : r + patch, c : c + patch] += float(drop)
            count[r : r + patch, c : c + patch] += 1
        maps.append((heat / count.clamp_min(1)).clamp_min(0))
    return _normalise(torch.stack(maps), (height, width))

"""The Grad-CAM heat map drawn over what the model sees, as a base64 PNG for a web page."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from ..explain import grad_cam

__all__ = ["DISPLAY_SIZE", "cam_overlay", "heat_colours"]

#: longest side of the overlay picture, in pixels
DISPLAY_SIZE = 256

# a "jet"-like ramp: dark blue, blue, cyan, yellow, red
_STOPS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_RAMP = np.array([[0, 0, 128], [0, 64, 255], [0, 224, 255], [255, 224, 0], [224, 0, 0]], dtype=np.float64)


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """Map values in ``[0, 1]`` of shape ``(H, W)`` to ``(H, W, 3)`` RGB floats in ``[0, 255]``."""
    heat = np.clip(heat, 0.0, 1.0)
    return np.stack([np.interp(heat, _STOPS, _RAMP[:, c]) for c in range(3)], axis=-1)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """A ``(C, H, W)`` model input (uint8, or float in ``[0, 1]``) as ``(H, W, 3)`` floats in ``[0, 255]``."""
    values = image.astype(np.float64) * (1.0 if image.dtype == np.uint8 else 255.0)
    values = np.clip(values, 0, 255)
    return np.repeat(values[0][..., None], 3, axis=-1) if values.shape[0] == 1 else values[:3].transpose(1, 2, 0)


def cam_overlay(estimator: Any, image: np.ndarray, alpha: float = 0.45) -> dict[str, Any]:
    """Grad-CAM for the predicted class of one image, blended over the image as the model sees it.

    Parameters
    ----------
    estimator : fitted classifier of ours
    image : numpy.ndarray of shape (C, H, W)
        The decoded model input.
    alpha : float
        Weight of the heat map in the blend.

    Returns
    -------
    dict
        ``{"png_base64": str, "width": int, "height": int}``; the picture is
        scaled up (nearest neighbour) so its longest side is about
        :data:`DISPLAY_SIZE`.
    """
    from PIL import Image

    heat = grad_cam(estimator, image[None])[0]
    height, width = heat.shape
    scale = max(1, DISPLAY_SIZE // max(height, width))
    size = (width * scale, height * scale)
    base = Image.fromarray(np.uint8(np.round(_as_rgb(image)))).resize(size, Image.NEAREST)
    smooth = np.asarray(Image.fromarray(heat.astype(np.float32)).resize(size, Image.BILINEAR))
    blended = (1 - alpha) * np.asarray(base, dtype=np.float64) + alpha * heat_colours(smooth)
    buffer = io.BytesIO()
    Image.fromarray(np.uint8(np.clip(np.round(blended), 0, 255))).save(buffer, format="PNG")
    return {"png_base64": base64.b64encode(buffer.getvalue()).decode("ascii"), "width": size[0], "height": size[1]}

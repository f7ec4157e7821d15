"""Uploaded images, read safely: a bound on the request body, on the pixels, and on the formats.

An upload is decoded exactly as the package decodes an image file
(:func:`sklearn_imgcls._core.images.read_image`: EXIF orientation, the model's
channels, bilinear resize, 16-bit images as float), so a served prediction
equals ``clf.predict_proba([path])`` for the same file. Before that, the header
alone is read: formats outside :data:`ALLOWED_FORMATS` (EPS, PDF and others
whose decoding runs external programs) and images declaring more pixels than
the server allows are refused without being decoded.
"""

from __future__ import annotations

import io
import json
from typing import Any, Awaitable, Callable

import numpy as np

from .._core.images import MAX_PIXELS_ENV, max_pixels, read_image

__all__ = ["ALLOWED_FORMATS", "BodyLimitMiddleware", "UploadRefused", "check_pixel_limit", "decode_upload"]

#: Pillow formats a server decodes; others (EPS, PDF, ...) are refused before decoding
ALLOWED_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP", "TIFF", "WEBP", "PPM")


class UploadRefused(ValueError):
    """An upload the server answers with an HTTP error: ``status`` (400 or 413) and a one-line message."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def check_pixel_limit(limit: int) -> int:
    """``limit`` as a positive int no larger than the package's own decoding limit.

    Raises
    ------
    ValueError
        When ``limit`` is not a positive whole number or exceeds
        :func:`~sklearn_imgcls._core.images.max_pixels`.
    """
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"max_pixels must be a positive whole number of pixels, got {limit!r}.")
    ceiling = max_pixels()
    if limit > ceiling:
        raise ValueError(f"max_pixels={limit:,} is above the package's decoding limit of {ceiling:,}; raise that "
                         f"first with the environment variable {MAX_PIXELS_ENV}.")
    return int(limit)


def _header(data: bytes, name: str) -> tuple[str, int, int]:
    """``(format, width, height)`` read from the header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format or "?", image.width, image.height
    except Image.DecompressionBombError:
        raise UploadRefused(413, f"{name!r} declares too many pixels (a possible decompression bomb).") from None
    except UnidentifiedImageError:
        raise UploadRefused(400, f"{name!r} is not an image (Pillow does not recognise its content); upload "
                                 f"PNG, JPEG, GIF, BMP, TIFF, WebP or PPM files.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadRefused(400, f"{name!r} cannot be read as an image: {' '.join(str(exc).split())}.") from None


def _damage(data: bytes) -> str:
    """Why a full decode of ``data`` fails, in Pillow's words (read again to recover the reason)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as exc:  # noqa: BLE001 - any decoder error is the file's
        return " ".join(str(exc).split()) or type(exc).__name__
    return "it cannot be converted to the model's input"


def decode_upload(data: bytes, name: str, image_shape: tuple[int, int, int], pixel_limit: int) -> np.ndarray:
    """Decode one uploaded file into the model's ``(C, H, W)`` input.

    Parameters
    ----------
    data : bytes
        The file's content.
    name : str
        The uploaded file name, used in messages.
    image_shape : tuple of int
        The model's ``image_shape_``.
    pixel_limit : int
        The largest ``width * height`` accepted.

    Returns
    -------
    numpy.ndarray
        ``uint8`` for 8-bit images, ``float32`` in ``[0, 1]`` for deeper ones.

    Raises
    ------
    UploadRefused
        400 for an empty file, a non-image, a refused format or a damaged
        image; 413 for an image above ``pixel_limit``.
    """
    if not data:
        raise UploadRefused(400, f"{name!r} is empty.")
    kind, width, height = _header(data, name)
    if kind not in ALLOWED_FORMATS:
        raise UploadRefused(400, f"{name!r} is in the {kind} format; the server decodes only {', '.join(ALLOWED_FORMATS)}.")
    if width * height > pixel_limit:
        raise UploadRefused(413, f"{name!r} declares {width}x{height} = {width * height:,} pixels, above this "
                                 f"server's limit of {pixel_limit:,} (--max-pixels); shrink the image.")
    try:
        return read_image(io.BytesIO(data), tuple(image_shape))
    except (OSError, SyntaxError, ValueError, TypeError):
        raise UploadRefused(400, f"{name!r} cannot be decoded: {_damage(data)}.") from None


Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """ASGI middleware answering 413 (JSON ``{"detail": ...}``) to a request body over ``max_bytes``.

    A declared ``Content-Length`` above the limit is refused before the body
    is handed to the application; a body without one (chunked) is counted as
    it arrives and refused when it crosses the limit, whatever the
    application made of it. Before answering, up to ``max_bytes`` more bytes
    of the body are read and dropped (never kept), so that a client that
    sends its whole body before reading the answer (urllib, requests) gets the
    413 rather than a broken pipe; a larger body is cut off.
    """

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            if headers.get(b"expect", b"").lower() != b"100-continue":  # else the client waits: send nothing more
                await self.drain(receive, more=True)
            await self.refuse(send, int(declared))
            return
        state = {"seen": 0, "exceeded": False, "started": False, "more": True}

        async def counted() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                state["more"] = message.get("more_body", False)
                if state["seen"] > self.max_bytes:
                    state["exceeded"] = True
                    raise _BodyTooLarge
            return message

        async def guarded(message: dict) -> None:
            if state["exceeded"]:
                return  # whatever the application made of the cut body is replaced by the 413
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _BodyTooLarge:
            pass
        if state["exceeded"] and not state["started"]:
            await self.drain(receive, more=state["more"])
            await self.refuse(send, state["seen"])

    async def drain(self, receive: Receive, more: bool) -> None:
        """Read and drop the rest of the body, up to ``max_bytes`` bytes."""
        dropped = 0
        while more and dropped <= self.max_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return
            dropped += len(message.get("body", b""))
            more = message.get("more_body", False)

    async def refuse(self, send: Send, size: int) -> None:
        """Send the 413 answer for a body of at least ``size`` bytes."""
        body = json.dumps({"detail": f"The upload is at least {size:,} bytes, above this server's limit of "
                                     f"{self.max_bytes:,} bytes (--max-upload-mb); send fewer or smaller images."})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body.encode()})

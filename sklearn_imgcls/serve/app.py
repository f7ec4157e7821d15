"""The HTTP API of a fitted classifier (FastAPI): /predict, /health, /info and the page at /.

``POST /predict`` takes one or many images as ``multipart/form-data`` (any
field name; ``files`` by convention) and answers, per image, its file name,
its top-k classes with probabilities and the predicted label (a multi-label
model: every label at or above its ``threshold``). ``?cam=true`` with a
single image adds the Grad-CAM overlay as a base64 PNG. Concurrent requests
are predicted together (:mod:`sklearn_imgcls.serve.batching`); uploads are
bounded and decoded as the package decodes files
(:mod:`sklearn_imgcls.serve.uploads`).
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoints' annotations as objects, and
# Request/Query are imported inside create_app (FastAPI is an optional extra)
import time
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import numpy as np

from .. import __version__
from .._core.images import stack_images
from .batching import Batcher
from .overlay import cam_overlay
from .results import describe_model, format_predictions
from .settings import DEFAULTS, check_installed
from .uploads import BodyLimitMiddleware, UploadRefused, check_pixel_limit, decode_upload

__all__ = ["create_app"]

#: the page's Content-Security-Policy: it can reach nothing but this server
PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
               "connect-src 'self'; base-uri 'none'; form-action 'none'")

_UPLOAD_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}


def _positive(name: str, value: Any, kind: type = int) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or value <= 0 \
            or (kind is int and int(value) != value):
        raise ValueError(f"{name} must be a positive {'whole ' if kind is int else ''}number, got {value!r}.")
    return kind(value)


def _check_model(estimator: Any) -> None:
    missing = [a for a in ("predict_proba", "classes_", "image_shape_") if not hasattr(estimator, a)]
    if missing:
        raise TypeError(f"serve needs a fitted classifier of sklearn_imgcls (with {', '.join(missing)}); got "
                        f"{type(estimator).__name__}. Fit it, or load it with sklearn_imgcls.persistence.load.")


def create_app(estimator: Any, *, top_k: int = DEFAULTS["top_k"], max_batch: int = DEFAULTS["max_batch"],
               max_wait_ms: float = DEFAULTS["max_wait_ms"], max_upload_bytes: int = DEFAULTS["max_upload_bytes"],
               max_pixels: int = DEFAULTS["max_pixels"], max_files: int = DEFAULTS["max_files"]) -> Any:
    """Build the ASGI application serving ``estimator``.

    Parameters
    ----------
    estimator : fitted CNNClassifier or TransferClassifier
        Kept in memory once; only the model thread uses it.
    top_k : int
        Classes listed per image unless a request asks ``?top_k=``.
    max_batch : int
        Most images predicted in one ``predict_proba`` call.
    max_wait_ms : float
        How long the first request of a batch waits for others, in milliseconds.
    max_upload_bytes : int
        Largest request body; larger ones get 413.
    max_pixels : int
        Largest ``width * height`` of an uploaded image; larger ones get 413.
    max_files : int
        Most images in one request; more get 413.

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    ImportError
        When FastAPI is not installed (``pip install 'sklearn-imgcls[serve]'``).
    TypeError, ValueError
        For an unfitted model or a limit that is not a positive number.
    """
    check_installed()
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi.responses import HTMLResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile

    _check_model(estimator)
    top_k, max_batch, max_files = (_positive(n, v) for n, v in
                                   (("top_k", top_k), ("max_batch", max_batch), ("max_files", max_files)))
    max_upload_bytes = _positive("max_upload_bytes", max_upload_bytes)
    max_wait = _positive("max_wait_ms", max_wait_ms, float) / 1000.0
    pixel_limit = check_pixel_limit(max_pixels)
    shape = tuple(int(s) for s in estimator.image_shape_)
    multilabel = bool(getattr(estimator, "multilabel_", False))
    page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
    batcher = Batcher(lambda images: estimator.predict_proba(stack_images(images).numpy()), max_batch, max_wait)
    served = {"requests": 0, "started": time.time()}
    settings = {"top_k": top_k, "max_batch": max_batch, "max_wait_ms": max_wait * 1000, "max_files": max_files,
                "max_upload_bytes": max_upload_bytes, "max_pixels": pixel_limit}

    @asynccontextmanager
    async def lifespan(_app):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title=f"sklearn-imgcls: {type(estimator).__name__}", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # the docs pages load scripts from a CDN; /openapi.json stays
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_upload_bytes)
    app.state.estimator, app.state.batcher = estimator, batcher

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/health")
    async def health() -> dict:
        """Liveness, and the batching counters (``predict_calls``, ``images_predicted``, ``largest_batch``)."""
        return {"status": "ok", "requests": served["requests"], "uptime_s": round(time.time() - served["started"], 3),
                **batcher.stats()}

    @app.get("/info")
    async def info() -> dict:
        """The model (class, classes, image shape, backbone, training choices, version) and the limits."""
        return {**describe_model(estimator, __version__), "serving": settings}

    async def uploads_of(request: Request) -> list[tuple[str, bytes]]:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise HTTPException(400, "Send the images as multipart/form-data, e.g. curl -F files=@cat.png "
                                     f"{request.url}.")
        async with request.form(max_files=max_files + 1, max_fields=max_files + 16) as form:
            files = [(value.filename or f"upload-{i}", await value.read())
                     for i, (_, value) in enumerate(form.multi_items()) if isinstance(value, UploadFile)]
        if not files:
            raise HTTPException(400, "The request holds no file; send images as multipart/form-data fields "
                                     "named 'files'.")
        if len(files) > max_files:
            raise HTTPException(413, f"The request holds more than {max_files} images, this server's limit "
                                     f"(--max-files); split it into several requests.")
        return files

    def decode_all(files: list[tuple[str, bytes]]) -> list[np.ndarray]:
        return [decode_upload(data, name, shape, pixel_limit) for name, data in files]

    @app.post("/predict", openapi_extra=_UPLOAD_SCHEMA)
    async def predict(request: Request, top_k: int | None = Query(None, ge=1),
                      cam: bool = Query(False, description="add the Grad-CAM overlay (one image only)")) -> dict:
        """Top-k classes and probabilities for each uploaded image."""
        served["requests"] += 1
        files = await uploads_of(request)
        if cam and len(files) != 1:
            raise HTTPException(400, f"cam=true explains one image per request; this one holds {len(files)}.")
        try:
            images = await run_in_threadpool(decode_all, files)
        except UploadRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        proba = await batcher.submit(images)
        results = format_predictions(proba, [name for name, _ in files], estimator.classes_,
                                     top_k or settings["top_k"], multilabel, getattr(estimator, "threshold", 0.5))
        if cam:
            try:
                results[0]["cam"] = await batcher.run_alone(cam_overlay, estimator, images[0])
            except ValueError as exc:  # e.g. no layer to explain: the prediction still stands
                results[0]["cam_error"] = str(exc)
        return {"model": type(estimator).__name__, "predictions": results}

    return app

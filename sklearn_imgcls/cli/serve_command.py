"""``sklearn-imgcls serve MODEL``: the HTTP API and web page of a saved model (see :mod:`sklearn_imgcls.serve`)."""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from . import options as O
from .inputs import load_model, warn

__all__ = ["add_serve_parser", "serve_command"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_serve_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subparser to ``sub`` (the result of ``add_subparsers``) and return it."""
    from ..serve.settings import DEFAULTS  # imports neither torch nor FastAPI

    serve = sub.add_parser("serve", help="serve a saved model over HTTP: JSON API and a web page",
                           description="Serve a saved model: POST /predict (multipart images -> top-k JSON), "
                                       "GET /health, GET /info, and a page at / to drop images on. Needs "
                                       "pip install 'sklearn-imgcls[serve]'.")
    O.add_model(serve)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this machine only; the API has no "
                            "authentication)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 lets the system choose)")
    serve.add_argument("--top-k", type=O.positive_int, default=DEFAULTS["top_k"], metavar="K",
                       help=f"classes listed per image (default: {DEFAULTS['top_k']}; a request may ask ?top_k=)")
    serve.add_argument("--max-batch", type=O.positive_int, default=DEFAULTS["max_batch"], metavar="N",
                       help=f"most images predicted together (default: {DEFAULTS['max_batch']})")
    serve.add_argument("--max-wait-ms", type=_positive_float, default=DEFAULTS["max_wait_ms"], metavar="MS",
                       help=f"how long a request waits for others to batch with (default: {DEFAULTS['max_wait_ms']:g})")
    serve.add_argument("--max-upload-mb", type=_positive_float, default=DEFAULTS["max_upload_bytes"] / 2**20,
                       metavar="MB", help="largest request body in MiB; larger ones get 413 (default: "
                                          f"{DEFAULTS['max_upload_bytes'] / 2**20:g})")
    serve.add_argument("--max-pixels", type=O.positive_int, default=DEFAULTS["max_pixels"], metavar="N",
                       help=f"largest width*height of an image; larger ones get 413 (default: {DEFAULTS['max_pixels']:,})")
    serve.add_argument("--max-files", type=O.positive_int, default=DEFAULTS["max_files"], metavar="N",
                       help=f"most images in one request (default: {DEFAULTS['max_files']})")
    O.add_threads(serve)
    O.add_allow_pickle(serve)
    serve.add_argument("--no-access-log", action="store_true", help="no log line per request")
    return serve


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_command(args: argparse.Namespace) -> int:
    """Load ``args.model`` safely (a pickle only with ``--allow-pickle``) and serve it until Ctrl-C.

    Returns
    -------
    int
        0 once the server stopped.
    """
    from ..serve.server import serve
    from ..serve.settings import check_installed

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535, got {args.port}.")
    check_installed()  # before the model is read
    _check_port_free(args.host, args.port)
    estimator = load_model(args.model, allow_pickle=args.allow_pickle)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    if not _is_loopback(args.host):
        warn(f"listening on {args.host}: anyone who reaches this port can use the model (there is no "
             f"authentication); put a reverse proxy with authentication in front of it.")
    serve(estimator, args.host, args.port, access_log=not args.no_access_log, top_k=args.top_k,
          max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_upload_bytes=int(args.max_upload_mb * 2**20),
          max_pixels=args.max_pixels, max_files=args.max_files)
    return 0


def _check_port_free(host: str, port: int) -> None:
    """Refuse, before the model is loaded, a port another program listens on (uvicorn would log and exit 3)."""
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"--host {host!r} is not an address of this machine ({exc.strerror}).") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as exc:
            raise ValueError(f"cannot listen on {host}:{port} ({exc.strerror}): another program uses the port; "
                             f"pick another with --port, or stop the other server.") from None


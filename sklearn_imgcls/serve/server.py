"""Running the API with uvicorn: in the foreground (the ``serve`` command) or in a background thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from .app import create_app
from .settings import check_installed

__all__ = ["RunningServer", "serve", "start_server"]


def _uvicorn() -> Any:
    check_installed()
    import uvicorn

    return uvicorn


@dataclass
class RunningServer:
    """A server started by :func:`start_server`.

    Attributes
    ----------
    url : str
        ``http://HOST:PORT`` (the port the system chose when asked for 0).
    app : fastapi.FastAPI
        The application.
    """

    url: str
    app: Any
    server: Any
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting requests, finish those under way, and wait for the thread."""
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> "RunningServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_server(estimator: Any, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 30.0,
                 **options: Any) -> RunningServer:
    """Serve ``estimator`` from a background thread; returns once it accepts connections.

    Parameters
    ----------
    estimator : fitted classifier of ours
    host : str
        Address to listen on (default: this machine only).
    port : int
        0 lets the system choose a free port (see ``RunningServer.url``).
    timeout : float
        Seconds to wait for the server to start.
    **options
        Passed to :func:`~sklearn_imgcls.serve.app.create_app` (``top_k``, ``max_batch``, ...).

    Returns
    -------
    RunningServer
        Use it as a context manager, or call ``stop()``.
    """
    uvicorn = _uvicorn()
    app = create_app(estimator, **options)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="sklearn-imgcls-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise OSError(f"The server did not start on {host}:{port} (is the port in use?).")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return RunningServer(url=f"http://{shown}:{bound}", app=app, server=server, thread=thread)


def serve(estimator: Any, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info",
          access_log: bool = True, **options: Any) -> None:
    """Serve ``estimator`` in the foreground until interrupted (Ctrl-C).

    Parameters
    ----------
    estimator : fitted classifier of ours
    host, port : str, int
        Where to listen; 0 for ``port`` lets the system choose (the log names it).
    log_level : str
        uvicorn's log level (at ``"info"`` it names the address it listens on).
    access_log : bool
        Log one line per request.
    **options
        Passed to :func:`~sklearn_imgcls.serve.app.create_app`.
    """
    uvicorn = _uvicorn()
    app = create_app(estimator, **options)
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=access_log,
                                  lifespan="on")).run()

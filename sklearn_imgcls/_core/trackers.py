"""Where a run is logged: the ``log=`` specs parsed, and the trackers opened (TensorBoard, MLflow).

A spec is ``"tensorboard"`` / ``"tensorboard:DIR"`` (a fresh subfolder of
``DIR`` per run, default ``runs``) or ``"mlflow"`` / ``"mlflow:URI"``
(``sqlite:///mlflow.db``, ``http://host:5000``, a folder or ``file:///abs``
for MLflow's file store), with ``#EXPERIMENT`` at the end to pick the MLflow
experiment (default ``sklearn-imgcls``). Both trackers are optional extras,
imported only when a spec names them.
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_EXPERIMENT", "LOG_FORMS", "LogTarget", "flat_params", "open_mlflow", "parse_log", "run_name",
           "start_mlflow_run", "tensorboard_writer"]

DEFAULT_EXPERIMENT = "sklearn-imgcls"
LOG_FORMS = ("'tensorboard' or 'tensorboard:DIR' (a new subfolder of DIR per run; default DIR: runs)",
             "'mlflow' or 'mlflow:URI' (URI: sqlite:///mlflow.db, http://host:5000, a folder or file:///abs; "
             "default: MLflow's own), optionally ending in '#EXPERIMENT' (default: sklearn-imgcls)")
_EXTRAS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}  # kind -> (module, extra)
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")  # a Windows folder (C:/runs), not a URI
_MAX_PARAM = 500  # characters of a logged parameter value


@dataclass(frozen=True)
class LogTarget:
    """One tracker to log to: ``kind`` ('tensorboard' or 'mlflow'), ``location`` (a folder or a tracking
    URI; None: the tracker's default) and the MLflow ``experiment``."""

    kind: str
    location: str | None
    experiment: str = DEFAULT_EXPERIMENT

    def describe(self) -> str:
        """The spec this target was read from (for messages)."""
        where = f":{self.location}" if self.location else ""
        return f"{self.kind}{where}" + (f"#{self.experiment}" if self.kind == "mlflow" else "")


def _bad(spec: Any) -> ValueError:
    return ValueError(f"log must be None, a spec or a list of specs; a spec is {LOG_FORMS[0]} or {LOG_FORMS[1]}. "
                      f"Got {spec!r}.")


def _require(kind: str) -> None:
    module, extra = _EXTRAS[kind]
    try:
        importlib.import_module(module)
    except ImportError:
        raise ImportError(f"log={kind!r} needs {module}, which is not installed: pip install 'sklearn-imgcls[{extra}]'.") from None


def _target(spec: Any) -> LogTarget:
    if not isinstance(spec, str):
        raise _bad(spec)
    kind, _, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind.startswith("mlflow#"):  # "mlflow#EXPERIMENT": MLflow's default store
        kind, rest = "mlflow", spec.strip()[len("mlflow"):]
    if kind == "tensorboard":
        folder = rest.strip() or "runs"
        if "#" in rest or "://" in folder:
            raise _bad(spec)  # a TensorBoard run is a local folder (no URI, no experiment)
        _require(kind)
        return LogTarget("tensorboard", os.path.abspath(os.path.expanduser(folder)))
    if kind == "mlflow":
        uri, _, experiment = rest.partition("#")
        uri, experiment = uri.strip(), experiment.strip() or DEFAULT_EXPERIMENT
        if uri and (not _URI_SCHEME.match(uri) or _DRIVE.match(uri)):
            uri = os.path.abspath(os.path.expanduser(uri))  # a folder: MLflow's file store
        _require(kind)
        return LogTarget("mlflow", uri or None, experiment)
    raise _bad(spec)


def parse_log(log: Any) -> list[LogTarget]:
    """The trackers a ``log`` value names (None: none; a spec; a list or tuple of specs).

    Raises
    ------
    ValueError
        A spec is not one of :data:`LOG_FORMS` (the message lists them).
    ImportError
        The tracker a spec names is not installed (the message names the pip extra).
    """
    if log is None:
        return []
    specs = [log] if isinstance(log, str) else log
    if not isinstance(specs, (list, tuple)):
        raise _bad(log)
    return [_target(spec) for spec in specs]


def run_name(prefix: str) -> str:
    """A run name no other run shares: ``PREFIX-YYYYmmdd-HHMMSS-xxxxxxxx`` (parallel fits included)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:8]}"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, str) or len(value) <= _MAX_PARAM else value[:_MAX_PARAM] + "..."
    text = json.dumps(value, default=lambda obj: type(obj).__name__, sort_keys=True)
    return text if len(text) <= _MAX_PARAM else text[:_MAX_PARAM] + "..."


def flat_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with each value a number, bool, str or None (others as JSON, objects by class name)."""
    return {str(key): _plain(value) for key, value in sorted(params.items())}


def tensorboard_writer(target: LogTarget, name: str) -> Any:
    """A ``torch.utils.tensorboard.SummaryWriter`` writing into the new folder ``<target.location>/<name>``."""
    from torch.utils.tensorboard import SummaryWriter

    folder = os.path.join(target.location, name)
    try:
        return SummaryWriter(log_dir=folder)
    except OSError as exc:
        raise OSError(exc.errno, f"log={target.describe()!r}: cannot create the TensorBoard folder {folder!r} "
                                 f"({exc.strerror}); pick a folder you can write to") from None


def check_server(uri: str, timeout: float = 5.0) -> None:
    """Fail fast when the MLflow tracking server at ``uri`` (http/https) does not answer its ``/health`` check.

    MLflow's own client retries with backoff for minutes (per call) before it
    gives up on a wrong address; one quick probe names the problem instead.

    Raises
    ------
    ValueError
        Naming the address, what went wrong and the fix.
    """
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answered: a server (or a proxy in front of it) is there; MLflow reports its own errors
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ValueError(f"the MLflow tracking server at {uri!r} does not answer ({reason}); start it "
                         f"(`mlflow server --port ...`) or fix the address, or log to a local store: "
                         f"'mlflow:sqlite:///mlflow.db'.") from None


def _lock(target: LogTarget) -> Any:
    """A file lock for a local store, so parallel fits (GridSearchCV) create the database and experiment once."""
    import contextlib

    from filelock import FileLock  # torch's dependency

    uri = target.location or ""
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
    elif uri.startswith("file://"):
        path = uri[len("file://"):].rstrip("/")
    elif uri and (not _URI_SCHEME.match(uri) or _DRIVE.match(uri)):
        path = uri.rstrip("/\\")
    else:
        return contextlib.nullcontext()  # a server serialises its own writes
    if not path or path == ":memory:":
        return contextlib.nullcontext()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return FileLock(os.path.abspath(path) + ".lock", timeout=120)


def _artifact_root(target: LogTarget, experiment: str) -> str | None:
    """For a SQLite store, artifacts go beside the database (MLflow's default is ./mlruns of the working folder)."""
    import pathlib

    uri = target.location or ""
    if not uri.startswith("sqlite:///"):
        return None
    folder = pathlib.Path(os.path.abspath(uri[len("sqlite:///"):])).parent / "mlartifacts"
    return (folder / re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment)).as_uri()


def open_mlflow(target: LogTarget) -> tuple[Any, str]:
    """An ``mlflow.MlflowClient`` for ``target`` and the id of its experiment (created when missing).

    Raises
    ------
    ValueError
        MLflow refuses the store (e.g. its file store, which MLflow 3 keeps
        behind ``MLFLOW_ALLOW_FILE_STORE=true``); the message says what to do.
    ImportError
        The store needs a package that is missing (SQLite: sqlalchemy, alembic).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if re.match(r"^https?://", target.location or "", re.I):
        check_server(target.location)
    try:
        with _lock(target):
            client = MlflowClient(tracking_uri=target.location)
            experiment = client.get_experiment_by_name(target.experiment)
            if experiment is not None:
                return client, experiment.experiment_id
            return client, client.create_experiment(target.experiment,
                                                    artifact_location=_artifact_root(target, target.experiment))
    except ModuleNotFoundError as exc:
        raise ImportError(f"log={target.describe()!r}: MLflow needs {exc.name} for this store: "
                          "pip install 'sklearn-imgcls[mlflow]'.") from None
    except MlflowException as exc:
        message = str(exc).split(". ")[0]
        hint = ("set MLFLOW_ALLOW_FILE_STORE=true to use MLflow's file store, or log to a SQLite store instead: "
                "log='mlflow:sqlite:///mlflow.db'" if "filesystem tracking backend" in str(exc)
                else "check the tracking URI (forms: " + LOG_FORMS[1] + ")")
        raise ValueError(f"log={target.describe()!r}: MLflow refused the store ({message}); {hint}.") from None


def start_mlflow_run(target: LogTarget, name: str, params: dict[str, Any], tags: dict[str, str]) -> tuple[Any, str]:
    """Create an MLflow run named ``name`` with ``params`` and ``tags``; returns ``(client, run_id)``."""
    from mlflow.entities import Param

    client, experiment_id = open_mlflow(target)
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    run_id = run.info.run_id
    values = [Param(key, str(value)) for key, value in flat_params(params).items()]
    for start in range(0, len(values), 100):  # MLflow takes at most 100 parameters per batch
        client.log_batch(run_id, params=values[start:start + 100])
    return client, run_id

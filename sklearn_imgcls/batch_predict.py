"""Batch prediction over any number of image files, streamed: memory stays flat, rows are written as they come.

:func:`predict_files` reads the file list lazily (:func:`iter_image_paths`:
files, folders, or CSV/parquet tables with a ``path`` column), predicts it in
chunks of ``chunk_size`` files and appends each chunk's rows to the output
straight away: CSV rows are flushed per chunk, parquet gets one row group per
chunk (pyarrow's ``ParquetWriter``). A file output is written under a
temporary name and moved into place when the run succeeds. With a Dask
``client`` the chunks run on the cluster's workers: the model goes to each
worker once (a fitted estimator is scattered with ``broadcast=True``; a model
*path* is loaded once per worker and kept in a small cache keyed by path and
modification time), a bounded window of chunks is in flight, and the results
come back and are written in the order of the files.

Example
-------
>>> from sklearn_imgcls.batch_predict import predict_files
>>> predict_files("model.safetensors", ["photos/"], "predictions.parquet")  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import os
import sys
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

__all__ = ["PredictionRun", "iter_image_paths", "output_format", "predict_files", "prediction_table"]

#: file-name endings of the outputs :func:`predict_files` writes
OUTPUT_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
_TABLE_ROWS = 50_000  # path-table rows read at a time


@dataclasses.dataclass
class PredictionRun:
    """What :func:`predict_files` did.

    Attributes
    ----------
    n_files : int
        Files listed.
    n_written : int
        Rows written (files predicted).
    invalid : list of (str, str)
        ``(path, reason)`` of the files that could not be decoded (left out).
    out : str or None
        The output file, or None for stdout / a stream.
    """

    n_files: int
    n_written: int
    invalid: list
    out: str | None


def output_format(out: Any) -> str:
    """The format of an output: ``"csv"`` (stdout, a stream, ``*.csv``) or ``"parquet"`` (``*.parquet``/``*.pq``).

    Raises
    ------
    ValueError
        Any other file name, a folder, or parquet without pyarrow (naming the extra to install).
    """
    if out is None or hasattr(out, "write"):
        return "csv"
    path = os.fspath(out)
    if os.path.isdir(path):
        raise ValueError(f"--out {path!r} is a folder; give a file name such as "
                         f"{os.path.join(path, 'predictions.csv')!r}.")
    kind = OUTPUT_SUFFIXES.get(os.path.splitext(path)[1].lower())
    if kind is None:
        raise ValueError(f"--out {path!r} must end in .csv or .parquet (.pq), e.g. 'predictions.csv'; leave it out "
                         f"to print CSV on stdout.")
    if kind == "parquet":
        try:
            import pyarrow  # noqa: F401
            import pyarrow.parquet  # noqa: F401 - ParquetWriter lives there
        except ImportError:
            raise ValueError(f"Writing parquet ({path!r}) needs pyarrow: pip install 'sklearn-imgcls[parquet]', or "
                             f"write a .csv file.") from None
    return kind


def iter_image_paths(items: Iterable[Any], path_column: str = "path") -> Iterator[str]:
    """Yield the image files named by ``items``, lazily.

    Parameters
    ----------
    items : iterable of str or os.PathLike
        Image files; folders (searched recursively, sorted, see
        :func:`~sklearn_imgcls.datasets.list_image_files`); or ``.csv`` /
        ``.parquet`` tables whose ``path_column`` lists files (relative paths
        are taken relative to the table's folder), read in slices of 50,000 rows.
    path_column : str
        The column of a path table.

    Yields
    ------
    str
    """
    from .datasets import list_image_files

    for item in items:
        item = os.fspath(item)
        if os.path.isdir(item):
            found = list_image_files(item)
            if not found:
                raise ValueError(f"No image files in folder {item!r}.")
            yield from found
        elif os.path.isfile(item) and item.lower().endswith(_TABLE_SUFFIXES):
            yield from _table_paths(item, path_column)
        elif os.path.isfile(item):
            yield item
        else:
            raise ValueError(f"No such image file or folder: {item!r}.")


def _table_paths(table: str, column: str) -> Iterator[str]:
    import pandas as pd

    base = os.path.dirname(os.path.abspath(table))
    if table.lower().endswith((".parquet", ".pq")):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError(f"Reading {table!r} needs pyarrow: pip install 'sklearn-imgcls[parquet]', or list the "
                             f"files in a .csv table.") from None
        names = pq.ParquetFile(table).schema_arrow.names
        slices = (batch.to_pandas() for batch in pq.ParquetFile(table).iter_batches(_TABLE_ROWS, columns=[column])) \
            if column in names else iter([pd.DataFrame(columns=names)])
    else:
        slices = pd.read_csv(table, chunksize=_TABLE_ROWS, dtype=str, keep_default_na=False)
    for frame in slices:
        if column not in frame.columns:
            raise ValueError(f"{table} has no {column!r} column; it has {list(frame.columns)}. Name the image files "
                             f"in a column called {column!r}.")
        for path in frame[column].astype(str):
            if not path:
                raise ValueError(f"{table} has an empty {column!r} entry; every row must name an image file.")
            yield path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def prediction_table(estimator: Any, paths: Sequence[str], probabilities: np.ndarray, proba: bool = False):
    """The rows for one chunk: ``path``, ``prediction`` and, with ``proba``, ``proba_<class>`` (6 decimals).

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    table = pd.DataFrame({"path": list(paths)})
    table["prediction"] = estimator.classes_[probabilities.argmax(axis=1)]
    if proba:
        for i, label in enumerate(estimator.classes_):
            table[f"proba_{label}"] = np.round(probabilities[:, i], 6)
    return table


@functools.lru_cache(maxsize=4)
def _cached_model(path: str, modified: int, size: int) -> Any:
    """A model file loaded once per process (and again only when the file changes)."""
    from .persistence import load

    return load(path)


def _load(model: Any) -> Any:
    if isinstance(model, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(model))
        if not os.path.isfile(path):
            raise ValueError(f"No model file at {path!r}.")
        stat = os.stat(path)
        return _cached_model(path, stat.st_mtime_ns, stat.st_size)
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        raise TypeError(f"model must be a fitted classifier or the path of a saved model, got {type(model).__name__}.")
    return model


def _predict_chunk(model: Any, paths: list[str]) -> tuple[list[str], np.ndarray, list]:
    """Probabilities of the decodable files of one chunk: ``(kept paths, probabilities, [(path, reason)])``."""
    from ._core.images import ImageReadError, InvalidImagesError, find_invalid_images

    estimator = _load(model)
    try:
        return paths, estimator.predict_proba(paths), []
    except (ImageReadError, InvalidImagesError):
        bad = find_invalid_images(paths)
        if not bad:
            raise
    skipped = {path for path, _ in bad}
    kept = [path for path in paths if path not in skipped]
    n_classes = len(estimator.classes_)
    return kept, (estimator.predict_proba(kept) if kept else np.zeros((0, n_classes))), bad


def _chunks(paths: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(paths)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class _Sink:
    """Appends tables to stdout, a stream, a CSV or a parquet file; each append reaches the file at once."""

    def __init__(self, target: Any, kind: str) -> None:
        self.target, self.kind, self.rows, self._writer = target, kind, 0, None

    def write(self, table) -> None:
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            batch = pa.Table.from_pandas(table, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.target, batch.schema)
            self._writer.write_table(batch.cast(self._writer.schema))  # one row group per chunk
        else:
            table.to_csv(self.target, index=False, header=self.rows == 0)
            self.target.flush()
        self.rows += len(table)

    def close(self, columns: Sequence[str]) -> None:
        if self.kind == "parquet" and self._writer is None:  # no rows: still a readable file with the columns
            import pandas as pd

            self.write(pd.DataFrame({name: pd.Series(dtype=object) for name in columns}))
        if self._writer is not None:
            self._writer.close()


def _results(model: Any, chunks: Iterator[list[str]], client: Any, in_flight: int | None):
    """``(kept paths, probabilities, invalid)`` per chunk, in order: here, or on ``client``'s workers."""
    if client is None:
        for chunk in chunks:
            yield _predict_chunk(model, chunk)
        return
    from .cluster import match_worker_threads

    match_worker_threads(client)
    if isinstance(model, (str, os.PathLike)):
        shared = os.path.abspath(os.fspath(model))  # each worker loads it once (cached by path and mtime)
    else:
        shared = client.scatter(model, broadcast=True)  # sent once, kept in every worker's memory
    window = in_flight or max(2, 2 * sum(client.nthreads().values()))
    pending: collections.deque = collections.deque()
    try:
        for chunk in chunks:
            pending.append(client.submit(_predict_chunk, shared, chunk, pure=False))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def predict_files(
    model: Any,
    paths: Iterable[Any],
    out: Any = None,
    *,
    chunk_size: int = 1024,
    proba: bool = False,
    rows: Callable[[Sequence[str], np.ndarray], Any] | None = None,
    client: Any = None,
    skip_invalid: bool = False,
    in_flight: int | None = None,
) -> PredictionRun:
    """Predict image files chunk by chunk and stream the table to ``out``.

    Parameters
    ----------
    model : estimator or str
        A fitted classifier, or the path of a model saved in the safe format
        (:func:`sklearn_imgcls.persistence.save`; pickles are never read here,
        load one yourself and pass the estimator).
    paths : iterable of str
        Image files, folders or path tables, expanded lazily by :func:`iter_image_paths`.
    out : str, text stream or None
        ``*.csv`` or ``*.parquet`` file (written under a temporary name, moved
        into place at the end), a text stream, or None for stdout (CSV).
    chunk_size : int
        Files predicted per call of ``predict_proba`` and per task on Dask:
        memory grows with it, never with the number of files.
    proba : bool
        Add one ``proba_<class>`` column per class.
    rows : callable or None
        ``rows(paths, probabilities) -> pandas.DataFrame`` builds each chunk's
        rows; default :func:`prediction_table`.
    client : dask.distributed.Client or None
        Run the chunks on this cluster's workers (the files must be readable
        there under the same paths); results are still written in file order.
    skip_invalid : bool
        Leave undecodable files out (listed in the returned ``invalid``);
        otherwise they raise :class:`~sklearn_imgcls.errors.InvalidImagesError`
        naming all of them once every file was tried (a file ``out`` is then not written).
    in_flight : int or None
        Chunks queued on the cluster at once (default: twice its threads).

    Returns
    -------
    PredictionRun
    """
    from ._core.atomic import atomic_path
    from ._core.images import InvalidImagesError

    kind = output_format(out)  # a bad name is refused before any work
    if client is not None and not hasattr(client, "submit"):
        raise TypeError(f"client must be a dask.distributed.Client, e.g. Client('tcp://host:8786'), got "
                        f"{type(client).__name__} {client!r}.")
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive whole number of files, got {chunk_size!r}.")
    estimator = _load(model)
    make_rows = rows or functools.partial(prediction_table, estimator, proba=proba)
    counted = _Counter(iter_image_paths([paths] if isinstance(paths, (str, os.PathLike)) else paths))
    invalid: list = []
    columns: list[str] = ["path", "prediction"]

    def stream(sink: _Sink) -> None:
        nonlocal columns
        for kept, probabilities, bad in _results(model, _chunks(counted, chunk_size), client, in_flight):
            invalid.extend(bad)
            if kept:
                table = make_rows(kept, probabilities)
                columns = list(table.columns)
                sink.write(table)
        if counted.n == 0:
            raise ValueError("No image files to predict.")
        if invalid and len(invalid) == counted.n:
            raise ValueError(f"None of the {counted.n} image file(s) can be decoded: "
                             + ", ".join(f"{p!r} ({r.rstrip('.')})" for p, r in invalid[:50]) + ".")
        if invalid and not skip_invalid:
            raise InvalidImagesError(invalid, counted.n)
        sink.close(columns)

    if out is None or hasattr(out, "write"):
        sink = _Sink(out if out is not None else sys.stdout, kind)
        stream(sink)
        return PredictionRun(counted.n, sink.rows, invalid, None)
    path = os.fspath(out)
    with atomic_path(path) as temporary:
        if kind == "parquet":
            sink = _Sink(temporary, kind)
            stream(sink)
        else:
            with open(temporary, "w", encoding="utf-8", newline="") as handle:
                sink = _Sink(handle, kind)
                stream(sink)
    return PredictionRun(counted.n, sink.rows, invalid, path)


class _Counter:
    """Counts the paths that pass through it."""

    def __init__(self, iterator: Iterator[str]) -> None:
        self.iterator, self.n = iterator, 0

    def __iter__(self) -> "_Counter":
        return self

    def __next__(self) -> str:
        value = next(self.iterator)
        self.n += 1
        return value

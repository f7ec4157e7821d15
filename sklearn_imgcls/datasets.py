"""Data sources: image folders, path/label tables, the digits and Fashion-MNIST.

Folders and tables are only listed, not decoded: they return file paths that
the estimators read lazily. The bundled digits and Fashion-MNIST return
in-memory uint8 images.
"""

from __future__ import annotations

import gzip
import os
import warnings

import numpy as np

__all__ = [
    "FASHION_MNIST_DIR",
    "IMAGE_EXTENSIONS",
    "InvalidImagesWarning",
    "drop_invalid_images",
    "list_image_files",
    "load_dataset",
    "load_digits_images",
    "load_fashion_mnist",
    "load_image_folder",
    "load_image_table",
]

#: where Debian's ``dataset-fashion-mnist`` package puts the IDX files
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

#: file suffixes treated as images (case-insensitive)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class InvalidImagesWarning(UserWarning):
    """Files left out by ``skip_invalid=True``; ``invalid`` lists them all as ``(path, reason)``.

    Read it with :func:`warnings.catch_warnings` (``record=True``), e.g. to
    print every skipped file.
    """

    def __init__(self, invalid: list[tuple[str, str]], n_total: int):
        self.invalid, self.n_total = list(invalid), int(n_total)
        shown = "; ".join(f"{p!r} ({reason})" for p, reason in self.invalid[:3])
        more = f"; and {len(self.invalid) - 3} more" if len(self.invalid) > 3 else ""
        super().__init__(
            f"Skipped {len(self.invalid)} of {self.n_total} image file(s) that cannot be decoded: {shown}{more}."
        )

    def __reduce__(self):
        return type(self), (self.invalid, self.n_total)


def drop_invalid_images(paths, labels) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Leave out the files that cannot be decoded (see :func:`sklearn_imgcls._core.images.find_invalid_images`).

    Returns
    -------
    paths, labels : numpy.ndarray
        The decodable files and their labels.
    invalid : list of (str, str)
        ``(path, reason)`` of every file left out.
    """
    from ._core.images import find_invalid_images

    paths, labels = np.asarray(paths), np.asarray(labels)
    invalid = find_invalid_images(paths.tolist())
    if not invalid:
        return paths, labels, []
    bad = {p for p, _ in invalid}
    keep = np.array([p not in bad for p in paths.tolist()], dtype=bool)
    if not keep.any():
        raise ValueError(
            f"None of the {len(paths)} image files can be decoded (first: {invalid[0][0]!r}: {invalid[0][1]}); "
            "check the data."
        )
    return paths[keep], labels[keep], invalid


def _skipping(paths: np.ndarray, labels: np.ndarray, skip_invalid: bool) -> tuple[np.ndarray, np.ndarray]:
    if not skip_invalid:
        return paths, labels
    kept, kept_labels, invalid = drop_invalid_images(paths, labels)
    if invalid:
        warnings.warn(InvalidImagesWarning(invalid, len(paths)), stacklevel=3)
    return kept, kept_labels


def list_image_files(folder: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[str]:
    """Image files under ``folder`` (recursively), sorted; hidden files and other suffixes are skipped."""
    suffixes = tuple(s.lower() for s in extensions)
    return sorted(
        os.path.join(parent, name)
        for parent, _, files in os.walk(folder)
        for name in files
        if name.lower().endswith(suffixes) and not name.startswith(".")
    )


def load_image_folder(
    root: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS, *, skip_invalid: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """List the images of ``root/<class>/...`` with their class names (torchvision's ImageFolder layout).

    Parameters
    ----------
    root : str
        Folder with one subfolder per class (nested folders inside a class
        are searched too; hidden files and other suffixes are ignored).
    extensions : tuple of str
        Accepted file suffixes.
    skip_invalid : bool
        Decode every file and leave out those that cannot be decoded, with an
        :class:`InvalidImagesWarning` (a ``UserWarning``) listing them.

    Returns
    -------
    paths : numpy.ndarray of str
        Sorted by class, then path.
    labels : numpy.ndarray of str
        The class folder of each file.
    """
    if not os.path.isdir(root):
        raise ValueError(f"{root!r} is not a folder; expected one subfolder of images per class.")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise ValueError(f"{root!r} has no class subfolders; put each class's images in root/<class name>/.")
    paths, labels = [], []
    for name in classes:
        found = list_image_files(os.path.join(root, name), extensions)
        if not found:
            raise ValueError(
                f"The class folder {os.path.join(root, name)!r} has no image files ({', '.join(extensions)}); "
                "add images or remove the folder."
            )
        paths += found
        labels += [name] * len(found)
    return _skipping(np.asarray(paths), np.asarray(labels), skip_invalid)


def load_image_table(
    path: str, path_column: str = "path", label_column: str = "label", *, skip_invalid: bool = False,
    multilabel: bool | None = None, separator: str = ";",
) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV or parquet table of image paths and labels.

    Relative paths are taken relative to the table's own folder. With
    ``skip_invalid=True`` files that cannot be decoded are left out, with an
    :class:`InvalidImagesWarning` (a ``UserWarning``) listing them.

    A label cell may name several labels joined by ``separator``
    (``"cat;dog"``): the table is then multi-label, every cell is split into
    a list of labels (surrounding spaces dropped, each label once) and an
    empty cell means an image with no label. The estimators read such a
    ``labels`` array as multi-label targets.

    Parameters
    ----------
    path : str
        A ``.csv`` or ``.parquet`` file.
    path_column, label_column : str
        The columns holding the image paths and the labels.
    skip_invalid : bool
        Leave out the files that cannot be decoded.
    multilabel : bool or None
        None (default): multi-label when some label cell holds ``separator``;
        True: always (single labels become one-element lists); False: never
        (a label "a;b" is one class named "a;b").
    separator : str
        What joins the labels of one cell.

    Returns
    -------
    paths : numpy.ndarray of str
    labels : numpy.ndarray
        One label per image, or (multi-label) an object array holding one
        list of labels per image.
    """
    import pandas as pd

    if not os.path.isfile(path):
        raise ValueError(f"No table at {path!r}; expected a .csv or .parquet file with {path_column!r} and {label_column!r} columns.")
    if path.lower().endswith((".parquet", ".pq")):
        table = pd.read_parquet(path)
    else:
        table = pd.read_csv(path)
    missing = [c for c in (path_column, label_column) if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; it has {list(table.columns)}. Pass path_column= / label_column=.")
    labels = table[label_column]
    if multilabel is None:
        multilabel = bool(labels.map(lambda v: isinstance(v, str) and separator in v).any())
    checked = [path_column] if multilabel else [path_column, label_column]
    if table[checked].isna().any().any():
        rows = table.index[table[checked].isna().any(axis=1)].tolist()[:5]
        ragged = bool([c for c in table.columns if c not in (path_column, label_column)]) or \
            not isinstance(table.index, pd.RangeIndex)  # pandas indexes by the first field when rows have one too many
        hint = (f" Some rows seem to have more fields than the header: several labels per image go in one cell "
                f"joined by {separator!r} ('cat{separator}dog'), since a ',' starts a new CSV column.") if ragged else ""
        raise ValueError(f"{path} has empty paths or labels in rows {rows}.{hint}")
    base = os.path.dirname(os.path.abspath(path))
    paths = [p if os.path.isabs(p) else os.path.join(base, p) for p in table[path_column].astype(str)]
    values = _label_lists(labels, separator, path, label_column) if multilabel else labels.to_numpy()
    return _skipping(np.asarray(paths), values, skip_invalid)


def _label_lists(labels, separator: str, path: str, column: str) -> np.ndarray:
    """One list of labels per cell (``"a;b"`` -> ``["a", "b"]``, empty -> ``[]``), as a 1-D object array."""
    import pandas as pd

    out = np.empty(len(labels), dtype=object)
    for i, value in enumerate(labels.tolist()):
        parts = [] if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value).split(separator)
        out[i] = list(dict.fromkeys(part.strip() for part in parts if part.strip()))
    if not any(len(row) for row in out):
        raise ValueError(f"The {column!r} column of {path} names no label at all; give each image its labels joined "
                         f"by {separator!r} (e.g. 'cat{separator}dog'), leaving a cell empty only for an image "
                         f"with none.")
    return out


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as uint8 images ``(1797, 8, 8)`` in 0-255, and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images * (255 / 16)).round().astype(np.uint8), digits.target


def _read_idx(path: str) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def _idx_file(folder: str, stem: str) -> str | None:
    for name in (f"{stem}.gz", stem):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def load_fashion_mnist(folder: str | None = None, download_root: str | None = None):
    """Fashion-MNIST as ``(X_train, y_train, X_test, y_test)``: uint8 ``(n, 28, 28)`` images, int64 labels.

    Looks in ``folder`` (IDX files, gzipped or not), else ``$FASHION_MNIST_DIR``,
    else Debian's ``/usr/share/datasets/fashion-mnist``; with
    ``download_root`` it falls back to torchvision's download into that folder.
    """
    candidates = [folder] if folder else [os.environ.get("FASHION_MNIST_DIR"), FASHION_MNIST_DIR]
    for candidate in filter(None, candidates):
        files = {stem: _idx_file(candidate, stem) for stem in (
            "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
        if all(files.values()):
            arrays = [_read_idx(p) for p in files.values()]
            return arrays[0], arrays[1].astype(np.int64), arrays[2], arrays[3].astype(np.int64)
    if download_root is not None:
        from torchvision.datasets import FashionMNIST

        train = FashionMNIST(download_root, train=True, download=True)
        test = FashionMNIST(download_root, train=False, download=True)
        return (train.data.numpy(), train.targets.numpy().astype(np.int64),
                test.data.numpy(), test.targets.numpy().astype(np.int64))
    raise ValueError(
        f"Fashion-MNIST IDX files not found in {', '.join(filter(None, candidates))}: run "
        "`apt-get install -y dataset-fashion-mnist`, point folder= (or FASHION_MNIST_DIR) at the four "
        "IDX files, or pass download_root= to let torchvision download them."
    )


def load_dataset(spec: str, *, skip_invalid: bool = False):
    """Resolve a command-line ``DATA`` argument to ``(X, y, image_shape)``.

    ``spec`` is ``"digits"``, ``"fashion-mnist"`` (training part), a folder
    of class subfolders, a ``.csv``/``.parquet`` table of ``path,label`` (a
    label cell ``"a;b"`` makes the table multi-label, see
    :func:`load_image_table`) or an ``.npz`` holding arrays ``X`` and ``y``. ``skip_invalid=True`` leaves
    out image files that cannot be decoded (folders and tables), with an
    :class:`InvalidImagesWarning` whose ``invalid`` attribute lists them.
    """
    if spec == "digits":
        X, y = load_digits_images()
        return X, y, None
    if spec == "fashion-mnist":
        X, y, _, _ = load_fashion_mnist()
        return X, y, None
    if os.path.isdir(spec):
        paths, labels = load_image_folder(spec, skip_invalid=skip_invalid)
        return paths, labels, None
    lower = spec.lower()
    if lower.endswith((".csv", ".parquet", ".pq")):
        paths, labels = load_image_table(spec, skip_invalid=skip_invalid)
        return paths, labels, None
    if lower.endswith(".npz") and os.path.isfile(spec):
        with np.load(spec, allow_pickle=False) as archive:
            if "X" not in archive or "y" not in archive:
                raise ValueError(f"{spec} must hold arrays named 'X' and 'y', found {sorted(archive.files)}.")
            return archive["X"], archive["y"], None
    raise ValueError(
        f"DATA must be 'digits', 'fashion-mnist', a folder of class subfolders, a .csv/.parquet table of "
        f"path,label or an .npz file; {spec!r} is none of these (or does not exist)."
    )

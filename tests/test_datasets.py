"""Data sources: image folders, path/label tables, digits, Fashion-MNIST IDX files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls.datasets import (
    load_dataset,
    load_digits_images,
    load_fashion_mnist,
    load_image_folder,
    load_image_table,
)


def make_folder(root, counts):
    for label, n in counts.items():
        (root / label / "nested").mkdir(parents=True)
        for i in range(n):
            where = root / label / ("nested" if i % 2 else "")
            Image.fromarray(np.full((8, 8), 30 * i, dtype=np.uint8)).save(where / f"{i}.png")
    (root / list(counts)[0] / ".hidden.png").write_bytes(b"")
    (root / list(counts)[0] / "README.txt").write_text("not an image")
    (root / ".git").mkdir()
    return root


def test_image_folder_lists_class_images_recursively_and_ignores_the_rest(tmp_path):
    root = make_folder(tmp_path / "data", {"cat": 3, "dog": 2})
    paths, labels = load_image_folder(str(root))
    assert labels.tolist() == ["cat"] * 3 + ["dog"] * 2
    assert all(p.endswith(".png") and "/.hidden" not in p for p in paths)
    clf = CNNClassifier(max_epochs=1, random_state=0).fit(paths, labels)
    assert set(clf.predict(paths)) <= {"cat", "dog"}


def test_image_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        load_image_folder(str(tmp_path / "missing"))
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match="no class subfolders"):
        load_image_folder(str(tmp_path / "flat"))
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="class folder .*cat' has no image files"):
        load_image_folder(str(tmp_path / "empty"))


def test_table_resolves_relative_paths_and_checks_columns(tmp_path):
    root = make_folder(tmp_path / "data", {"a": 2, "b": 2})
    paths, labels = load_image_folder(str(root))
    table = pd.DataFrame({"file": [p.replace(str(tmp_path) + "/", "") for p in paths], "y": labels})
    table.to_csv(tmp_path / "images.csv", index=False)
    got_paths, got_labels = load_image_table(str(tmp_path / "images.csv"), path_column="file", label_column="y")
    assert got_paths.tolist() == paths.tolist() and got_labels.tolist() == labels.tolist()
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['path', 'label'\]"):
        load_image_table(str(tmp_path / "images.csv"))
    table.loc[1, "y"] = None
    table.to_csv(tmp_path / "holes.csv", index=False)
    with pytest.raises(ValueError, match=r"empty paths or labels in rows \[1\]"):
        load_image_table(str(tmp_path / "holes.csv"), path_column="file", label_column="y")


def test_digits_images_are_uint8_in_full_range():
    X, y = load_digits_images()
    assert X.shape == (1797, 8, 8) and X.dtype == np.uint8 and X.max() == 255 and len(y) == 1797


def write_idx(path, array, compress):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_reads_idx_files_from_a_folder(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (6, 28, 28)), "t10k": rng.integers(0, 256, (4, 28, 28))}
    for prefix, array in images.items():
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", array, compress)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(len(array)) % 10, compress)
    X_train, y_train, X_test, y_test = load_fashion_mnist(str(tmp_path))
    np.testing.assert_array_equal(X_train, images["train"])
    assert y_test.tolist() == [0, 1, 2, 3] and y_train.dtype == np.int64 and X_test.dtype == np.uint8


def test_fashion_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(ValueError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion_mnist(str(tmp_path))


def test_load_dataset_dispatches_on_the_argument(tmp_path):
    X, y, _ = load_dataset("digits")
    assert X.shape == (1797, 8, 8)
    np.savez(tmp_path / "data.npz", X=X[:5], y=y[:5])
    X5, y5, _ = load_dataset(str(tmp_path / "data.npz"))
    assert X5.shape == (5, 8, 8) and y5.tolist() == y[:5].tolist()
    np.savez(tmp_path / "bad.npz", images=X[:5])
    with pytest.raises(ValueError, match="arrays named 'X' and 'y'"):
        load_dataset(str(tmp_path / "bad.npz"))
    with pytest.raises(ValueError, match="none of these"):
        load_dataset(str(tmp_path / "nothing.bin"))

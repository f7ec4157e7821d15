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


def _with_bad_files(root):
    make_folder(root, {"cat": 3, "dog": 2})
    good = (root / "cat" / "0.png").read_bytes()
    (root / "cat" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "dog" / "text.png").write_text("not an image")
    return root


def test_skip_invalid_drops_undecodable_files_and_warns_with_the_list(tmp_path):
    from sklearn_imgcls.datasets import InvalidImagesWarning

    root = _with_bad_files(tmp_path / "data")
    paths, labels = load_image_folder(str(root))  # default: listed as today, nothing decoded
    assert len(paths) == 7
    with pytest.warns(InvalidImagesWarning, match=r"Skipped 2 of 7 image file\(s\) .*truncated\.png.*text\.png") as got:
        paths, labels = load_image_folder(str(root), skip_invalid=True)
    assert issubclass(InvalidImagesWarning, UserWarning)
    assert len(paths) == 5 and labels.tolist() == ["cat"] * 3 + ["dog"] * 2
    invalid = got[0].message.invalid
    assert [p.rsplit("/", 1)[1] for p, _ in invalid] == ["truncated.png", "text.png"]
    assert invalid[0][1] and "does not recognise" in invalid[1][1] and all("\n" not in r for _, r in invalid)
    with pytest.warns(InvalidImagesWarning, match="Skipped 2 of 7"):
        X, y, _ = load_dataset(str(root), skip_invalid=True)
    assert len(X) == len(y) == 5
    pd.DataFrame({"path": [str(p) for p in load_image_folder(str(root))[0]], "label": [0] * 7}).to_csv(
        tmp_path / "t.csv", index=False)
    with pytest.warns(InvalidImagesWarning, match="Skipped 2 of 7"):
        X, y = load_image_table(str(tmp_path / "t.csv"), skip_invalid=True)
    assert len(X) == 5 and not any(p.endswith(("truncated.png", "text.png")) for p in X)
    with pytest.warns(InvalidImagesWarning):
        kept = load_image_folder(str(root), skip_invalid=True)
    assert CNNClassifier(preset="fast", max_epochs=1, random_state=0).fit(*kept).predict(kept[0]).shape == (5,)


def test_find_invalid_images_names_missing_broken_and_good_files(tmp_path):
    from sklearn_imgcls._core.images import find_invalid_images

    root = _with_bad_files(tmp_path / "data")
    paths = [str(root / "cat" / "0.png"), str(tmp_path / "gone.png"), str(root / "cat" / "truncated.png")]
    invalid = find_invalid_images(paths + [str(root / "dog" / "text.png")], n_threads=2)
    assert [p for p, _ in invalid] == paths[1:] + [str(root / "dog" / "text.png")]
    assert all(isinstance(p, str) and "\n" not in reason for p, reason in invalid)
    assert invalid[0][1] == "file not found."
    assert find_invalid_images(paths[:1]) == []

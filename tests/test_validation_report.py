"""validate(): per-image problems named, usable images kept, duplicates and leakage found."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls.quality import validate


@pytest.fixture(scope="module")
def folder(tmp_path_factory, digits):
    """1,000 digit PNGs, one truncated, one constant, one exact and one near duplicate."""
    X, y = digits
    root = tmp_path_factory.mktemp("thousand")
    paths, labels = [], []
    for i in range(1000):
        path = root / f"{i:04d}.png"
        Image.fromarray((X[i].reshape(8, 8) * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
        labels.append(int(y[i]))
    data = (root / "0500.png").read_bytes()
    (root / "0500.png").write_bytes(data[: len(data) // 2])  # truncated
    Image.new("L", (8, 8), 7).save(root / "0600.png")  # constant
    Image.open(root / "0010.png").save(root / "0700.png")  # exact duplicate of 10
    near = np.clip((X[20].reshape(8, 8) * 255).astype(np.int16) + 3, 0, 255).astype(np.uint8)
    Image.fromarray(near).save(root / "0800.png")  # near duplicate of 20
    labels[700] = labels[10]
    return paths, np.array(labels)


def test_a_corrupt_png_among_a_thousand_is_named_and_the_rest_stay_usable(folder):
    paths, y = folder
    report = validate(paths, y)
    issues = report.issues.set_index("index")
    assert issues.loc[500, "issue"] == "unreadable" and issues.loc[500, "path"].endswith("0500.png")
    assert issues.loc[600, "issue"] == "constant"
    assert issues.loc[700, "issue"] == "duplicate" and "image 10" in issues.loc[700, "detail"]
    assert issues.loc[800, "issue"] == "near_duplicate" and "image 20" in issues.loc[800, "detail"]
    assert len(report.issues) == 4  # nothing else in the digits is flagged
    assert report.usable.sum() == 999 and not report.usable[500]
    assert report.summary["images"] == 1000 and report.summary["modes"] == {"L": 999}
    keep = np.flatnonzero(report.usable)[:300]
    CNNClassifier(max_epochs=1, random_state=0).fit(np.asarray(paths)[keep], y[keep])


def test_arrays_nan_conflicting_duplicates_leakage_and_balance(digits):
    X, y = digits
    X, y = X[:200].copy(), y[:200].copy()
    X[3, 5] = np.nan
    X[4] = X[5]
    y[4] = (y[5] + 1) % 10
    test = np.vstack([X[7:9], np.full((1, 64), 0.5, dtype=np.float32)])
    report = validate(X, y, X_test=test, image_shape=(1, 8, 8))
    issues = report.issues
    assert issues.query("index == 3")["issue"].tolist() == ["nan_or_inf"] and not report.usable[3]
    assert "duplicate_conflicting_labels" in issues.query("index == 5 or index == 4")["issue"].tolist()
    leaks = issues.query("source == 'test'")
    assert leaks["issue"].tolist() == ["test_duplicate_of_train"] * 2 and leaks["index"].tolist() == [0, 1]
    assert report.summary["imbalance_ratio"] == pytest.approx(np.bincount(y).max() / np.bincount(y).min())
    with pytest.raises(ValueError, match="200 images but y has 3"):
        validate(X, y[:3], image_shape=(1, 8, 8))


def test_empty_mixed_and_unlabelled_inputs_are_explained(digits, tmp_path):
    X, y = digits
    with pytest.raises(ValueError, match="X is empty: found 0 images"):
        validate(np.empty((0, 64), dtype=np.float32))
    with pytest.raises(ValueError, match="X is empty"):
        validate([])
    with pytest.raises(ValueError, match="X_test is empty"):
        validate(X[:5], X_test=np.empty((0, 8, 8)), image_shape=(1, 8, 8))
    path = tmp_path / "a.png"
    Image.fromarray((X[0].reshape(8, 8) * 255).astype(np.uint8)).save(path)
    with pytest.raises(TypeError, match=r"X mixes file paths with other values \(item 1 is a ndarray.*only file paths"):
        validate([str(path), X[1].reshape(8, 8)])
    labels = np.array(y[:6], dtype=object)
    labels[[2, 4]] = None
    report = validate(X[:6], labels, image_shape=(1, 8, 8))
    missing = report.issues.query("issue == 'missing_label'")["index"].tolist()
    assert missing == [2, 4] and not report.usable[2] and report.usable.sum() == 4
    assert report.summary["missing_labels"] == 2 and sum(report.summary["class_counts"].values()) == 4
    assert all(type(k) is int for k in report.summary["class_counts"])  # plain values, not np.int64


def test_16_bit_files_are_read_with_their_range_and_bit_depths_are_reported(digits, tmp_path):
    X, _ = digits
    paths = []
    for i in range(4):
        array = (X[i // 2].reshape(8, 8) * 255).astype(np.uint8)
        paths.append(str(tmp_path / f"{i}.png"))
        if i % 2:
            array = array.astype(np.uint16) * 257  # 16-bit copy of the image before it (before: clipped to {0, 255})
        Image.fromarray(array).save(paths[-1])
    report = validate(paths)
    issues = report.issues.set_index("index")
    assert issues["issue"].tolist() == ["near_duplicate"] * 2
    assert "image 0" in issues.loc[1, "detail"] and "image 2" in issues.loc[3, "detail"]
    assert report.summary["modes"] == {"L": 2, "I;16": 2}
    assert report.summary["bit_depths"] == {8: 2, 16: 2} and report.summary["mixed_bit_depths"] == 2

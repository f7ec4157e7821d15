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

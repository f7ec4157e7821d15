"""The demo job: train on scikit-learn's bundled digits images and report."""

from __future__ import annotations

import time

__all__ = ["run_demo"]


def run_demo(backbone: str | None = None, max_epochs: int | None = None, seed: int = 0, verbose: bool = True) -> float:
    """Train ``CNNClassifier`` on 75% of the digits and print a test report.

    Parameters
    ----------
    backbone : str or None
        Registry backbone name; None: the default model's.
    max_epochs : int or None
        Training epochs; None: the default model's.
    seed : int
        Seed for the split and the training.
    verbose : bool
        Print a row per epoch while training.

    Returns
    -------
    float
        Test accuracy.
    """
    from sklearn.datasets import load_digits
    from sklearn.metrics import accuracy_score, classification_report
    from sklearn.model_selection import train_test_split

    from ..cnn import CNNClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    print(f"digits: {len(X_train)} training and {len(X_test)} test images of 8x8 pixels, 10 classes")
    clf = CNNClassifier(
        backbone, image_shape=(1, 8, 8), max_epochs=max_epochs, random_state=seed, verbose=int(verbose)
    )
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    predicted = clf.predict(X_test)
    accuracy = accuracy_score(y_test, predicted)
    print(classification_report(y_test, predicted, digits=3))
    print(f"backbone={clf.backbone_} epochs={len(clf.history_)} fit time={seconds:.1f}s")
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy

"""Class imbalance on Fashion-MNIST: which remedy recovers the rare classes?

Protocol (issue #8): classes 5-9 cut to 2 % of their training images (120
each), classes 0-4 complete (6,000 each); the default ``CNNClassifier`` with
the same epoch budget for every method; balanced accuracy and macro-F1 on the
full (balanced) 10,000-image test set.

Usage::

    python benchmarks/bench_imbalance.py [--epochs 4] [--seed 0] [--methods plain,balanced,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score

sys.path.insert(0, os.path.dirname(__file__))
from fashion_mnist import load_fashion_mnist  # noqa: E402

from sklearn_imgcls import CNNClassifier  # noqa: E402

METHODS = {
    "plain": {},
    "class_weight='balanced'": {"class_weight": "balanced"},
    "focal": {"loss": "focal"},
    "focal + balanced": {"loss": "focal", "class_weight": "balanced"},
    "logit_adjustment": {"loss": "logit_adjustment"},
    "oversample": {"sampler": "oversample"},
    "smote": {"sampler": "smote"},
    "logit_adjustment tau=2": {"loss": "logit_adjustment", "loss_params": {"tau": 2.0}},
    "logit_adjustment + augment=light": {"loss": "logit_adjustment", "augment": "light"},
    "oversample + augment=light": {"sampler": "oversample", "augment": "light"},
    "balanced + augment=light": {"class_weight": "balanced", "augment": "light"},
}
DEFAULT_METHODS = "plain,class_weight='balanced',focal,focal + balanced,logit_adjustment,oversample,smote"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=int, default=120, help="training images kept per rare class")
    parser.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated, from: {'; '.join(METHODS)}")
    args = parser.parse_args()
    X_train, y_train, X_test, y_test = load_fashion_mnist()
    rng = np.random.default_rng(args.seed)
    keep = np.concatenate(
        [np.flatnonzero(y_train == c) if c < 5 else rng.choice(np.flatnonzero(y_train == c), args.keep, replace=False)
         for c in range(10)]
    )
    X, y = X_train[keep], y_train[keep]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(y)} training images "
          f"({np.bincount(y).tolist()}), {args.epochs} epochs, seed {args.seed}")
    print("| method | balanced accuracy | macro-F1 | fit time |")
    print("| --- | --- | --- | --- |")
    for name in args.methods.split(","):
        start = time.perf_counter()
        clf = CNNClassifier(max_epochs=args.epochs, random_state=args.seed, **METHODS[name]).fit(X, y)
        seconds = time.perf_counter() - start
        predicted = clf.predict(X_test)
        print(f"| {name} | {balanced_accuracy_score(y_test, predicted):.3f} | "
              f"{f1_score(y_test, predicted, average='macro'):.3f} | {seconds:.0f} s |", flush=True)


if __name__ == "__main__":
    main()

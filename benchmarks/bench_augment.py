"""Does augmentation help the default model on a small training set?

Protocol (issue #8): the default ``CNNClassifier`` on 5,000 Fashion-MNIST
training images (stratified, seeded), with and without ``augment=...``, the
same epoch budget for all; accuracy on the full 10,000-image test set. Also
reports test-time augmentation (``tta="flip_h"``) on the augmented model.

Usage::

    python benchmarks/bench_augment.py [--epochs 20] [--seeds 0,1] [--configs none,light,standard,strong]
                                       [--backbone simple_cnn]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(__file__))
from fashion_mnist import load_fashion_mnist  # noqa: E402

from sklearn_imgcls import CNNClassifier  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--configs", default="none,light,standard,strong")
    parser.add_argument("--backbone", default="simple_cnn")
    args = parser.parse_args()
    X_train, y_train, X_test, y_test = load_fashion_mnist()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.n_train} training images, "
          f"{args.epochs} epochs, seeds {args.seeds}, backbone {args.backbone}")
    print("| augment | seed | test accuracy | with tta='flip_h' | fit time |")
    print("| --- | --- | --- | --- | --- |")
    results: dict[str, list[float]] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        X, _, y, _ = train_test_split(X_train, y_train, train_size=args.n_train, stratify=y_train, random_state=seed)
        for config in args.configs.split(","):
            augment = None if config == "none" else config
            start = time.perf_counter()
            clf = CNNClassifier(args.backbone, max_epochs=args.epochs, augment=augment, random_state=seed).fit(X, y)
            seconds = time.perf_counter() - start
            accuracy = clf.score(X_test, y_test)
            tta = clf.set_params(tta="flip_h").score(X_test, y_test)
            results.setdefault(config, []).append(accuracy)
            print(f"| {config} | {seed} | {accuracy:.4f} | {tta:.4f} | {seconds:.0f} s |", flush=True)
    base = np.mean(results.get("none", [np.nan]))
    for config, scores in results.items():
        print(f"mean {config}: {np.mean(scores):.4f} ({100 * (np.mean(scores) - base):+.1f} points vs none)")


if __name__ == "__main__":
    main()

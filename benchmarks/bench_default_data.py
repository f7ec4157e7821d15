"""Is the default still a good default away from Fashion-MNIST? Digits and an RGB set, two recipes side by side.

Issue #17 shortened the default (``preset="accurate"``) from 20 to 16 one-cycle
epochs because it reaches 0.94 on Fashion-MNIST sooner and ends as accurate.
This checks the same change on data the choice was not made on:

- scikit-learn's digits (8x8 grey, 1,797 images): ``--splits`` stratified
  75/25 splits;
- an RGB set made from the two photographs scikit-learn ships
  (:func:`sklearn.datasets.load_sample_images`): each photo is cut into three
  horizontal bands (six classes: sky, buildings, ground of ``china.jpg``;
  the same bands of ``flower.jpg``); 32x32 patches are drawn from the left
  60 % of each band for training and from the right 40 % for testing, so no
  test patch overlaps a training one.

For each data set and seed, ``CNNClassifier()`` (the default) and
``CNNClassifier(max_epochs=20)`` (the previous default) are fitted in turn;
test accuracy and fit time are printed, with the mean over seeds.

Usage::

    python benchmarks/bench_default_data.py [--splits 5] [--seeds 2] [--patches 500]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from sklearn.datasets import load_digits, load_sample_images
from sklearn.model_selection import train_test_split

from sklearn_imgcls import CNNClassifier

RECIPES = {"default (16 epochs)": {}, "previous default (20 epochs)": {"max_epochs": 20}}


def photo_bands(patches_per_class: int, seed: int, side: int = 32):
    """(X_train, y_train, X_test, y_test): 32x32 RGB patches, six classes (photo x band), disjoint columns."""
    rng = np.random.default_rng(seed)
    sets = {"train": ([], []), "test": ([], [])}
    label = 0
    for photo in load_sample_images().images:  # (427, 640, 3) uint8 each
        height, width, _ = photo.shape
        split = int(width * 0.6)
        for band in range(3):
            top, bottom = band * height // 3, (band + 1) * height // 3 - side
            for part, (low, high), count in (("train", (0, split - side), patches_per_class),
                                             ("test", (split, width - side), patches_per_class // 2)):
                rows = rng.integers(top, bottom, count)
                cols = rng.integers(low, high, count)
                sets[part][0].extend(photo[r:r + side, c:c + side] for r, c in zip(rows, cols))
                sets[part][1].extend([label] * count)
            label += 1
    (X_train, y_train), (X_test, y_test) = ((np.stack(X), np.array(y)) for X, y in sets.values())
    return X_train, y_train, X_test, y_test


def compare(name: str, splits) -> None:
    """Fit every recipe on every split; print one line per fit and the means."""
    scores = {recipe: [] for recipe in RECIPES}
    seconds = {recipe: [] for recipe in RECIPES}
    for seed, (X_train, y_train, X_test, y_test) in enumerate(splits):
        for recipe, params in RECIPES.items():
            clf = CNNClassifier(random_state=seed, **params)
            began = time.perf_counter()
            clf.fit(X_train, y_train)
            seconds[recipe].append(time.perf_counter() - began)
            scores[recipe].append(float((clf.predict(X_test) == y_test).mean()))
            print(f"{name} seed {seed} {recipe}: accuracy {scores[recipe][-1]:.4f}, fit {seconds[recipe][-1]:.1f} s "
                  f"({len(X_train)} training, {len(X_test)} test images)", flush=True)
    print(f"| data | recipe | test accuracy per seed | mean | mean fit time |")
    print("| --- | --- | --- | --- | --- |")
    for recipe in RECIPES:
        print(f"| {name} | {recipe} | {' / '.join(f'{s:.4f}' for s in scores[recipe])} | "
              f"**{statistics.mean(scores[recipe]):.4f}** | {statistics.mean(seconds[recipe]):.1f} s |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", type=int, default=5, help="digits: stratified 75/25 splits")
    parser.add_argument("--seeds", type=int, default=2, help="photo patches: seeds (patch draw and training)")
    parser.add_argument("--patches", type=int, default=500, help="photo patches: training patches per class")
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X = (X.reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8)
    digits = []
    for seed in range(args.splits):
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
        digits.append((X_train, y_train, X_test, y_test))
    compare("digits (8x8 grey)", digits)
    compare("photo bands (32x32 RGB)", [photo_bands(args.patches, seed) for seed in range(args.seeds)])


if __name__ == "__main__":
    main()

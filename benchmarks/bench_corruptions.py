"""Which augmentation buys robustness to corruptions, and at what clean cost? (issue #19)

Protocol: the default ``CNNClassifier`` on ``--n-train`` Fashion-MNIST training
images (stratified, seeded), trained with no augmentation, each augmentation
preset (light, standard, strong) and ``augmix``, all for the same ``--epochs``;
then, on ``--n-test`` test images (the first ones, all classes), the clean
accuracy, the mean corruption accuracy (mCA: every installed corruption at
every severity) and the relative mCE against the unaugmented model, followed by
the accuracy per corruption (mean over severities) of every setting.

Usage::

    python benchmarks/bench_corruptions.py [--epochs 5] [--n-train 8000] [--n-test 2000]
                                           [--configs none,light,standard,strong,augmix]
                                           [--severities 1,2,3,4,5] [--seed 0] [--threads N]

The defaults take about 2-3 minutes per setting on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import pandas as pd
import torch
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(__file__))
from fashion_mnist import load_fashion_mnist  # noqa: E402

from sklearn_imgcls import CNNClassifier, list_corruptions  # noqa: E402
from sklearn_imgcls.robustness import corruption_report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=8000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--configs", default="none,light,standard,strong,augmix")
    parser.add_argument("--severities", default="1,2,3,4,5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    severities = tuple(int(s) for s in args.severities.split(","))
    X_train, y_train, X_test, y_test = load_fashion_mnist()
    X, _, y, _ = train_test_split(X_train, y_train, train_size=args.n_train, stratify=y_train, random_state=args.seed)
    X_test, y_test = X_test[: args.n_test], y_test[: args.n_test]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.n_train} training images, "
          f"{args.epochs} epochs, seed {args.seed}; {len(X_test)} test images, corruptions "
          f"{', '.join(list_corruptions())} at severities {severities}")
    print("| augment | clean accuracy | mCA | relative mCE vs none | fit time | report time |")
    print("| --- | --- | --- | --- | --- | --- |")
    reports = {}
    for config in args.configs.split(","):
        augment = None if config == "none" else config  # "auto": the preset's own augmentation
        augment = ["augmix"] if config == "augmix" else augment
        augment = config.split("+") if "+" in config else augment  # e.g. random_crop+augmix: both, in order
        start = time.perf_counter()
        clf = CNNClassifier(max_epochs=args.epochs, augment=augment, random_state=args.seed).fit(X, y)
        fitted = time.perf_counter() - start
        baseline = reports.get("none")
        report = corruption_report(clf, X_test, y_test, "all", severities, baseline=baseline, random_state=args.seed)
        reports[config] = report
        relative = "1.000 (reference)" if baseline is None else f"{report.relative_mce:.3f}"
        print(f"| {config} | {report.clean_accuracy:.4f} | {report.mean_corruption_accuracy:.4f} | {relative} | "
              f"{fitted:.0f} s | {time.perf_counter() - start - fitted:.0f} s |", flush=True)
    table = pd.DataFrame({config: report.per_corruption()["accuracy"] for config, report in reports.items()})
    table.loc["(clean)"] = [report.clean_accuracy for report in reports.values()]
    table.loc["(mCA)"] = [report.mean_corruption_accuracy for report in reports.values()]
    print("\naccuracy per corruption (mean over severities):")
    print(table.round(4).to_markdown())
    if "none" in reports:
        none = reports["none"]
        for config, report in reports.items():
            print(f"{config}: mCA {100 * (report.mean_corruption_accuracy - none.mean_corruption_accuracy):+.1f} "
                  f"points, clean {100 * (report.clean_accuracy - none.clean_accuracy):+.1f} points vs none")


if __name__ == "__main__":
    main()

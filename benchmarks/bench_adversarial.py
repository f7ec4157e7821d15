"""Adversarial robustness on Fashion-MNIST: standard vs adversarially trained default model.

Protocol (issue #9): the default ``CNNClassifier`` (or ``--backbone``, ``--param``) on the
first 20,000 training images for ``--epochs`` epochs, once plainly and once
with ``adversarial={"method": "pgd", "eps": 0.1, "steps": 5, "fraction": ...}``;
clean accuracy and accuracy under PGD (L-inf, eps 0.1, 20 steps) on the first
``--n-test`` test images. Anchor (issue, hand-written seed CNN, 3 epochs):
standard 0.873 clean / 0.230 robust; PGD-5 training 0.811 / 0.692.

Usage::

    python benchmarks/bench_adversarial.py [--epochs 3] [--fraction 0.5] [--backbone simple_cnn] [--n-test 10000]
                                           [--method pgd|trades] [--beta 6] [--skip-standard] [--device cuda]
                                           [--param NAME=JSON ...]

The attacks run in float32 whatever the model's ``precision``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fashion_mnist import load_fashion_mnist  # noqa: E402

from sklearn_imgcls import CNNClassifier  # noqa: E402
from sklearn_imgcls.cli.commands import parse_params  # noqa: E402
from sklearn_imgcls.robustness import pgd  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--backbone", default=None, help="registry backbone (default: the estimator's preset)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=JSON", help="set a parameter")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", default="pgd", choices=["pgd", "trades"], help="adversarial training method")
    parser.add_argument("--beta", type=float, default=6.0, help="TRADES weight of the KL term")
    parser.add_argument("--skip-standard", action="store_true", help="only the adversarially trained model")
    args = parser.parse_args()
    X_train, y_train, X_test, y_test = load_fashion_mnist()
    X, y = X_train[: args.n_train], y_train[: args.n_train]
    Xt, yt = X_test[: args.n_test], y_test[: args.n_test]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(y)} training images, "
          f"{len(yt)} test images, {args.epochs} epochs, backbone {args.backbone or 'default'}, "
          f"params {args.param}")
    print("| training | clean accuracy | PGD-20 eps=0.1 accuracy | fit time | attack time |")
    print("| --- | --- | --- | --- | --- |")
    if args.method == "pgd":
        adversarial = {"method": "pgd", "eps": 0.1, "steps": args.train_steps, "fraction": args.fraction}
        label = f"PGD-{args.train_steps} adversarial, fraction {args.fraction}"
    else:
        adversarial = {"method": "trades", "eps": 0.1, "steps": args.train_steps, "beta": args.beta}
        label = f"TRADES, {args.train_steps} steps, beta {args.beta}"
    runs = [(label, {"adversarial": adversarial})]
    if not args.skip_standard:
        runs.insert(0, ("standard", {}))
    for name, extra in runs:
        start = time.perf_counter()
        clf = CNNClassifier(args.backbone, max_epochs=args.epochs, random_state=args.seed, device=args.device,
                            **parse_params(args.param), **extra).fit(X, y)
        fit_seconds = time.perf_counter() - start
        clean = clf.score(Xt, yt)
        start = time.perf_counter()
        attacked = pgd(clf, Xt, yt, 0.1, steps=20, random_state=args.seed)
        robust = float(np.mean(clf.predict(attacked) == yt))
        print(f"| {name} | {clean:.4f} | {robust:.4f} | {fit_seconds:.0f} s | {time.perf_counter() - start:.0f} s |",
              flush=True)


if __name__ == "__main__":
    main()

"""Leaderboard on Fashion-MNIST: which model wins on 10,000 training images in 10 minutes?

Protocol (issue #6): ``leaderboard(X, y, candidates="auto", cv=3,
time_budget=600)`` on a stratified 10,000-image sample of the Fashion-MNIST
training set (seeded); no refit. Prints the table as markdown.

Usage::

    python benchmarks/bench_leaderboard.py [--n-train 10000] [--budget 600] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(__file__))
from fashion_mnist import load_fashion_mnist  # noqa: E402

from sklearn_imgcls.select import leaderboard  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--budget", type=float, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    X_train, y_train, _, _ = load_fashion_mnist()
    X, _, y, _ = train_test_split(X_train, y_train, train_size=args.n_train, stratify=y_train, random_state=args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(y)} images, budget {args.budget:.0f} s")
    start = time.perf_counter()
    board = leaderboard(X, y, "auto", cv=3, time_budget=args.budget, random_state=args.seed, refit=False, verbose=1)
    print(f"total {time.perf_counter() - start:.0f} s")
    columns = ["name", "status", "mean_accuracy", "std_accuracy", "mean_f1_macro", "fit_time",
               "predict_time_per_image", "n_parameters"]
    print(board[columns].to_markdown(index=False, floatfmt=".4g"))


if __name__ == "__main__":
    main()

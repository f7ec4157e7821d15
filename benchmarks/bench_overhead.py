"""Overhead of CNNClassifier against a hand-written PyTorch loop, in one process.

Both train the same network (the registry's ``simple_cnn``, same initial
weights, Adam at a constant rate, cross-entropy, no augmentation, float32,
same batch size and epochs) on the same raw uint8 Fashion-MNIST images, and
predict probabilities for the test images. Runs alternate between the two so
machine noise hits both alike; the reported ratios are
median(CNNClassifier) / median(hand-written loop) and, less sensitive to
other load on a shared machine, min / min. A third contender, "lean", is the
same estimator with the package's default compute settings
(``precision="auto"``, ``channels_last=True``): what a user gets for free.

Usage::

    python benchmarks/bench_overhead.py [--n-train 20000] [--epochs 1] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fashion_mnist import load_fashion_mnist  # noqa: E402

from sklearn_imgcls import CNNClassifier, build_backbone  # noqa: E402

BATCH, LR = 128, 1e-3


def hand_written_fit(X: np.ndarray, y: np.ndarray, epochs: int, seed: int):
    """The loop a PyTorch user writes by hand: normalise once, shuffle, index batches."""
    torch.manual_seed(seed)
    model = build_backbone("simple_cnn", 1, 10, (28, 28))
    images = torch.from_numpy(X).unsqueeze(1).float().div_(255)
    mean, std = images.mean(), images.std()
    images = (images - mean) / std
    targets = torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), BATCH):
            idx = order[start : start + BATCH]
            optimizer.zero_grad()
            loss = loss_fn(model(images[idx]), targets[idx])
            loss.backward()
            optimizer.step()
    return model, mean, std


def hand_written_predict_proba(model, mean, std, X: np.ndarray) -> np.ndarray:
    model.eval()
    images = torch.from_numpy(X).unsqueeze(1)
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), BATCH):
            batch = (images[start : start + BATCH].float().div_(255) - mean) / std
            out.append(torch.softmax(model(batch), dim=1))
    return torch.cat(out).numpy()


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    X_train, y_train, X_test, y_test = load_fashion_mnist()
    X_train, y_train = X_train[: args.n_train], y_train[: args.n_train]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"Fashion-MNIST: {len(X_train)} training, {len(X_test)} test images; simple_cnn, {args.epochs} epochs, batch {BATCH}")

    fit_hand, fit_ours, fit_lean, pred_hand, pred_ours, pred_lean = [], [], [], [], [], []
    for repeat in range(args.repeats):
        seconds, (model, mean, std) = timed(hand_written_fit, X_train, y_train, args.epochs, repeat)
        fit_hand.append(seconds)
        same = dict(backbone="simple_cnn", max_epochs=args.epochs, batch_size=BATCH, lr=LR, lr_schedule="constant",
                    augment=None, random_state=repeat)
        clf = CNNClassifier(**same, precision="fp32", channels_last=False)
        seconds, _ = timed(clf.fit, X_train, y_train)
        fit_ours.append(seconds)
        lean = CNNClassifier(**same)
        seconds, _ = timed(lean.fit, X_train, y_train)
        fit_lean.append(seconds)
        for _ in range(3):
            seconds, proba_hand = timed(hand_written_predict_proba, model, mean, std, X_test)
            pred_hand.append(seconds)
            seconds, proba_ours = timed(clf.predict_proba, X_test)
            pred_ours.append(seconds)
            seconds, proba_lean = timed(lean.predict_proba, X_test)
            pred_lean.append(seconds)
        acc_hand, acc_ours, acc_lean = ((p.argmax(1) == y_test).mean() for p in (proba_hand, proba_ours, proba_lean))
        print(
            f"repeat {repeat}: fit hand {fit_hand[-1]:.2f}s ours {fit_ours[-1]:.2f}s lean {fit_lean[-1]:.2f}s | "
            f"predict hand {pred_hand[-1]:.3f}s ours {pred_ours[-1]:.3f}s lean {pred_lean[-1]:.3f}s | "
            f"test accuracy hand {acc_hand:.4f} ours {acc_ours:.4f} lean {acc_lean:.4f}"
        )
    for label, ours, hand in (("fit", fit_ours, fit_hand), ("predict_proba", pred_ours, pred_hand),
                              ("fit, lean", fit_lean, fit_hand), ("predict_proba, lean", pred_lean, pred_hand)):
        print(
            f"{label} ratio (CNNClassifier / hand-written): "
            f"median {statistics.median(ours) / statistics.median(hand):.3f}, min {min(ours) / min(hand):.3f}"
        )


if __name__ == "__main__":
    main()

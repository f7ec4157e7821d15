"""CNNClassifier with its defaults on the full Fashion-MNIST: accuracy, time, throughput, memory.

Trains on the 60,000 training images and scores the 10,000 test images;
prints test accuracy, fit wall time, training images/s, prediction time and
peak resident memory, and appends a row to ``benchmarks/RESULTS.md``. With
``--curve`` the test accuracy is also measured after every epoch (outside
the timed training time), which gives the time to reach ``--target``.

Usage::

    python benchmarks/bench_fashion_mnist.py                      # CNNClassifier()
    python benchmarks/bench_fashion_mnist.py --preset fast
    python benchmarks/bench_fashion_mnist.py --param max_epochs=20 --param 'backbone="bn_cnn"' --curve
    python benchmarks/bench_fashion_mnist.py --device cuda --curve --no-record

``--param NAME=JSON`` sets any CNNClassifier parameter (as the command line's
``train --param`` does).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import time

import numpy as np
import torch
from skorch.callbacks import Callback

sys.path.insert(0, os.path.dirname(__file__))
from fashion_mnist import load_fashion_mnist  # noqa: E402

from sklearn_imgcls import CNNClassifier  # noqa: E402
from sklearn_imgcls.cli.commands import parse_params  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "RESULTS.md")
SECTION = "## Fashion-MNIST with the defaults (issue #4)"
HEADER = (
    "| date | machine | command | epochs | test accuracy | fit time | train images/s | predict time | peak RSS | "
    "time to target |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


class TestCurve(Callback):
    """Test accuracy after each epoch, with the training time spent so far (evaluation excluded)."""

    def __init__(self, images: torch.Tensor, labels: np.ndarray, batch_size: int = 1024) -> None:
        self.images = images
        self.labels = labels
        self.batch_size = batch_size

    def on_train_begin(self, net, **kwargs) -> None:  # noqa: D102 - skorch Callback API
        self.start_ = time.perf_counter()
        self.eval_seconds_ = 0.0
        self.points_ = []

    def on_epoch_end(self, net, **kwargs) -> None:  # noqa: D102 - skorch Callback API
        began = time.perf_counter()
        module = net.module_
        device = next(module.parameters()).device
        module.eval()
        predictions = []
        with torch.inference_mode():
            for start in range(0, len(self.images), self.batch_size):
                predictions.append(module(self.images[start : start + self.batch_size].to(device)).argmax(1).cpu())
        module.train()
        accuracy = float((torch.cat(predictions).numpy() == self.labels).mean())
        train_seconds = began - self.start_ - self.eval_seconds_
        self.points_.append((len(net.history), train_seconds, accuracy))
        print(f"  epoch {len(net.history):3d}  {train_seconds:7.1f}s  test accuracy {accuracy:.4f}", flush=True)
        self.eval_seconds_ += time.perf_counter() - began


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} + {os.cpu_count()} cores"
    return f"{os.cpu_count()}-core {platform.processor() or platform.machine()} (torch {torch.get_num_threads()} threads)"


def record(row: str) -> None:
    """Append ``row`` to the table of this benchmark's section in RESULTS.md (created when missing)."""
    text = open(RESULTS).read() if os.path.exists(RESULTS) else "# Benchmark results\n"
    if SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{HEADER}\n"
    lines = text.split("\n")
    at = lines.index(SECTION) + 1
    while at < len(lines) and not lines[at].startswith("|"):
        at += 1
    while at < len(lines) and lines[at].startswith("|"):
        at += 1
    lines.insert(at, row)
    with open(RESULTS, "w") as handle:
        handle.write("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, help="CNNClassifier preset (default: the estimator's default)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=JSON", help="set a parameter")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-train", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--curve", action="store_true", help="test accuracy after every epoch")
    parser.add_argument("--target", type=float, default=0.94, help="accuracy whose time --curve reports")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()

    X_train, y_train, X_test, y_test = load_fashion_mnist()
    if args.n_train:
        X_train, y_train = X_train[: args.n_train], y_train[: args.n_train]
    params = parse_params(args.param)
    if args.preset:
        params["preset"] = args.preset
    curve = TestCurve(torch.from_numpy(X_test).unsqueeze(1), y_test) if args.curve else None
    clf = CNNClassifier(device=args.device, random_state=args.seed, callbacks=[curve] if curve else None, **params)
    print(f"{machine()}; torch {torch.__version__}; {len(X_train)} training images")
    began = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - began
    print(f"CNNClassifier({', '.join(f'{k}={v!r}' for k, v in params.items())}) trained with: "
          + ", ".join(f"{name}={getattr(clf, name + '_')!r}" for name in
                      ("backbone", "backbone_params", "max_epochs", "batch_size", "lr", "lr_schedule", "augment"))
          + f", precision={clf.precision!r}", flush=True)
    if curve is not None:
        fit_seconds -= curve.eval_seconds_
    began = time.perf_counter()
    accuracy = float((clf.predict(X_test) == y_test).mean())
    predict_seconds = time.perf_counter() - began
    epochs = len(clf.history_)
    images_per_second = epochs * len(X_train) / fit_seconds
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reached = "n/a (no --curve)"
    if curve is not None:
        hits = [(epoch, seconds) for epoch, seconds, acc in curve.points_ if acc >= args.target]
        reached = f"{hits[0][1]:.0f} s (epoch {hits[0][0]})" if hits else f"not reached ({args.target})"
    print(f"test accuracy {accuracy:.4f}; fit {fit_seconds:.1f} s ({epochs} epochs, {images_per_second:.0f} images/s); "
          f"predict {predict_seconds:.2f} s; peak RSS {peak_mb:.0f} MB; time to {args.target}: {reached}")
    if not args.no_record:
        command = "python benchmarks/bench_fashion_mnist.py " + " ".join(sys.argv[1:])
        record(f"| {datetime.date.today()} | {machine()} | `{command.strip()}` | {epochs} | **{accuracy:.4f}** | "
               f"{fit_seconds:.0f} s | {images_per_second:.0f} | {predict_seconds:.2f} s | {peak_mb:.0f} MB | {reached} |")
        print(f"row appended to {RESULTS}")
    print("RESULT_JSON " + json.dumps({"params": {k: str(v) for k, v in params.items()}, "accuracy": accuracy,
                                        "fit_seconds": fit_seconds, "epochs": epochs,
                                        "curve": curve.points_ if curve else None}))


if __name__ == "__main__":
    main()

"""Training from image files on disk: bounded memory, throughput against the in-memory path.

Writes the 60,000 Fashion-MNIST training images as PNG files (one folder per
class, under ``--dir``, reused when present), then fits ``CNNClassifier``
twice, each in a fresh process: once on the list of file paths (decoded by
DataLoader workers, ``num_workers``) and once on the same images as an
in-memory uint8 array. Prints training images/s and the peak resident memory
of the fitting process (and of its largest child process, a DataLoader worker
when decoding files) for both.

Targets (issue #4): peak RSS of the file-based fit under 1.5 GB, and its
throughput within 2x of the in-memory path.

Usage::

    python benchmarks/bench_memory.py [--dir /tmp/fmnist_png] [--epochs 1] [--num-workers 2] [--preset fast]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))


def write_pngs(folder: str) -> list[str]:
    """The training images as ``folder/<label>/<index>.png``; returns the paths (written once)."""
    from fashion_mnist import load_fashion_mnist
    from PIL import Image

    X, y, _, _ = load_fashion_mnist()
    paths = [os.path.join(folder, str(label), f"{i:05d}.png") for i, label in enumerate(y)]
    if all(os.path.exists(p) for p in (paths[0], paths[-1])):
        return paths
    began = time.perf_counter()
    for label in np.unique(y):
        os.makedirs(os.path.join(folder, str(label)), exist_ok=True)
    for path, image in zip(paths, X):
        Image.fromarray(image).save(path)
    print(f"wrote {len(paths)} PNG files to {folder} in {time.perf_counter() - began:.0f} s", flush=True)
    return paths


def fit_once(source: str, folder: str, epochs: int, workers: int, preset: str | None) -> dict:
    """Fit in this process on files or on memory; return timing and memory."""
    from fashion_mnist import load_fashion_mnist

    from sklearn_imgcls import CNNClassifier

    _, y, _, _ = load_fashion_mnist()
    if source == "files":
        X = write_pngs(folder)
    else:
        X = load_fashion_mnist()[0]
    extra = {"preset": preset} if preset else {}
    clf = CNNClassifier(max_epochs=epochs, num_workers=workers, random_state=0, **extra)
    began = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - began
    return {
        "source": source,
        "seconds": seconds,
        "images_per_second": epochs * len(y) / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "largest_child_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="/tmp/fmnist_png")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--only", choices=["files", "memory"], help=argparse.SUPPRESS)  # one fit, in this process
    args = parser.parse_args()
    if args.only:
        print("RESULT " + json.dumps(fit_once(args.only, args.dir, args.epochs, args.num_workers, args.preset)))
        return
    write_pngs(args.dir)
    results = {}
    for source in ("files", "memory"):
        command = [sys.executable, __file__, "--only", source, "--dir", args.dir, "--epochs", str(args.epochs),
                   "--num-workers", str(args.num_workers)] + (["--preset", args.preset] if args.preset else [])
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[source] = json.loads(output.split("RESULT ", 1)[1])
        r = results[source]
        print(f"{source:6s}: fit {r['seconds']:.1f} s, {r['images_per_second']:.0f} images/s, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB (largest child process {r['largest_child_rss_mb']:.0f} MB)", flush=True)
    ratio = results["memory"]["images_per_second"] / results["files"]["images_per_second"]
    print(f"in-memory / files throughput: {ratio:.2f}x (target <= 2); files peak RSS "
          f"{results['files']['peak_rss_mb']:.0f} MB (target < 1500)")


if __name__ == "__main__":
    main()

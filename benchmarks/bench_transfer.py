"""Transfer learning, measured honestly offline on Fashion-MNIST.

Protocol (issue #7): pretrain a backbone on the source classes with all their
training images and save it; then, on the target classes with only ``k``
training images per class, train (a) from scratch and (b) from that
checkpoint with TransferClassifier's default fine-tuning policy, under the
same epoch budget. Report mean test accuracy over seeds on the target
classes' test images. A frozen source body (head only) is reported too.

Any registered backbone works, plugins' included: with the timm plugin
installed (``pip install plugins/sklearn-imgcls-timm``), ``--backbone
bn_cnn,timm:resnet10t`` runs the protocol for both, one after the other, each
pretrained on the source classes by this script (no ImageNet weights needed).

Usage::

    python benchmarks/bench_transfer.py [--backbone bn_cnn[,timm:resnet10t]] [--pretrain-epochs 5]
        [--pretrain-per-class N] [--epochs 60] [--seeds 3] [--policy freeze=backbone,fine_tune_epochs=30]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fashion_mnist import load_fashion_mnist  # noqa: E402

from sklearn_imgcls import CNNClassifier, TransferClassifier, list_backbones  # noqa: E402

SPLITS = {"0-4 -> 5-9": ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9)), "0,1,5,7,8 -> 2,3,4,6,9": ((0, 1, 5, 7, 8), (2, 3, 4, 6, 9))}
CACHE = os.path.join(os.path.dirname(__file__), ".cache")


def parse_policy(text: str) -> dict:
    policy = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=")
        policy[key] = int(value) if value.lstrip("-").isdigit() else float(value) if "." in value else value
    return policy


def pretrain(backbone, classes, X, y, epochs, per_class=None) -> str:
    os.makedirs(CACHE, exist_ok=True)
    limit = f"-n{per_class}" if per_class else ""
    stem = backbone.replace(":", "_")  # "timm:resnet10t" -> a portable file name
    path = os.path.join(CACHE, f"{stem}-{'-'.join(map(str, classes))}-e{epochs}{limit}.safetensors")
    if not os.path.exists(path):
        keep = np.isin(y, classes)
        if per_class:  # the first per_class training images of each source class (deterministic)
            keep = np.zeros_like(keep)
            for c in classes:
                keep[np.flatnonzero(y == c)[:per_class]] = True
        start = time.perf_counter()
        source = CNNClassifier(backbone, max_epochs=epochs, random_state=0).fit(X[keep], y[keep])
        source.save_weights(path)
        print(f"  pretrained {backbone} on classes {classes}: {keep.sum()} images, {epochs} epochs, "
              f"{time.perf_counter() - start:.0f}s")
    return path


def few_shot(X, y, classes, k, seed):
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), k, replace=False) for c in classes])
    return X[idx], y[idx]


def check_backbones(names: list[str]) -> None:
    """Refuse unknown backbones before anything trains, pointing at the plugin that adds ``timm:`` names."""
    known = set(list_backbones())
    for name in names:
        if name not in known:
            hint = " Install the timm plugin: pip install plugins/sklearn-imgcls-timm." if name.startswith("timm:") else ""
            sys.exit(f"unknown backbone {name!r}.{hint} Available: {', '.join(sorted(known))}")


def run_backbone(backbone, args, data, policy) -> None:
    X_train, y_train, X_test, y_test = data
    common = dict(max_epochs=args.epochs, batch_size=args.batch_size)
    split_names = list(SPLITS)
    for split_index in map(int, args.splits.split(",")):
        name = split_names[split_index]
        source, target = SPLITS[name]
        checkpoint = pretrain(backbone, source, X_train, y_train, args.pretrain_epochs, args.pretrain_per_class)
        test = np.isin(y_test, target)
        for k in map(int, args.shots.split(",")):
            scores = {"scratch": [], "transfer": [], "frozen body": []}
            start = time.perf_counter()
            for seed in range(args.seeds):
                Xk, yk = few_shot(X_train, y_train, target, k, seed)
                models = {
                    "scratch": CNNClassifier(backbone, random_state=seed, **common),
                    "transfer": TransferClassifier(backbone, weights=checkpoint, random_state=seed, **common, **policy),
                    "frozen body": TransferClassifier(
                        backbone, weights=checkpoint, freeze="backbone", fine_tune_epochs=0, random_state=seed, **common
                    ),
                }
                for label, model in models.items():
                    scores[label].append(model.fit(Xk, yk).score(X_test[test], y_test[test]))
            summary = ", ".join(f"{label} {np.mean(v):.3f} (±{np.std(v):.3f})" for label, v in scores.items())
            gain = 100 * (np.mean(scores["transfer"]) - np.mean(scores["scratch"]))
            print(f"{backbone}: {name}, {k}-shot, {args.seeds} seeds: {summary}; transfer - scratch = {gain:+.1f} "
                  f"points ({time.perf_counter() - start:.0f}s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="bn_cnn", help="one backbone or several, comma-separated")
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--pretrain-per-class", type=int, default=None,
                        help="pretrain on the first N images of each source class (default: all 6,000)")
    parser.add_argument("--epochs", type=int, default=60, help="budget of every few-shot fit")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shots", default="20,5")
    parser.add_argument("--splits", default="0,1", help="indices into SPLITS")
    parser.add_argument("--policy", default="", help="TransferClassifier overrides, e.g. freeze=none")
    args = parser.parse_args()
    backbones = [name.strip() for name in args.backbone.split(",") if name.strip()]
    check_backbones(backbones)
    data = load_fashion_mnist()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}; "
          f"backbones {', '.join(backbones)}, budget {args.epochs} epochs, batch {args.batch_size}, "
          f"policy {args.policy or 'default'}", flush=True)
    policy = parse_policy(args.policy)
    for backbone in backbones:
        run_backbone(backbone, args, data, policy)


if __name__ == "__main__":
    main()

"""Training-step throughput of the built-in CNNs under each compute option, in one process.

For ``simple_cnn`` (the ``fast`` preset) and the default ``bn_cnn`` recipe,
times Adam training steps on random 28x28 uint8 batches through
:class:`~sklearn_imgcls._core.network.ImageNetwork` with every combination of
``precision`` (fp32 / bf16 autocast) and ``channels_last``, and with
``compile=True`` for the default settings. Modes alternate within each
repeat, so machine noise hits all of them alike; the median images/s is
reported, with the ratio to plain fp32.

Usage::

    python benchmarks/bench_compute.py [--batch-size 128] [--steps 20] [--repeats 3] [--no-compile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn

from sklearn_imgcls import build_backbone
from sklearn_imgcls._core.network import ImageNetwork, autocast_dtype
from sklearn_imgcls.presets import PRESETS

MODES = [("fp32", False, False), ("fp32", True, False), ("bf16", False, False), ("bf16", True, False)]


def make(backbone: str, params: dict, precision: str, channels_last: bool, compile: bool):
    torch.manual_seed(0)
    network = ImageNetwork(build_backbone(backbone, 1, 10, (28, 28), **params), torch.zeros(1), torch.ones(1))
    network.set_compute(precision, channels_last, compile)
    return network, torch.optim.Adam(network.parameters(), lr=1e-3)


def images_per_second(network, optimizer, images, labels, steps: int) -> float:
    network.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(network(images), labels).backward()
        optimizer.step()

    for _ in range(3):  # warm-up (and compilation)
        step()
    began = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * len(images) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; "
          f"precision='auto' means {autocast_dtype('auto', 'cpu')} here; batch {args.batch_size}")
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch_size, 1, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (args.batch_size,), generator=generator)
    accurate = PRESETS["accurate"]
    models = [("simple_cnn", "simple_cnn", {}), ("bn_cnn (accurate preset)", accurate["backbone"], accurate["backbone_params"])]
    print("| network | precision | channels_last | compile | images/s (median) | vs fp32 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, backbone, params in models:
        modes = MODES + ([] if args.no_compile else [("bf16", True, True)])
        built = {mode: make(backbone, params, *mode) for mode in modes}
        rates: dict[tuple, list[float]] = {mode: [] for mode in modes}
        for _ in range(args.repeats):
            for mode in modes:
                rates[mode].append(images_per_second(*built[mode], images, labels, args.steps))
        base = statistics.median(rates[MODES[0]])
        for mode in modes:
            rate = statistics.median(rates[mode])
            print(f"| {label} | {mode[0]} | {mode[1]} | {mode[2]} | {rate:.0f} | {rate / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()

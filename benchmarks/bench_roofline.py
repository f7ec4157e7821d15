"""How close training gets to the machine's limit: FLOPs per training image against a practical peak.

For the default recipe (``accurate`` preset: ``bn_cnn``) and the ``fast`` preset (``simple_cnn``) on
28x28 grayscale images, in the numerics ``fit`` uses here (``precision="auto"``, channels-last):

- the FLOPs of one training step per image (forward + backward of the network, counted by
  :class:`torch.utils.flop_counter.FlopCounterMode`: convolutions and matrix products; the
  elementwise work of BatchNorm, ReLU, pooling, dropout and Adam is not counted);
- the practical peak: the GFLOP/s of a large square matrix product in the same dtype (bfloat16
  where ``precision="auto"`` means bfloat16, else float32), best of a few runs, at the same thread
  count: what this machine's math library reaches on the easiest workload;
- the bare training step's images/s (Adam, pre-made batches, as ``bench_compute.py``, with the
  heap reserve ``fit`` keeps), hence the achieved GFLOP/s and achieved / peak.

Usage::

    python benchmarks/bench_roofline.py [--threads N] [--batch-size 128] [--steps 20] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_compute import make  # noqa: E402 - the same network construction as the compute benchmark

from sklearn_imgcls._core.allocator import pad_heap  # noqa: E402
from sklearn_imgcls._core.network import autocast_dtype  # noqa: E402
from sklearn_imgcls.presets import PRESETS  # noqa: E402


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(dtype: torch.dtype, device: str, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` timings of a ``size`` x ``size`` matrix product (2 n^3 FLOPs)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        began = time.perf_counter()
        torch.matmul(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - began)
    return 2 * size ** 3 / best / 1e9


def step_flops(network: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> int:
    """FLOPs of one forward + backward of ``network`` on the batch (convolutions and matrix products)."""
    counter = FlopCounterMode(display=False)
    with counter:
        nn.functional.cross_entropy(network(images), labels).backward()
    network.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def step_images_per_second(network: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                           labels: torch.Tensor, steps: int, device: str) -> float:
    """Images/s of the bare training step, best of three runs of ``steps`` steps after three warm-up steps."""
    network.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(network(images), labels).backward()
        optimizer.step()

    for _ in range(3):
        step()
    best = float("inf")
    for _ in range(3):
        synchronize(device)
        began = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        best = min(best, time.perf_counter() - began)
    return steps * len(images) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    reserve = pad_heap()  # the heap reserve fit keeps (SKLEARN_IMGCLS_MALLOC_TOP_PAD=0: without)
    dtype = autocast_dtype("auto", args.device) or torch.float32
    peak = matmul_peak(dtype, args.device)
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads, "
          f"precision 'auto' = {dtype}; practical peak: {peak:,.0f} GFLOP/s "
          f"(best 2048x2048 {str(dtype).replace('torch.', '')} matmul); batch {args.batch_size}; heap reserve "
          f"{reserve >> 20} MiB")
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch_size, 1, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (args.batch_size,), generator=generator)
    images, labels = images.to(args.device), labels.to(args.device)
    print("| network | MFLOPs per training image | bare step images/s | achieved GFLOP/s | achieved / peak |")
    print("| --- | --- | --- | --- | --- |")
    accurate = PRESETS["accurate"]
    for label, backbone, params in (("bn_cnn (accurate preset)", accurate["backbone"], accurate["backbone_params"]),
                                    ("simple_cnn (fast preset)", "simple_cnn", {})):
        network, optimizer = make(backbone, params, "auto", True, False)
        network.to(args.device)
        optimizer = type(optimizer)(network.parameters(), lr=1e-3)
        per_image = step_flops(network, images, labels) / args.batch_size
        rate = step_images_per_second(network, optimizer, images, labels, args.steps, args.device)
        achieved = per_image * rate / 1e9
        print(f"| {label} | {per_image / 1e6:.1f} | {rate:,.0f} | {achieved:,.1f} | {achieved / peak:.1%} |")


if __name__ == "__main__":
    main()

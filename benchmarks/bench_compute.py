"""Training-step throughput of the built-in CNNs under each compute option, in one process.

For ``simple_cnn`` (the ``fast`` preset) and the default ``bn_cnn`` recipe,
times Adam training steps on random 28x28 uint8 batches through
:class:`~sklearn_imgcls._core.network.ImageNetwork` with every combination of
``precision`` (fp32 / bf16 autocast) and ``channels_last``, and with
``compile=True`` for the default settings. Modes alternate within each
repeat, so machine noise hits all of them alike; the median images/s is
reported, with the ratio to plain fp32.

With ``--fit-vs-step`` it instead compares ``CNNClassifier.fit`` with the
bare training step of the same network and numerics (issue #17), for the
default recipe (with and without its augmentation) and the ``fast`` preset.
Per repeat, in alternating order, it times one epoch's worth of images
(``--n-images``, Fashion-MNIST when installed, else random) as:

- ``step``: network forward + backward + Adam step on one pre-made uint8 batch;
- ``step+aug``: the same, augmenting the batch as ``fit`` does every step;
- ``loop``: a hand-written loop over the iterator ``fit`` uses (shuffled
  batches sliced from the in-memory images, augmented) with the one-cycle
  learning-rate schedule, without skorch;
- ``fit``: ``CNNClassifier(max_epochs=2, validation_fraction=None).fit``,
  images/s from each epoch's duration (epoch 2; epoch 1, with warm-up,
  reported apart), in a new Python process each time as a user's script
  runs it (``--fit-process same``: in this process, beside the other
  modes' networks, where it measured 10-30 % slower than in a fresh one),
  timed by a callback on the same clock as the others:
  wall time (as ``dur`` in ``history_``) or, with ``--clock cpu``, the
  process's CPU time, which a shared machine disturbs less (use it with
  ``--threads 1``: with more, threads waiting at barriers spin on the CPU).

A first, discarded round warms every mode up. Medians over repeats are printed side by side with ``fit / step``. Add
``--profile`` for the top cProfile items of one such fit.

Usage::

    python benchmarks/bench_compute.py [--batch-size 128] [--steps 20] [--repeats 3] [--no-compile]
    python benchmarks/bench_compute.py --fit-vs-step [--n-images 6000] [--repeats 5] [--threads N] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn

from sklearn_imgcls import build_backbone
from sklearn_imgcls._core.network import ImageNetwork, autocast_dtype, to_float_images
from sklearn_imgcls.datasets import load_fashion_mnist
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


def load_images(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The first ``n`` Fashion-MNIST training images (uint8, 28x28), or random ones when it is not installed."""
    try:
        X, y, _, _ = load_fashion_mnist()
        return X[:n], y[:n], "Fashion-MNIST"
    except ValueError:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n), "random"


def recipes() -> list[tuple[str, dict, str, dict, list | None]]:
    """(label, CNNClassifier arguments, backbone, backbone_params, augment items) of each compared recipe."""
    accurate, fast = PRESETS["accurate"], PRESETS["fast"]
    return [
        ("default (bn_cnn, random_crop)", {}, accurate["backbone"], accurate["backbone_params"], accurate["augment"]),
        ("default, augment=None", {"augment": None}, accurate["backbone"], accurate["backbone_params"], None),
        ("fast preset (simple_cnn)", {"preset": "fast"}, fast["backbone"], fast["backbone_params"] or {}, fast["augment"]),
    ]


#: the clock of --fit-vs-step: wall time, or (``--clock cpu``) this process's CPU time, steadier on a shared machine
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
CLOCK_NAME = {function: name for name, function in CLOCK.items()}
clock = time.perf_counter


class EpochClock(Callback):
    """skorch callback: each epoch's duration on :data:`clock` (``dur`` in ``history_`` is wall time)."""

    def initialize(self) -> "EpochClock":  # noqa: D102 - skorch API
        self.durations_: list[float] = []
        return self

    def on_epoch_begin(self, net, **kwargs) -> None:  # noqa: D102 - skorch API
        self.began_ = clock()

    def on_epoch_end(self, net, **kwargs) -> None:  # noqa: D102 - skorch API
        self.durations_.append(clock() - self.began_)


def train_seconds(network, optimizer, batches, scheduler=None) -> float:
    """Seconds to train on ``batches`` (an iterable of ``(images, labels)``; producing them counts)."""
    network.train()
    began = clock()
    for images, labels in batches:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(network(images), labels).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return clock() - began


def fit_epochs(label: str, X: np.ndarray, y: np.ndarray) -> list[float]:
    """Durations of the 2 epochs of ``CNNClassifier(...).fit`` for recipe ``label``, in this process."""
    from sklearn_imgcls import CNNClassifier

    kwargs = {name: params for name, params, *_ in recipes()}[label]
    timer = EpochClock()
    CNNClassifier(max_epochs=2, validation_fraction=None, random_state=0, verbose=0, callbacks=[timer],
                  **kwargs).fit(X, y)
    return timer.durations_


def fit_in_fresh_process(label: str, n_images: int) -> list[float]:
    """:func:`fit_epochs` in a new Python process (same threads and clock), as a user's script runs ``fit``."""
    command = [sys.executable, __file__, "--fit-once", label, "--n-images", str(n_images),
               "--threads", str(torch.get_num_threads()), "--clock", CLOCK_NAME[clock]]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def fit_vs_step(n_images: int, batch_size: int, repeats: int, profile: bool, fit_process: str = "fresh") -> None:
    """Print ``fit``'s images/s beside the bare training step's, per recipe (see the module docstring)."""
    from skorch.dataset import Dataset

    from sklearn_imgcls import CNNClassifier
    from sklearn_imgcls._core.allocator import ENVIRONMENT_VARIABLE, pad_heap
    from sklearn_imgcls._core.iterators import BatchIterator, augment_batch
    from sklearn_imgcls.plugin.registry import ComponentChain

    print(f"heap reserve kept by malloc: {pad_heap()} bytes ({ENVIRONMENT_VARIABLE}=0 measures without; "
          "fit sets it too, so it applies to every mode)")
    X, y, source = load_images(n_images)
    X_tensor, y_tensor = torch.from_numpy(X).unsqueeze(1), torch.from_numpy(y.astype(np.int64))
    steps = -(-len(X) // batch_size)
    print(f"{len(X)} {source} images, batch {batch_size} ({steps} steps per epoch), precision 'auto' = "
          f"{autocast_dtype('auto', 'cpu')}, channels_last; {repeats} repeats, modes interleaved; medians "
          f"of {'CPU' if clock is time.process_time else 'wall'} time")
    fixed = X_tensor[:batch_size].contiguous(), y_tensor[:batch_size].contiguous()
    rows = []
    for label, _, backbone, params, augment_items in recipes():
        augment = ComponentChain("augmentation", augment_items).build() if augment_items else None
        generator = torch.Generator().manual_seed(0)

        def augmented(batch, augment=augment, generator=generator):
            return augment_batch(augment, to_float_images(batch[0]), batch[1], generator)

        network, optimizer = make(backbone, params, "auto", True, False)
        optimizer.param_groups[0]["lr"] = 2e-3
        iterator = BatchIterator(Dataset(X_tensor, y_tensor), batch_size, shuffle=True, generator=generator,
                                 augment=augment, num_classes=10)
        seconds: dict[str, list[float]] = {"step": [], "step+aug": [], "loop": [], "fit": [], "fit epoch 1": []}
        for repeat in range(repeats + 1):  # the first round warms every mode up and is discarded
            if repeat == 1:
                seconds = {mode: [] for mode in seconds}
            seconds["step"].append(train_seconds(network, optimizer, [fixed] * steps))
            if augment is not None:
                seconds["step+aug"].append(train_seconds(network, optimizer, (augmented(fixed) for _ in range(steps))))
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps + 1)
            seconds["loop"].append(train_seconds(network, optimizer, iterator, schedule))
            durations = fit_in_fresh_process(label, n_images) if fit_process == "fresh" else fit_epochs(label, X, y)
            seconds["fit epoch 1"].append(durations[0])
            seconds["fit"].append(durations[1])
        rate = {mode: len(X) / statistics.median(values) for mode, values in seconds.items() if values}
        rows.append((label, rate))
    print("| recipe | step | step+aug | loop (iterator + schedule) | fit (epoch 2) | fit (epoch 1) "
          "| fit / step | fit / step+aug | fit / loop |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, rate in rows:
        step_aug = rate.get("step+aug")
        with_aug = (f"{step_aug:.0f}", f"{rate['fit'] / step_aug:.3f}") if step_aug else ("-", "-")
        print(f"| {label} | {rate['step']:.0f} | {with_aug[0]} | {rate['loop']:.0f} | {rate['fit']:.0f} | "
              f"{rate['fit epoch 1']:.0f} | {rate['fit'] / rate['step']:.3f} | {with_aug[1]} | "
              f"{rate['fit'] / rate['loop']:.3f} |", flush=True)
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        CNNClassifier(max_epochs=2, validation_fraction=None, random_state=0, verbose=0).fit(X, y)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main() -> None:
    global clock
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--fit-vs-step", action="store_true", help="compare fit with the bare training step")
    parser.add_argument("--n-images", type=int, default=6000, help="images per epoch (--fit-vs-step)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--clock", choices=sorted(CLOCK), default="wall",
                        help="time on the wall clock or the process's CPU time (--fit-vs-step)")
    parser.add_argument("--profile", action="store_true", help="cProfile one fit of the default (--fit-vs-step)")
    parser.add_argument("--fit-process", choices=["fresh", "same"], default="fresh",
                        help="time each fit in a new process, as a user's script runs it (default), or in this one")
    parser.add_argument("--fit-once", metavar="RECIPE", help=argparse.SUPPRESS)  # one fit, durations as JSON
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.fit_once:
        clock = CLOCK[args.clock]
        X, y, _ = load_images(args.n_images)
        print(json.dumps(fit_epochs(args.fit_once, X, y)))
        return
    if args.fit_vs_step:
        clock = CLOCK[args.clock]
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        fit_vs_step(args.n_images, args.batch_size, args.repeats, args.profile, args.fit_process)
        print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return
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

"""Train a CNNClassifier on digits under several processes and write what each process saw.

Used by ``tests/test_accelerate_launch.py`` and ``benchmarks/bench_accelerate.py``::

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/helpers/ddp_digits.py --out run2 --batch-size 16
    accelerate launch --multi_gpu --num_processes 2 tests/helpers/ddp_digits.py ...   # the same, on CPUs too
    python tests/helpers/ddp_digits.py --out run1 --batch-size 32 --single   # one process, same global batch

(``accelerate launch --cpu --num_processes 2`` starts ONE process in
accelerate 1.15: its CPU launcher needs MPI, ``--mpirun_hostfile``.) The
script builds ``Accelerator(cpu=True)``: gloo between the processes.

Every process writes ``<out>/evidence-rank<R>.json``: per epoch the train and
validation loss and accuracy its history recorded (with each training batch's
loss), a float64 checksum of its parameters and the largest absolute
difference between its parameters and those of every other process
(gathered after each epoch), and the accuracy of the fitted model on
held-out digits. ``--checkpoint`` adds a ``TrainingCheckpoint`` into
``<out>/checkpoint``; every process then calls
``clf.save(<out>/model.safetensors)`` (the package lets only the main process
write). ``--single`` trains without an accelerator (the reference).

The defaults make the runs comparable exactly: float32 (``precision="auto"``
is bfloat16 on this CPU, where a 32-image batch and two 16-image halves
differ by ~1e-3 relative in their gradients), SGD (Adam's first step,
``g / (|g| + eps)``, turns rounding noise in near-zero gradients into full
steps), no dropout or BatchNorm (per-process random masks, per-process batch
statistics), no augmentation, and a training split (288) that is a multiple
of the global batch (32), so no process trains on padding.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from skorch.callbacks import Callback

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls.checkpoints import TrainingCheckpoint
from sklearn_imgcls.datasets import load_digits_images


def flat_parameters(net) -> torch.Tensor:
    """All parameters of the net's (unwrapped) module, as one float64 vector."""
    module = net.module_
    accelerator = getattr(net, "accelerator", None)
    if accelerator is not None:
        module = accelerator.unwrap_model(module)
    return torch.cat([p.detach().reshape(-1).double().cpu() for p in module.parameters()])


class SyncProbe(Callback):
    """After every epoch: the parameter checksum, and the max |difference| to the other processes' parameters."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def on_train_begin(self, net, **kwargs) -> None:  # noqa: D102
        self.initial_checksum = float(flat_parameters(net).sum())

    def on_epoch_end(self, net, **kwargs) -> None:  # noqa: D102
        params = flat_parameters(net)
        accelerator = getattr(net, "accelerator", None)
        if accelerator is not None and accelerator.num_processes > 1:
            everyone = accelerator.gather(params.float().reshape(1, -1)).double()  # (processes, n)
            max_diff = float((everyone - params.reshape(1, -1)).abs().max())
        else:
            max_diff = 0.0
        row = net.history[-1]
        self.rows.append({
            "epoch": int(row["epoch"]),
            "param_checksum": float(params.sum()),
            "param_abs_checksum": float(params.abs().sum()),
            "max_param_diff_to_other_ranks": max_diff,
            **{key: float(row[key]) for key in ("train_loss", "valid_loss", "valid_acc") if key in row},
            **{key: int(row[key]) for key in ("train_batch_count", "valid_batch_count") if key in row},
            "train_batch_losses": [float(b["train_loss"]) for b in row["batches"] if "train_loss" in b],
        })


def digits(n_train: int, n_test: int) -> tuple:
    """A stratified train set of ``n_train`` digits and a disjoint test set of ``n_test``."""
    from sklearn.model_selection import train_test_split

    X, y = load_digits_images()
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, train_size=n_train, stratify=y, random_state=0)
    return X_train, y_train, X_rest[:n_test], y_rest[:n_test]


def run(argv: list[str] | None = None) -> dict:
    """Parse ``argv`` (the command line's arguments), train, write and return this process's evidence."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch-size", type=int, default=16, help="per process")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=360)
    parser.add_argument("--n-test", type=int, default=400)
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--optimizer", default="sgd", help="sgd (default) or adam: see the module docstring")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--precision", default="fp32", help="the estimator's precision (auto: bf16 on this CPU)")
    parser.add_argument("--checkpoint", action="store_true")
    parser.add_argument("--single", action="store_true", help="one process, no accelerator (the reference run)")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    accelerator = None
    rank, processes = 0, 1
    if not args.single:
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=True)
        rank, processes = accelerator.process_index, accelerator.num_processes
    os.makedirs(args.out, exist_ok=True)
    X_train, y_train, X_test, y_test = digits(args.n_train, args.n_test)
    probe = SyncProbe()
    callbacks = [("sync_probe", probe)]
    if args.checkpoint:
        callbacks.append(("checkpoint", TrainingCheckpoint(os.path.join(args.out, "checkpoint"))))
    clf = CNNClassifier(
        "simple_cnn", backbone_params={"channels": (8, 16), "hidden": 32, "dropout": 0.0},  # no dropout, no BatchNorm:
        image_shape=(1, 8, 8), max_epochs=args.epochs, batch_size=args.batch_size,  # the runs can agree exactly
        precision=args.precision, optimizer=args.optimizer, lr=args.lr, lr_schedule="constant", augment=None, validation_fraction=args.validation_fraction or None,
        random_state=0, num_threads=1, verbose=1, callbacks=callbacks, accelerator=accelerator)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    clf.set_params(callbacks=None).save(os.path.join(args.out, "model.safetensors"))  # on every process
    evidence = {
        "rank": rank, "processes": processes, "pid": os.getpid(), "fit_seconds": seconds,
        "batch_size_per_process": args.batch_size, "global_batch_size": args.batch_size * processes,
        "epochs": probe.rows, "test_accuracy": float(clf.score(X_test, y_test)),
        "initial_param_checksum": probe.initial_checksum,
        "final_param_checksum": float(flat_parameters(clf.net_).sum()),
    }
    with open(os.path.join(args.out, f"evidence-rank{rank}.json"), "w") as handle:
        json.dump(evidence, handle, indent=1)
    return evidence


if __name__ == "__main__":
    run()

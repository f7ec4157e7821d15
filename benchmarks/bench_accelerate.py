"""Two CPU processes (gloo) against one, with the same global batch: sync evidence and accuracy side by side.

    .venv/bin/python benchmarks/bench_accelerate.py [--epochs 15] [--n-train 1440]

Launches ``tests/helpers/ddp_digits.py`` with ``python -m torch.distributed.run --standalone
--nproc_per_node 2`` (per-process batch 16) and once as a single process without an accelerator
(batch 32), then prints a markdown table: per epoch the largest parameter difference between the
ranks, the train / validation loss and validation accuracy of both runs, and the held-out test
accuracy. The training split (80 % of --n-train) should be a multiple of 32 for an exact comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELPER = Path(__file__).resolve().parents[1] / "tests" / "helpers" / "ddp_digits.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--n-train", type=int, default=1440)
    parser.add_argument("--n-test", type=int, default=357)
    args = parser.parse_args()
    common = ["--epochs", str(args.epochs), "--n-train", str(args.n_train), "--n-test", str(args.n_test)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for name, command in {
            "two": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(HELPER),
                    "--out", f"{tmp}/two", "--batch-size", "16", *common],
            "one": [sys.executable, str(HELPER), "--out", f"{tmp}/one", "--batch-size", "32", "--single", *common],
        }.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            runs[name] = [json.loads(p.read_text()) for p in sorted(Path(tmp, name).glob("evidence-rank*.json"))]
            runs[name][0]["wall_seconds"] = wall
    two, one = runs["two"][0], runs["one"][0]
    print("| epoch | max param diff rank0 vs rank1 | train loss 2p / 1p | valid loss 2p / 1p | valid acc 2p / 1p |")
    print("|---|---|---|---|---|")
    for a, b in zip(two["epochs"], one["epochs"]):
        print(f"| {a['epoch']} | {a['max_param_diff_to_other_ranks']:.1e} | {a['train_loss']:.6f} / {b['train_loss']:.6f} "
              f"| {a['valid_loss']:.6f} / {b['valid_loss']:.6f} | {a['valid_acc']:.4f} / {b['valid_acc']:.4f} |")
    print(f"\ntest accuracy ({args.n_test} held-out digits): 2 processes {two['test_accuracy']:.4f} (rank 1: "
          f"{runs['two'][1]['test_accuracy']:.4f}), 1 process {one['test_accuracy']:.4f}")
    print(f"max |train loss 2p - 1p| over epochs: "
          f"{max(abs(a['train_loss'] - b['train_loss']) for a, b in zip(two['epochs'], one['epochs'])):.1e}; "
          f"final parameter checksums {two['final_param_checksum']:.6f} / {one['final_param_checksum']:.6f}")
    print(f"fit seconds: 2 processes {two['fit_seconds']:.1f} (wall with launch {two['wall_seconds']:.1f}), "
          f"1 process {one['fit_seconds']:.1f} (wall {one['wall_seconds']:.1f})")


if __name__ == "__main__":
    main()

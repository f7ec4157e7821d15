"""Data-parallel training that has run: two CPU processes (gloo) launched by torch.distributed.run.

The launch trains on 288 digits (+72 validation) for 3 epochs with a per-process batch of 16; the
reference is the same fit in this process, without an accelerator, with a batch of 32 (the same
global batch, the same seeded order and split). See tests/helpers/ddp_digits.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sklearn_imgcls._core.iterators import BatchIterator
from skorch.dataset import Dataset

HELPER = Path(__file__).parent / "helpers" / "ddp_digits.py"


def _helper():
    spec = importlib.util.spec_from_file_location("ddp_digits", HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def launch(out: Path) -> tuple[Path, str, list]:
    """Run the helper on two processes; return (output folder, launcher stdout, evidence of each rank)."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(HELPER),
         "--out", str(out), "--batch-size", "16", "--epochs", "3", "--checkpoint"],
        capture_output=True, text=True, env=env, timeout=240, cwd=out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    evidence = [json.loads((out / f"evidence-rank{rank}.json").read_text()) for rank in (0, 1)]
    return out, result.stdout, evidence


def test_two_processes_train_in_sync_like_one_and_write_once(tmp_path):
    """One launch (it costs ~15 s), three checks: sync, agreement with one process, one writer."""
    launched = launch(tmp_path / "two")
    check_parameters_are_identical_on_both_ranks_after_every_epoch(launched)
    check_two_processes_match_one_process_with_the_same_global_batch(launched, tmp_path / "one")
    check_only_rank_0_writes_the_checkpoint_the_model_and_the_log(launched)


def check_parameters_are_identical_on_both_ranks_after_every_epoch(launched):
    _, _, (rank0, rank1) = launched
    assert rank0["processes"] == rank1["processes"] == 2 and rank0["pid"] != rank1["pid"]
    assert len(rank0["epochs"]) == len(rank1["epochs"]) == 3
    for row0, row1 in zip(rank0["epochs"], rank1["epochs"]):
        assert row0["max_param_diff_to_other_ranks"] == row1["max_param_diff_to_other_ranks"] == 0.0
        assert row0["param_checksum"] == row1["param_checksum"]
        # what each rank recorded agrees too (early stopping and the divergence guard decide alike)
        for key in ("train_loss", "valid_loss", "valid_acc", "train_batch_count", "valid_batch_count"):
            assert row0[key] == row1[key], key
    assert rank0["epochs"][-1]["param_checksum"] != rank0["initial_param_checksum"]  # it did train


def check_two_processes_match_one_process_with_the_same_global_batch(launched, tmp_path):
    """Tolerance: the same arithmetic, summed in another order (16 + 16 then an all-reduce, vs 32).

    float32 rounding differs at ~1e-7 relative; three epochs of SGD keep the losses within 1e-5 and
    the parameter checksums within 1e-5 relative; accuracies may differ by at most one image.
    """
    _, _, (rank0, _) = launched
    single = _helper().run(["--out", str(tmp_path), "--batch-size", "32", "--epochs", "3", "--single"])
    # each process trains 9 steps of 16 (the global batch of 32), as the one process does with 32
    assert [r["train_batch_count"] for r in rank0["epochs"]] == [r["train_batch_count"] for r in single["epochs"]] == [9] * 3
    assert rank0["initial_param_checksum"] == single["initial_param_checksum"]
    assert rank0["epochs"][0]["train_batch_losses"][0] == pytest.approx(single["epochs"][0]["train_batch_losses"][0], abs=1e-6)
    for two, one in zip(rank0["epochs"], single["epochs"]):
        assert two["train_loss"] == pytest.approx(one["train_loss"], abs=1e-5)
        assert two["valid_loss"] == pytest.approx(one["valid_loss"], abs=1e-5)
        assert abs(two["valid_acc"] - one["valid_acc"]) <= 1 / 72 + 1e-12  # 72 validation images
        assert two["param_checksum"] == pytest.approx(one["param_checksum"], rel=1e-5, abs=1e-5)
    assert abs(rank0["test_accuracy"] - single["test_accuracy"]) <= 1 / 400 + 1e-12


def check_only_rank_0_writes_the_checkpoint_the_model_and_the_log(launched):
    out, stdout, _ = launched
    from sklearn_imgcls.persistence import load

    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["checkpoint/epoch-0003/criterion.pt", "checkpoint/epoch-0003/history.json",
                     "checkpoint/epoch-0003/manifest.json", "checkpoint/epoch-0003/optimizer.pt",
                     "checkpoint/epoch-0003/params.pt", "checkpoint/epoch-0003/state.pt", "checkpoint/latest.json",
                     "evidence-rank0.json", "evidence-rank1.json", "model.safetensors"]  # no temporaries, no duplicates
    model = load(out / "model.safetensors")  # complete and checksummed: one writer
    assert model.accelerator is None and len(model.history_) == 3
    manifest = json.loads((out / "checkpoint/epoch-0003/manifest.json").read_text())
    assert manifest["epochs"] == 3
    assert stdout.count("train_loss") == 1 and stdout.count("valid_loss") == 1  # one epoch table (rank 0's)
    assert len([line for line in stdout.splitlines() if line.strip().startswith(("1 ", "2 ", "3 "))]) == 3


def test_sharded_batches_are_dealt_as_accelerate_deals_them():
    """Every rank takes the same number of equally sized steps; in rank order they are the epoch's order + padding."""
    X, y = torch.arange(23.0).view(23, 1, 1, 1), torch.arange(23)
    shards = []
    for rank in range(3):
        it = BatchIterator(Dataset(X, y), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(5),
                           shard=(rank, 3))
        shards.append([yb for _, yb in it])
        assert len(it) == len(shards[-1]) == 2
    assert {len(b) for batches in shards for b in batches} == {4}
    order = torch.randperm(23, generator=torch.Generator().manual_seed(5))
    dealt = torch.cat([shards[rank][step] for step in range(2) for rank in range(3)])
    assert dealt[:23].tolist() == order.tolist()  # gathered round by round: the order, then
    assert dealt[23:].tolist() == order[:1].tolist()  # the last round padded from its start

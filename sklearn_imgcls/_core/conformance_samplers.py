"""Conformance checks for samplers (see :mod:`sklearn_imgcls.testing`).

A per-epoch sampler (``stage="epoch"``) is checked on 40 labels of 3
classes; a training-split resampler (``stage="training_split"``) on a 40x12
float array, as :mod:`sklearn_imgcls.plugin.specs` declares them.
"""

from __future__ import annotations

from .conformance import CheckContext, conformance_check, seeded_generator

__all__ = ["SAMPLER_CHECKS", "check_sampler_epoch", "check_sampler_seeded", "check_sampler_training_split"]


def _labels():
    import torch

    return torch.tensor([0] * 20 + [1] * 12 + [2] * 8, dtype=torch.int64)


def _build_sampler(ctx: CheckContext):
    return ctx.call("build()", ctx.spec.build, fix="build(**params) must work with the default params")


@conformance_check("sampler", applies=lambda spec: getattr(spec, "stage", "epoch") == "epoch")
def check_sampler_epoch(ctx: CheckContext) -> None:
    """stage="epoch": ``sample(y, generator)`` returns a non-empty 1-D int64 tensor of indices into y."""
    import torch

    sample = _build_sampler(ctx)
    ctx.require(callable(sample) or not hasattr(sample, "fit_resample"),
                "build() returned an object with fit_resample, but the spec declares stage='epoch'",
                "declare SamplerSpec(..., stage='training_split')")
    ctx.require(callable(sample), f"build() returned {type(sample).__name__}, not a callable",
                "return sample(y, generator), or declare stage='training_split' for a fit_resample object")
    y = _labels()
    idx = ctx.call("sample(y, generator)", sample, y, seeded_generator(0))
    ctx.require(isinstance(idx, torch.Tensor) and idx.ndim == 1 and idx.dtype == torch.int64,
                f"sample(y, generator) returned {type(idx).__name__} {getattr(idx, 'dtype', '')} "
                f"{tuple(getattr(idx, 'shape', ()))}", "return a 1-D torch.int64 tensor of indices")
    ctx.require(len(idx) > 0 and int(idx.min()) >= 0 and int(idx.max()) < len(y),
                f"sample(y, generator) returned indices outside [0, {len(y)}) (or none)",
                "return positions into y, e.g. from torch.nonzero(y == c)")


@conformance_check("sampler", applies=lambda spec: getattr(spec, "stage", "epoch") == "epoch")
def check_sampler_seeded(ctx: CheckContext) -> None:
    """stage="epoch": generators with the same seed give the same indices, whatever torch's global seed."""
    import torch

    results = []
    for global_seed in (11, 12):
        sample = _build_sampler(ctx)
        torch.manual_seed(global_seed)
        results.append(ctx.call("sample(y, generator)", sample, _labels(), seeded_generator(42)))
    ctx.require(torch.equal(results[0], results[1]),
                "the same generator seed gave different indices (it draws from torch's global random state?)",
                "draw every random number from the generator argument")


@conformance_check("sampler", applies=lambda spec: getattr(spec, "stage", "epoch") == "training_split")
def check_sampler_training_split(ctx: CheckContext) -> None:
    """stage="training_split": ``fit_resample(X, y)`` returns matching rows and known labels, repeatably."""
    import numpy as np

    sampler = _build_sampler(ctx)
    ctx.require(callable(getattr(sampler, "fit_resample", None)),
                f"build() returned {type(sampler).__name__} without fit_resample(X, y)",
                "return an imbalanced-learn style object, or declare stage='epoch' for sample(y, generator)")
    y = _labels().numpy()
    X = np.random.default_rng(0).random((len(y), 12)).astype(np.float32)
    results = []
    for _ in range(2):
        if hasattr(sampler, "get_params") and "random_state" in sampler.get_params():
            sampler.set_params(random_state=0)  # the estimator passes its own seed the same way
        results.append(ctx.call("fit_resample(X, y)", sampler.fit_resample, X, y))
    X_new, y_new = (np.asarray(a) for a in results[0])
    ctx.require(X_new.ndim == 2 and X_new.shape[1] == X.shape[1] and len(X_new) == len(y_new) > 0,
                f"fit_resample returned X {X_new.shape} and y {y_new.shape} for X {X.shape}",
                "return (X_resampled, y_resampled) with the same columns and one label per row")
    ctx.require(set(np.unique(y_new)) <= set(np.unique(y)), "fit_resample returned labels not in y",
                "only resample the classes it is given")
    ctx.require(all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(results[0], results[1])),
                "two fit_resample runs with random_state=0 differ",
                "expose random_state in get_params/set_params and use it")


SAMPLER_CHECKS = (check_sampler_epoch, check_sampler_seeded, check_sampler_training_split)

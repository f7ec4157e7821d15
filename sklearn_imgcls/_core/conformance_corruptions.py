"""The corruption contract: the severity rule every corruption follows, and its conformance checks.

A corruption (:class:`~sklearn_imgcls.plugin.specs.CorruptionSpec`) is built
as ``corrupt(images, severity, generator)``; the severity rule every corruption
follows lives in :mod:`sklearn_imgcls.plugin.severity` (public, so plugins
reuse it). The ``check_corruption_*`` functions hold any plugin's corruption to
the contract (see :func:`sklearn_imgcls.testing.check_corruption`) on
:func:`sample_images`, scikit-learn's digits upscaled: real strokes and
smooth backgrounds, so that blur, compression and pixelation have something
to change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..plugin.specs import CorruptionSpec
from .conformance import CheckContext, conformance_check, require_common_fields, seeded_generator

if TYPE_CHECKING:
    import torch

__all__ = [
    "CORRUPTION_CHECKS",
    "check_corruption_batch",
    "check_corruption_fields",
    "check_corruption_monotone",
    "check_corruption_seeded",
    "check_corruption_severity_range",
    "sample_images",
]


def sample_images(n: int = 10, channels: int = 1, size: tuple[int, int] = (16, 16)) -> "torch.Tensor":
    """A fixed batch of natural-ish images: scikit-learn's digits, upscaled, optionally coloured.

    Parameters
    ----------
    n : int
        Number of images (the digits 0, 1, 2, ... in turn).
    channels : int
        1: grey strokes on black. Otherwise each channel blends a coloured
        stroke with a smooth coloured background gradient.
    size : tuple of int
        ``(H, W)``; the 8x8 digits are resized bilinearly (antialiased).

    Returns
    -------
    torch.Tensor
        ``(n, channels, H, W)`` float32 in ``[0, 1]``.
    """
    import torch
    from sklearn.datasets import load_digits

    digits = torch.as_tensor(load_digits().images[:n], dtype=torch.float32)[:, None] / 16
    strokes = torch.nn.functional.interpolate(digits, size=tuple(size), mode="bilinear", antialias=True,
                                              align_corners=False).clamp(0, 1)
    if channels == 1:
        return strokes.contiguous()
    h, w = size
    ramp = (torch.linspace(0, 1, h)[:, None] + torch.linspace(0, 1, w)[None, :]) / 2  # (H, W)
    phase = torch.arange(channels, dtype=torch.float32)[:, None, None] / channels
    colours = (torch.arange(n, dtype=torch.float32)[:, None] * 0.37 + phase[None, :, 0, 0]) % 1  # (n, C)
    background = (0.2 + 0.5 * ((ramp[None] + phase) % 1))[None]  # (1, C, H, W)
    stroke = 0.5 + 0.5 * colours[:, :, None, None]
    return (strokes * stroke + (1 - strokes) * background).clamp(0, 1).contiguous()


# -- the checks --------------------------------------------------------------------------------------

def _build(ctx: CheckContext):
    corrupt = ctx.call("build()", ctx.spec.build, fix="build(**params) must work with the default params")
    ctx.require(callable(corrupt), f"build() returned {type(corrupt).__name__}, not a callable",
                "return corrupt(images, severity, generator)")
    return corrupt


def _corrupt(ctx: CheckContext, corrupt: Any, images: Any, severity: int, seed: int):
    import torch

    what = f"corrupt(a float {tuple(images.shape)} batch, severity={severity}, generator)"
    out = ctx.call(what, corrupt, images, severity, seeded_generator(seed),
                   fix="take (images, severity, generator) and work on any number of channels")
    ctx.require(isinstance(out, torch.Tensor), f"{what} returned {type(out).__name__}, not a tensor",
                "return the corrupted batch")
    return out


def _mean_change(corrupted: Any, clean: Any) -> float:
    return float((corrupted.double() - clean.double()).abs().mean())


@conformance_check("corruption")
def check_corruption_fields(ctx: CheckContext) -> None:
    """The spec's fields have the declared types (name, build, description, tags, family, max_severity)."""
    spec = ctx.spec
    ctx.require(isinstance(spec, CorruptionSpec), f"{spec!r} is a {type(spec).__name__}, not a CorruptionSpec",
                "return CorruptionSpec instances from sklearn_imgcls_register_corruptions")
    require_common_fields(ctx, "sensor_noise", "pass the factory function", "listings and reports show it",
                          "pass tags=('deterministic',), not a list")
    ctx.require(isinstance(spec.family, str) and spec.family.strip(), f"family={spec.family!r} is not a word",
                "declare family='noise', 'blur', 'digital', 'occlusion', 'geometry' or your own word")
    ctx.require(isinstance(spec.max_severity, int) and not isinstance(spec.max_severity, bool)
                and spec.max_severity >= 1, f"max_severity={spec.max_severity!r}",
                "declare max_severity as a positive int (5, as in ImageNet-C)")


@conformance_check("corruption")
def check_corruption_batch(ctx: CheckContext) -> None:
    """1-, 3- and 4-channel batches at 8x8 and 12x20 keep shape and dtype, stay in [0, 1]; severity 0 changes
    nothing; the input is not modified in place."""
    import torch

    corrupt = _build(ctx)
    for channels, size in ((1, (8, 8)), (3, (12, 20)), (4, (8, 8))):
        for dtype in (torch.float32, torch.float64) if channels == 1 else (torch.float32,):
            images = sample_images(4, channels, size).to(dtype)
            original = images.clone()
            for severity in range(ctx.spec.max_severity + 1):
                out = _corrupt(ctx, corrupt, images, severity, seed=0)
                ctx.require(out.shape == images.shape and out.dtype == images.dtype,
                            f"at severity {severity} a {tuple(images.shape)} {images.dtype} batch came back as "
                            f"{tuple(out.shape)} {out.dtype}", "keep the batch's shape and dtype, for any channels")
                ctx.require(bool(torch.isfinite(out).all()) and float(out.min()) >= 0 and float(out.max()) <= 1,
                            f"at severity {severity} values leave [0, 1] (or are not finite)",
                            "clamp the result: out.clamp(0, 1)")
                if severity == 0:
                    ctx.require(torch.equal(out, images), "severity 0 changed the images",
                                "return the images unchanged (a copy) at severity 0")
                ctx.require(torch.equal(images, original), f"severity {severity} changed its input in place",
                            "work on a copy or with out-of-place operations")


@conformance_check("corruption")
def check_corruption_seeded(ctx: CheckContext) -> None:
    """The same generator seed gives the same batch whatever torch's global seed; a random corruption draws
    per image (identical images come out different)."""
    import torch

    corrupt = _build(ctx)
    images = sample_images(6, 3, (12, 12))
    severity = ctx.spec.max_severity
    outputs = []
    for global_seed in (11, 12):
        torch.manual_seed(global_seed)
        outputs.append(_corrupt(ctx, corrupt, images, severity, seed=42))
    ctx.require(torch.equal(*outputs),
                "the same generator seed gave different batches (it draws from torch's global random state?)",
                "draw every random number from the generator argument (torch.rand(..., generator=generator))")
    if torch.equal(outputs[0], _corrupt(ctx, corrupt, images, severity, seed=43)):
        return  # deterministic: nothing is drawn
    same = images[:1].expand(6, -1, -1, -1).clone()
    out = _corrupt(ctx, corrupt, same, severity, seed=42)
    ctx.require(not all(torch.equal(out[0], row) for row in out[1:]),
                "six identical images got identical corruptions: one random draw serves the whole batch",
                "draw the random parameters per image (shape (N, ...)), so a report averages over draws")


@conformance_check("corruption")
def check_corruption_severity_range(ctx: CheckContext) -> None:
    """A severity below 0, above ``max_severity`` or not an integer is refused with a ValueError."""
    corrupt = _build(ctx)
    images = sample_images(2, 1, (8, 8))
    top = ctx.spec.max_severity
    for bad in (-1, top + 1, 1.5):
        try:
            corrupt(images, bad, seeded_generator(0))
        except (ValueError, TypeError):
            continue
        except Exception as exc:  # foreign code
            ctx.fail(f"severity={bad!r} raised {type(exc).__name__}, not a ValueError",
                     f"raise ValueError naming the accepted range 0..{top}")
        ctx.fail(f"severity={bad!r} was accepted; the declared range is 0..{top}",
                 f"raise ValueError for severities outside 0..{top} (or declare max_severity)")


@conformance_check("corruption")
def check_corruption_monotone(ctx: CheckContext) -> None:
    """A higher severity changes the images more: the mean absolute change from the clean batch strictly
    increases with severity, on 1-channel 16x16 and 3-channel 12x12 digits."""
    corrupt = _build(ctx)
    for channels, size in ((1, (16, 16)), (3, (12, 12))):
        images = sample_images(10, channels, size)
        changes = [_mean_change(_corrupt(ctx, corrupt, images, s, seed=7), images)
                   for s in range(ctx.spec.max_severity + 1)]
        ctx.require(all(b > a for a, b in zip(changes, changes[1:])),
                    f"mean absolute change by severity on {channels}-channel {size} digits is not increasing: "
                    f"{[round(c, 4) for c in changes]}", "make each severity strictly stronger than the one below")


CORRUPTION_CHECKS = (check_corruption_fields, check_corruption_batch, check_corruption_seeded,
                     check_corruption_severity_range, check_corruption_monotone)

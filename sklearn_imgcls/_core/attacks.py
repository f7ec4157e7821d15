"""Gradient attacks on a torch module: projected gradient ascent (PGD/FGSM) and its KL variant (TRADES).

These work on tensors and a module; :mod:`sklearn_imgcls.robustness` wraps
them for fitted estimators (layouts, dtypes, batching), and the skorch net
uses them for adversarial training.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["perturb", "perturb_kl", "pixel_bounds"]


def perturb(
    module: torch.nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    *,
    steps: int = 10,
    step_size: float | None = None,
    norm: str = "inf",
    random_start: bool = True,
    bounds: tuple[float, float] = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient ascent on the cross-entropy of ``module`` (FGSM is ``steps=1``, no random start).

    Parameters
    ----------
    module : torch.nn.Module
        Maps float images to logits; it is put in eval mode for the attack
        and its previous mode restored.
    images : torch.Tensor
        Float batch ``(N, C, H, W)``.
    targets : torch.Tensor
        Class indices ``(N,)`` or class probabilities ``(N, K)``.
    eps : float
        Radius of the allowed perturbation (L-inf or L2), in image units.
    steps, step_size : int, float or None
        Iterations and their size (default ``2.5 * eps / steps``).
    norm : {"inf", "2"}
        Threat model.
    random_start : bool
        Start from a random point of the ball (Madry et al., 2018).
    bounds : (float, float)
        Valid pixel range the result is clipped to.
    generator : torch.Generator or None
        Randomness of the start.
    """
    _check_norm(norm)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}.")
    if eps == 0:
        return images.detach().clone()
    original = images.detach()
    delta = torch.zeros_like(original)
    if random_start:
        noise = torch.rand(original.shape, generator=generator, dtype=original.dtype).to(original.device) * 2 - 1
        delta = eps * noise if norm == "inf" else _project_l2(noise, eps)
    delta = (original + delta).clamp(*bounds) - original
    with _eval_mode(module):
        return _ascend(module, original, delta, lambda logits: F.cross_entropy(logits, targets),
                       eps, steps, _step(eps, steps, step_size), norm, bounds)


def perturb_kl(
    module: torch.nn.Module,
    images: torch.Tensor,
    eps: float,
    *,
    steps: int = 10,
    step_size: float | None = None,
    norm: str = "inf",
    bounds: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """Points within ``eps`` of ``images`` that move ``module``'s prediction most (KL divergence), as TRADES uses.

    Starts from a tiny Gaussian step (Zhang et al., 2019) and ascends the KL
    divergence between the predictions at the clean and the perturbed images;
    labels are not needed. The module is put in eval mode and restored.
    """
    _check_norm(norm)
    original = images.detach()
    with _eval_mode(module):
        with torch.no_grad():
            target = torch.softmax(module(original), dim=1)
        return _ascend(module, original, 0.001 * torch.randn_like(original),
                       lambda logits: F.kl_div(torch.log_softmax(logits, dim=1), target, reduction="sum"),
                       eps, steps, _step(eps, steps, step_size), norm, bounds)


def _check_norm(norm: str) -> None:
    if norm not in ("inf", "2"):
        raise ValueError(f"norm must be 'inf' or '2', got {norm!r}.")


def _step(eps: float, steps: int, step_size: float | None) -> float:
    return float(step_size) if step_size is not None else 2.5 * eps / max(steps, 1)


@contextlib.contextmanager
def _eval_mode(module: torch.nn.Module):
    """Evaluation mode inside the block (BatchNorm statistics untouched by the attack), then the previous mode."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _ascend(
    module: torch.nn.Module,
    original: torch.Tensor,
    delta: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    eps: float,
    steps: int,
    step: float,
    norm: str,
    bounds: tuple[float, float],
) -> torch.Tensor:
    """Projected gradient ascent of ``objective(module(original + delta))`` within the eps-ball and ``bounds``."""
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(objective(module(original + delta)), delta)
        with torch.no_grad():
            if norm == "inf":
                delta = (delta + step * grad.sign()).clamp(-eps, eps)
            else:
                scale = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (grad.ndim - 1))
                delta = _project_l2(delta + step * grad / scale, eps)
            delta = (original + delta).clamp(*bounds) - original
    return (original + delta).detach()


def pixel_bounds(images: torch.Tensor) -> tuple[float, float]:
    """The valid pixel range of a float batch: ``(0, 1)`` when it lies within, else its own min and max."""
    low, high = float(images.min()), float(images.max())
    return (0.0, 1.0) if low >= 0.0 and high <= 1.0 else (low, high)


def _project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    norms = delta.flatten(1).norm(dim=1).view(-1, *[1] * (delta.ndim - 1))
    return delta * torch.clamp(eps / norms.clamp_min(1e-12), max=1.0)

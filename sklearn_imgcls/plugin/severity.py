"""The severity rule of image corruptions, for the built-ins and any plugin's.

A corruption (:class:`~sklearn_imgcls.plugin.specs.CorruptionSpec`) is built
as ``corrupt(images, severity, generator)``: an integer severity from 0 to
``max_severity`` (0 returns the images unchanged), float ``(N, C, H, W)``
batches with values in ``[0, 1]``, the result clamped to ``[0, 1]`` in the
input's dtype. :func:`graded_corruption` wraps a plugin's
``apply(images, severity, generator)`` so it follows all of that, and
:func:`check_severity` is the check on its own::

    from sklearn_imgcls.plugin import CorruptionSpec, graded_corruption, hookimpl
"""

from __future__ import annotations

import numbers
from typing import Any, Callable

__all__ = ["check_severity", "graded_corruption"]


def check_severity(name: str, severity: Any, max_severity: int) -> int:
    """``severity`` as an int, or a ValueError naming the corruption and the accepted range.

    Parameters
    ----------
    name : str
        The corruption's name, for the message.
    severity : int
        What the caller passed; ``bool`` and non-integral numbers are refused.
    max_severity : int
        The strongest severity.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        When ``severity`` is not an integer from 0 to ``max_severity``.
    """
    ok = isinstance(severity, numbers.Integral) and not isinstance(severity, bool) and 0 <= severity <= max_severity
    if not ok:
        raise ValueError(
            f"corruption {name!r}: severity must be an integer from 0 (unchanged) to {max_severity}, "
            f"got {severity!r}; pass one of {list(range(max_severity + 1))}."
        )
    return int(severity)


def graded_corruption(
    name: str, apply: Callable[[Any, int, Any], Any], max_severity: int = 5
) -> Callable[[Any, int, Any], Any]:
    """Wrap ``apply(images, severity, generator)`` into a corruption that follows the contract.

    The wrapper checks the severity (:func:`check_severity`), the batch (a
    floating-point ``(N, C, H, W)`` tensor) and the generator, returns a copy
    of the images at severity 0, runs ``apply`` in float32 for half-precision
    input, and clamps the result to ``[0, 1]`` in the input's dtype.

    Parameters
    ----------
    name : str
        The corruption's name, for error messages.
    apply : callable
        ``apply(images, severity, generator)`` for ``severity >= 1``; returns
        a new tensor of the same shape.
    max_severity : int
        The strongest severity.

    Returns
    -------
    callable
        ``corrupt(images, severity, generator)``.
    """
    import torch

    def corrupt(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        level = check_severity(name, severity, max_severity)
        if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim != 4:
            got = f"{type(images).__name__} {getattr(images, 'dtype', '')} {tuple(getattr(images, 'shape', ()))}"
            fix = ("add the channel axis: images.unsqueeze(1) for (N, H, W) grayscale"
                   if isinstance(images, torch.Tensor) and images.is_floating_point()
                   else "convert uint8 images with images.float() / 255")
            raise TypeError(f"corruption {name!r} takes a float (N, C, H, W) tensor with values in [0, 1], got "
                            f"{got}; {fix}.")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"corruption {name!r} draws its randomness from a torch.Generator, got "
                            f"{type(generator).__name__}; pass torch.Generator().manual_seed(0).")
        if level == 0:
            return images.clone()
        work = images if images.dtype in (torch.float32, torch.float64) else images.float()
        return apply(work, level, generator).clamp(0.0, 1.0).to(images.dtype)

    corrupt.__name__ = corrupt.__qualname__ = name
    corrupt.max_severity = max_severity
    return corrupt

"""Validation of estimator parameters, done in ``fit`` the scikit-learn way.

Each check raises a ``ValueError`` or ``TypeError`` that names the
parameter, the value it got and what it accepts.
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any

import numpy as np
import torch

__all__ = [
    "OPTIMIZERS",
    "check_adversarial",
    "check_augment",
    "check_sample_weight",
    "check_sampler",
    "check_tta",
    "check_choice",
    "check_device",
    "check_dict",
    "check_fraction",
    "check_int",
    "check_optimizer",
    "check_positive_float",
    "check_scoring",
]

#: optimizer names accepted by the ``optimizer`` parameter
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


def _fail(name: str, value: Any, expected: str, error: type[Exception] = ValueError) -> None:
    raise error(f"{name} must be {expected}, got {value!r}.")


def check_int(name: str, value: Any, minimum: int = 1, allow_none: bool = False) -> int | None:
    """Return ``value`` as int if it is an integer ``>= minimum``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(name, value, f"an integer >= {minimum}" + (" or None" if allow_none else ""), TypeError)
    if value < minimum:
        _fail(name, value, f"an integer >= {minimum}")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (numpy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        _fail(name, value, "True or False", TypeError)
    return bool(value)


def check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as float if it is a finite number ``> 0``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(name, value, "a positive number", TypeError)
    if not 0 < value < float("inf"):
        _fail(name, value, "a positive number")
    return float(value)


def check_fraction(name: str, value: Any) -> float | None:
    """Return ``value`` if it is None or a number strictly between 0 and 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        _fail(name, value, "None or a number strictly between 0 and 1")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple) -> Any:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        _fail(name, value, f"one of {', '.join(repr(c) for c in choices)}")
    return value


def check_dict(name: str, value: Any) -> dict:
    """Return a copy of ``value`` (a dict or None) as a dict."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(name, value, "a dict of parameters or None", TypeError)
    return dict(value)


def check_device(value: Any) -> torch.device:
    """Resolve the ``device`` parameter; ``"auto"`` picks CUDA when present."""
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        _fail("device", value, "'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={value!r} was requested, but CUDA is not available here. Use device='auto' or 'cpu'.")
    return device


def check_optimizer(value: Any) -> type[torch.optim.Optimizer]:
    """Resolve the ``optimizer`` parameter: a name or an Optimizer subclass."""
    if isinstance(value, str) and value.lower() in OPTIMIZERS:
        return OPTIMIZERS[value.lower()]
    if isinstance(value, type) and issubclass(value, torch.optim.Optimizer):
        return value
    _fail("optimizer", value, f"one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer subclass")


def check_optimizer_params(optimizer: Any, value: Any) -> dict:
    """Check ``optimizer_params`` against what the ``optimizer`` accepts (a dict, or None for {}).

    Refuses a key the optimizer's constructor does not take (``momentum`` for
    Adam) by name, listing the accepted ones, instead of failing deep in skorch.
    """
    params = check_dict("optimizer_params", value)
    optimizer_class = check_optimizer(optimizer)
    accepted = [name for name in inspect.signature(optimizer_class).parameters if name not in ("self", "params")]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(optimizer_class).parameters.values())
    unknown = sorted(set(params) - set(accepted))
    if unknown and not takes_any:
        raise ValueError(
            f"optimizer_params has {unknown} that {optimizer_class.__name__} does not take; it accepts "
            f"{', '.join(name for name in accepted if name != 'lr')} (set the learning rate with lr=)."
        )
    return params


def check_scoring(value: Any) -> list[str]:
    """Resolve ``scoring`` (None, a scorer name or a list of names) to a list."""
    from sklearn.metrics import get_scorer, get_scorer_names

    names = [] if value is None else [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        _fail("scoring", value, "None, a scikit-learn scorer name or a list of them", TypeError)
    for name in names:
        try:
            get_scorer(name)
        except ValueError:
            raise ValueError(
                f"scoring={name!r} is not a scikit-learn scorer name. Valid names include: "
                f"{', '.join(n for n in get_scorer_names() if 'neg_' not in n)[:400]}..."
            ) from None
    return list(names)


def _component_items(name: str, value: Any) -> list[tuple[str, dict]]:
    items = [value] if isinstance(value, (str, tuple)) else value
    if not isinstance(items, list):
        _fail(name, value, "None, a name or a list of names / (name, params) pairs", TypeError)
    resolved = []
    for item in items:
        if isinstance(item, str):
            resolved.append((item, {}))
        elif (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
              and isinstance(item[1], dict)):  # a [name, params] list too: what JSON gives
            resolved.append((item[0], dict(item[1])))
        else:
            _fail(f"{name} item", item, "a name or a (name, params) pair", TypeError)
    return resolved


def check_augment(value: Any, presets: dict[str, list[tuple[str, dict]]] | None = None) -> list[tuple[str, dict]]:
    """Resolve ``augment``: None, a preset or augmentation name, or a list of names / (name, params) pairs."""
    if value is None:
        return []
    if isinstance(value, str) and presets and value in presets:
        return [(name, dict(params)) for name, params in presets[value]]
    return _component_items("augment", value)


def check_sampler(value: Any) -> tuple[str, dict] | None:
    """Resolve ``sampler``: None, a sampler name, or a ``(name, params)`` pair."""
    if value is None:
        return None
    if isinstance(value, str):
        return value, {}
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], dict):
        return value[0], dict(value[1])
    _fail("sampler", value, "None, a sampler name or one (name, params) pair", TypeError)


TTA_VIEWS = ("flip_h", "flip_v", "shift")


def check_tta(value: Any) -> list[str]:
    """Resolve ``tta``: None, a view name or a list of them (see :data:`TTA_VIEWS`)."""
    if value is None:
        return []
    views = [value] if isinstance(value, str) else value
    if not isinstance(views, (list, tuple)) or not all(isinstance(v, str) for v in views):
        _fail("tta", value, f"None, one of {TTA_VIEWS} or a list of them", TypeError)
    unknown = [v for v in views if v not in TTA_VIEWS]
    if unknown:
        _fail("tta", value, f"None, one of {TTA_VIEWS} or a list of them (unknown: {unknown})")
    return list(dict.fromkeys(views))


def check_sample_weight(sample_weight: Any, n_samples: int) -> torch.Tensor | None:
    """Return ``sample_weight`` as a float32 tensor of ``n_samples`` finite, non-negative weights."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64) if not np.isscalar(sample_weight) else np.full(n_samples, float(sample_weight))
    if weights.ndim != 1 or len(weights) != n_samples:
        raise ValueError(f"sample_weight must be a 1-D array of {n_samples} weights (one per image), got shape {weights.shape}.")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("sample_weight must hold finite, non-negative numbers; found negative, NaN or infinite values.")
    if weights.sum() <= 0:
        raise ValueError("sample_weight sums to zero: at least one image must have a positive weight.")
    return torch.from_numpy(weights.astype(np.float32))


def check_adversarial(value: Any) -> dict | None:
    """Resolve ``adversarial``: None, or a dict with ``method`` ("pgd", "fgsm" or "trades"), ``eps``, ``steps``,
    ``norm``, ``fraction`` (pgd/fgsm: share of each batch attacked) and ``beta`` (trades: weight of the KL term)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        _fail("adversarial", value, 'None or a dict such as {"method": "pgd", "eps": 0.1, "steps": 5, "fraction": 0.5}',
              TypeError)
    unknown = sorted(set(value) - {"method", "eps", "steps", "norm", "fraction", "beta"})
    if unknown:
        _fail("adversarial", value, f"a dict with keys method, eps, steps, norm, fraction, beta (unknown: {unknown})")
    method = value.get("method", "pgd")
    if method not in ("pgd", "fgsm", "trades"):
        _fail("adversarial['method']", method, "'pgd', 'fgsm' or 'trades'")
    eps = check_positive_float("adversarial['eps']", value.get("eps", 0.1))
    steps = 1 if method == "fgsm" else check_int("adversarial['steps']", value.get("steps", 5))
    norm = value.get("norm", "inf")
    if norm not in ("inf", "2"):
        _fail("adversarial['norm']", norm, "'inf' or '2'")
    fraction = value.get("fraction", 0.5)
    if not isinstance(fraction, numbers.Real) or not 0 < fraction <= 1:
        _fail("adversarial['fraction']", fraction, "a number in (0, 1]")
    beta = check_positive_float("adversarial['beta']", value.get("beta", 6.0))
    return {"method": method, "eps": eps, "steps": steps, "norm": norm, "fraction": float(fraction), "beta": beta}

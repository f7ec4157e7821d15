"""Named bundles of training defaults for :class:`~sklearn_imgcls.CNNClassifier`.

A preset supplies the value of every parameter the user left at ``None``
(``augment``: left at ``"auto"``); a value the user sets always wins. The
numbers behind each choice are in ``benchmarks/RESULTS.md`` (Fashion-MNIST
on a 2-core CPU).

:data:`AUGMENT_PRESETS` holds the named augmentation lists accepted as
``augment="light" | "standard" | "strong"`` by every classifier (the data
lives in :mod:`sklearn_imgcls._core.preset_data`, beside the code that
resolves it).
"""

from __future__ import annotations

from typing import Any

from ._core.preset_data import AUGMENT_PRESETS, RESOLVED_PARAMS

__all__ = ["AUGMENT_PRESETS", "PRESETS", "preset_value"]

#: parameters a preset decides when they are left unset (``fit`` records each as ``<name>_``)
PRESET_PARAMS = RESOLVED_PARAMS

# the most accuracy for a training budget of minutes on a laptop-class CPU
_ACCURATE: dict[str, Any] = {
    "backbone": "bn_cnn",
    "backbone_params": {"channels": (32, 64), "hidden": 256},
    # 16 one-cycle epochs end within 0.002 of 20 (Fashion-MNIST, two seeds: 0.9454 and 0.9429)
    # and pass 0.94 at epoch 12 instead of 14 (issue #17)
    "max_epochs": 16,
    "batch_size": 128,
    "lr": 2e-3,
    "lr_schedule": "onecycle",
    # shifts by up to 7 % of the side (2 pixels at 28x28); no flips: they
    # are wrong for digits and text and did not help on Fashion-MNIST
    "augment": [("random_crop", {"padding": 0.07})],
}

PRESETS: dict[str, dict[str, Any]] = {
    "accurate": _ACCURATE,
    # the most accuracy within 15 minutes of a 2-core CPU on 60,000 small images: the default's network
    # trained 3x longer, with random erasing as well as shifts to keep it from overfitting (Fashion-MNIST,
    # 48 epochs, three seeds timed: 0.9500-0.9513 in 783-828 s, 0.95 first after 633-733 s, only just; a 1-thread
    # run ended 0.9478; a wider or deeper network, weight averaging and SGD did not pay, see RESULTS.md)
    "best": {**_ACCURATE, "max_epochs": 48,
             "augment": [*_ACCURATE["augment"], ("random_erasing", {"p": 0.5})]},
    # a good model quickly: a small network, a short one-cycle run
    "fast": {
        "backbone": "simple_cnn",
        "backbone_params": None,
        "max_epochs": 10,
        "batch_size": 128,
        "lr": 2e-3,
        "lr_schedule": "onecycle",
        "augment": None,
    },
}


def preset_value(preset: str, name: str, value: Any) -> Any:
    """``value``, or the preset's choice for parameter ``name`` when ``value`` is unset.

    ``backbone_params`` comes from the preset only together with its
    backbone, i.e. when ``backbone`` is unset too (checked by the caller).
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}.")
    unset = value == "auto" if name == "augment" else value is None
    return PRESETS[preset][name] if unset else value

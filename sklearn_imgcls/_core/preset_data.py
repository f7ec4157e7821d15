"""Plain data behind the presets, shared by the estimator base and :mod:`sklearn_imgcls.presets`.

* :data:`RESOLVED_PARAMS`: the parameters a preset may fill when left unset;
  ``fit`` records each as a fitted attribute (``backbone_``, ``lr_``, ...).
* :data:`AUGMENT_PRESETS`: the named augmentation lists behind
  ``augment="light" | "standard" | "strong"``. It lives in ``_core`` (and not
  in the built-in augmentation plugin) so that a user who blocks the built-in
  plugin does not take the core's presets with it.

The public names are in :mod:`sklearn_imgcls.presets`. No imports: the
command line reads this without loading torch.
"""

from __future__ import annotations

__all__ = ["AUGMENT_PRESETS", "RESOLVED_PARAMS"]

#: parameters a preset fills when they are left unset (``augment``: left at "auto"); ``fit``
#: records the value trained with of each as ``<name>_``
RESOLVED_PARAMS = ("backbone", "backbone_params", "max_epochs", "batch_size", "lr", "lr_schedule", "augment")

AUGMENT_PRESETS: dict[str, list[tuple[str, dict]]] = {
    "light": [("flip_h", {}), ("translate", {"fraction": 0.06})],
    "standard": [("flip_h", {}), ("translate", {"fraction": 0.1}), ("rotate", {"degrees": 10.0}),
                 ("color_jitter", {"brightness": 0.2, "contrast": 0.2})],
    "strong": [("flip_h", {}), ("random_resized_crop", {"scale": (0.6, 1.0)}), ("rotate", {"degrees": 15.0}),
               ("color_jitter", {"brightness": 0.3, "contrast": 0.3}), ("random_erasing", {"p": 0.5})],
}
"""Named augmentation lists accepted as ``augment="light" | "standard" | "strong"``.

All include horizontal flips: for images whose class changes when mirrored
(digits, text) pass an explicit list instead. Every name refers to a
built-in augmentation (``sklearn_imgcls.builtin.augmentations``).
"""

"""The rebuild recipe an estimator hands to persistence (its ``__sklearn_imgcls_recipe__``).

Like scikit-learn's ``__sklearn_tags__``, each estimator describes itself:
:mod:`sklearn_imgcls.persistence` saves the recipe of the fitted network and,
on load, checks a file's recipe against what the estimator's parameters
decide, without knowing which estimator it is dealing with. The other half
of the protocol, ``__sklearn_imgcls_restore__``, lets the estimator set its
own fitted attributes from the loaded network (as ``fit`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RECIPE_KEYS", "ModelRecipe", "registry_recipe"]

#: the keys of a build recipe (``ImageNetwork.recipe``; read by ``pretrained.build_from_recipe``)
RECIPE_KEYS = frozenset({"source", "backbone", "backbone_params", "num_outputs", "network_in_channels",
                         "network_input_size", "build_size", "build_channels", "replace_head"})


@dataclass(frozen=True)
class ModelRecipe:
    """What an estimator tells persistence about the network it trains.

    Attributes
    ----------
    architecture : dict or None
        The build recipe of the fitted network (keys :data:`RECIPE_KEYS`);
        None for an unfitted estimator.
    fixed : dict
        Recipe values that the estimator's parameters decide for images of
        the given shape: a model file whose recipe differs is refused.
    freezes : bool
        Whether ``fit`` may freeze backbone parameters (``frozen_parameters_``);
        a file of an estimator that freezes nothing must record none.
    """

    architecture: dict | None
    fixed: dict = field(default_factory=dict)
    freezes: bool = False


def registry_recipe(backbone: str, backbone_params: dict | None, image_shape: tuple[int, int, int],
                    num_outputs: int) -> dict:
    """The recipe of a registry backbone built for exactly these images and classes (trained from scratch)."""
    channels, height, width = image_shape
    return {"source": "registry", "backbone": backbone, "backbone_params": backbone_params or {},
            "build_channels": channels, "build_size": (height, width), "num_outputs": num_outputs,
            "replace_head": False, "network_in_channels": None, "network_input_size": None}

"""Offline pretrained weights for timm models.

``load_pretrained(model, tag)`` never touches the network. It looks, in
order, for

1. a local file ``<folder>/<model>.<tag>.safetensors`` (or ``.pth``), where
   ``<folder>`` is ``$SKLEARN_IMGCLS_TIMM_WEIGHTS`` when set, else
   ``$TORCH_HOME/hub/sklearn_imgcls_timm`` (``~/.cache/torch/hub/sklearn_imgcls_timm``);
2. the Hugging Face cache that ``timm.create_model(..., pretrained=True)``
   and ``hf download`` fill (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
   ``~/.cache/huggingface/hub``): the file of the weights' ``hf_hub_id``;

and loads what it finds through timm itself
(``timm.create_model(f"{model}.{tag}", pretrained=True,
pretrained_cfg_overlay=dict(file=...))``), so timm's own checkpoint filters
convert original-format files. When neither exists it raises ``OSError``
naming both places and how to fill them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WEIGHTS_ENV", "SUFFIXES", "TimmWeights", "find_weights_file", "hf_cache_dir", "load_pretrained",
           "weights_dir", "weights_file"]

#: environment variable naming the folder of local weights files
WEIGHTS_ENV = "SKLEARN_IMGCLS_TIMM_WEIGHTS"
#: local file suffixes tried, in order
SUFFIXES = (".safetensors", ".pth")
#: file names timm's Hugging Face repositories hold weights under, in order of preference
HF_FILENAMES = ("model.safetensors", "pytorch_model.bin")


def weights_dir() -> Path:
    """The folder of local weights files: ``$SKLEARN_IMGCLS_TIMM_WEIGHTS``, else ``<torch hub dir>/sklearn_imgcls_timm``.

    Returns
    -------
    pathlib.Path
    """
    folder = os.environ.get(WEIGHTS_ENV)
    if folder:
        return Path(folder).expanduser()
    import torch

    return Path(torch.hub.get_dir()) / "sklearn_imgcls_timm"


def weights_file(model: str, tag: str, suffix: str = ".safetensors") -> Path:
    """Where a local weights file for ``model``'s ``tag`` weights goes (``<folder>/<model>.<tag><suffix>``).

    Parameters
    ----------
    model, tag : str
        timm model name and pretrained tag (``"resnet18"``, ``"a1_in1k"``).
    suffix : str
        ``".safetensors"`` or ``".pth"``.

    Returns
    -------
    pathlib.Path
    """
    return weights_dir() / f"{model}.{tag}{suffix}"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time.

    Returns
    -------
    pathlib.Path
        ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``.
    """
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "huggingface" / "hub"


def _hf_repo(cfg) -> tuple[str | None, str | None, tuple[str, ...]]:
    """``(repo id, revision, file names)`` of a pretrained cfg's Hugging Face source."""
    hub_id = cfg.hf_hub_id
    if not hub_id:
        return None, None, ()
    repo, _, revision = hub_id.partition("@")
    names = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HF_FILENAMES
    return repo, revision or None, names


def _in_hf_cache(cfg) -> str | None:
    repo, revision, names = _hf_repo(cfg)
    if repo is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    for name in names:
        found = try_to_load_from_cache(repo, name, cache_dir=str(hf_cache_dir()), revision=revision)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def _cfg(model: str, tag: str):
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(f"{model}.{tag}")
    if cfg is None:
        import timm

        tags = [name.split(".", 1)[1] for name in timm.list_pretrained(f"{model}.*")]
        raise ValueError(f"timm has no pretrained weights {model}.{tag}; its tags: {', '.join(tags) or 'none'}.")
    return cfg


def find_weights_file(model: str, tag: str) -> str:
    """The file holding ``model``'s ``tag`` weights: local folder first, then the Hugging Face cache.

    Parameters
    ----------
    model, tag : str
        timm model name and pretrained tag.

    Returns
    -------
    str
        Path of an existing file.

    Raises
    ------
    OSError
        When neither place has it; the message names the expected local
        file, the cache entry and how to fill either without this machine
        reaching the network.
    """
    cfg = _cfg(model, tag)
    for suffix in SUFFIXES:
        path = weights_file(model, tag, suffix)
        if path.is_file():
            return str(path)
    cached = _in_hf_cache(cfg)
    if cached is not None:
        return cached
    expected = weights_file(model, tag)
    repo, revision, names = _hf_repo(cfg)
    if repo is not None:
        hub = (f" nor in the Hugging Face cache {hf_cache_dir()} (repository {repo!r}, file {names[0]!r}). "
               f"On a machine with network access run `hf download {repo} {names[0]}` (or "
               f"`timm.create_model('{model}.{tag}', pretrained=True)`) and copy the cache, or the file as "
               f"{expected.name}")
    else:
        hub = f". Download {cfg.url} on a machine with network access and save it as {expected.name}"
    raise OSError(
        f"Pretrained weights timm:{model} {tag!r} are not on this machine: not at {expected} (or "
        f"{expected.with_suffix('.pth').name}){hub} in {expected.parent} (set {WEIGHTS_ENV} to use another "
        f"folder). Or pass the file's path as weights=. Nothing is downloaded."
    )


def load_pretrained(model: str, tag: str) -> dict:
    """Load ``model``'s ``tag`` weights offline, as the state dict of ``build_native(num_classes)``.

    Parameters
    ----------
    model, tag : str
        timm model name and pretrained tag.

    Returns
    -------
    dict of str to torch.Tensor

    Raises
    ------
    OSError
        When the file is missing (see :func:`find_weights_file`).
    ValueError
        When the file does not hold these weights (wrong architecture or
        a damaged file); names the file.
    """
    import timm

    path = find_weights_file(model, tag)
    cfg = _cfg(model, tag)
    try:
        network = timm.create_model(
            f"{model}.{tag}", pretrained=True, num_classes=cfg.num_classes,
            pretrained_cfg_overlay=dict(file=path, source="", custom_load=False),
        )
    except OSError:
        raise
    except Exception as exc:  # state-dict mismatches, damaged files: foreign formats raise many types
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[:3]
        raise ValueError(
            f"{path} does not hold timm {model}.{tag} weights ({' '.join(line.strip() for line in detail)[:300]}). "
            f"Replace it by the file of these weights."
        ) from None
    return {name: tensor.detach() for name, tensor in network.state_dict().items()}


@dataclass(frozen=True)
class TimmWeights:
    """The ``load`` of one timm pretrained tag: ``TimmWeights("resnet18", "a1_in1k")()`` is the state dict.

    A small frozen dataclass rather than a closure, so specs holding it
    compare and pickle; like :mod:`sklearn_imgcls.plugin.sources`' loaders it
    answers ``available()`` and shows ``path`` and ``source`` in listings.

    Parameters
    ----------
    model, tag : str
        timm model name and pretrained tag.
    """

    model: str
    tag: str

    @property
    def path(self) -> str:
        """The file that would be loaded, or the local file expected when there is none."""
        try:
            return find_weights_file(self.model, self.tag)
        except OSError:
            return str(weights_file(self.model, self.tag))

    @property
    def source(self) -> str:
        """Where the weights are published (Hugging Face repository or URL), for listings."""
        cfg = _cfg(self.model, self.tag)
        return cfg.hf_hub_id or cfg.url or f"timm {self.model}.{self.tag}"

    def available(self) -> bool:
        """Whether the file is on this machine (local folder or Hugging Face cache)."""
        try:
            find_weights_file(self.model, self.tag)
        except OSError:
            return False
        return True

    def __call__(self) -> dict:
        """Return the state dict (see :func:`load_pretrained`)."""
        return load_pretrained(self.model, self.tag)

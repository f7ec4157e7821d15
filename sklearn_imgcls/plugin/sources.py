"""Ready-made ``load`` callables for :class:`~sklearn_imgcls.plugin.specs.PretrainedWeights`.

A plugin that ships weights declares where they come from; these loaders do
the rest the way torch itself does::

    from sklearn_imgcls.plugin import BackboneSpec, PretrainedWeights
    from sklearn_imgcls.plugin.sources import file_weights, url_weights

    PretrainedWeights("in1k", url_weights("https://example.org/net-4f1a2b3c.pth"), num_classes=1000)
    PretrainedWeights("mine", file_weights("~/weights/net.safetensors"), num_classes=10)

* :func:`url_weights` reads the torch hub cache (``$TORCH_HOME/hub/checkpoints``,
  where torchvision keeps its files) and downloads into it only when the file
  is missing, checking the SHA-256 (given, or the hash prefix in the file
  name, as ``torch.hub``'s ``check_hash`` does);
* :func:`file_weights` reads a local file.

Both read ``.safetensors`` with safetensors and anything else with
``torch.load(weights_only=True)`` (no code in the file runs), and fail with
an ``OSError`` that names the file to provide and where to put it. Each
loader also answers ``available()`` (is the file on disk?) and shows its
``path`` and ``source`` in listings. Loaders are small frozen dataclasses, so
specs holding them compare and pickle.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

__all__ = ["FileWeights", "UrlWeights", "file_weights", "url_weights"]

#: torch.hub's convention: "name-<hex prefix of the SHA-256>.ext"
_HASH_IN_NAME = re.compile(r"-([a-f0-9]*)\.")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read(path: str) -> dict:
    from .._core.weights import WeightsError, read_checkpoint

    try:
        return read_checkpoint(path)[0]
    except WeightsError as exc:
        raise OSError(f"{exc} Replace the file {path!r}.") from None


@dataclass(frozen=True)
class UrlWeights:
    """Weights downloaded from ``url`` into the torch hub cache (see :func:`url_weights`)."""

    url: str
    sha256: str | None = None
    file_name: str | None = None

    @property
    def path(self) -> str:
        """Where the file is cached (follows ``TORCH_HOME``)."""
        from .._core.weights import hub_checkpoint_path

        return hub_checkpoint_path(self.url, self.file_name)

    @property
    def source(self) -> str:
        """The URL, for listings."""
        return self.url

    def available(self) -> bool:
        """Whether the file is already cached (no download needed)."""
        return os.path.isfile(self.path)

    def _hash_prefix(self) -> str | None:
        if self.sha256:
            return self.sha256.lower()
        match = _HASH_IN_NAME.search(os.path.basename(self.path))
        return match.group(1) if match and match.group(1) else None

    def __call__(self) -> dict:
        """Return the state dict, downloading the file first when it is not cached.

        Raises
        ------
        OSError
            Naming the URL and the path to put the file at, when it is missing
            and cannot be downloaded, or its SHA-256 does not match.
        """
        import torch

        path = self.path
        if not os.path.isfile(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                torch.hub.download_url_to_file(self.url, path, hash_prefix=self._hash_prefix(), progress=False)
            except Exception as exc:  # network errors come in many types
                if isinstance(exc, RuntimeError) and "invalid hash value" in str(exc):
                    raise OSError(
                        f"Downloaded {self.url}, but its SHA-256 does not match the one declared ({exc}); nothing "
                        f"was kept at {path}. The file at the URL changed, or the plugin declares the wrong hash."
                    ) from None
                raise OSError(
                    f"Pretrained weights {os.path.basename(path)} are not cached and could not be downloaded "
                    f"({type(exc).__name__}: {exc}). Download {self.url} on a connected machine and put it at "
                    f"{path} (the cache follows TORCH_HOME), or pass the file's path as weights=."
                ) from None
        if self.sha256 and not _sha256(path).startswith(self.sha256.lower()):
            raise OSError(
                f"The cached file {path} does not have the SHA-256 {self.sha256} that {self.url} has: delete it "
                f"(it is downloaded again) or put the right file there."
            )
        return _read(path)


@dataclass(frozen=True)
class FileWeights:
    """Weights read from a local file (see :func:`file_weights`)."""

    path: str

    @property
    def source(self) -> str:
        """The file, for listings."""
        return self.path

    def available(self) -> bool:
        """Whether the file exists."""
        return os.path.isfile(self.path)

    def __call__(self) -> dict:
        """Return the state dict in the file.

        Raises
        ------
        OSError
            Naming the file when it is missing or cannot be read safely.
        """
        if not os.path.isfile(self.path):
            raise OSError(f"Pretrained weights file not found: {self.path}. Put the weights file there.")
        return _read(self.path)


def url_weights(url: str, *, sha256: str | None = None, file_name: str | None = None) -> UrlWeights:
    """A ``load`` for weights published at ``url``, cached where torch hub caches them.

    Parameters
    ----------
    url : str
        Where the file can be downloaded.
    sha256 : str or None
        The file's SHA-256 (or a prefix of it): checked after a download and
        on the cached file. None: the hash prefix in the file name, if it
        follows torch's ``name-<sha256 prefix>.pth`` convention, is checked
        after a download (as ``torch.hub``'s ``check_hash=True``).
    file_name : str or None
        The cached file's name (default: the URL's last path component).

    Returns
    -------
    UrlWeights
        ``load()`` returns the state dict; ``available()``, ``path``.
    """
    if not isinstance(url, str) or not url:
        raise TypeError(f"url must be a non-empty string, got {url!r}.")
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{8,64}", sha256):
        raise ValueError(f"sha256 must be 8 to 64 hexadecimal digits, got {sha256!r}.")
    return UrlWeights(url, sha256, file_name)


def file_weights(path: str | os.PathLike) -> FileWeights:
    """A ``load`` for weights in a local file (``~`` is expanded).

    Parameters
    ----------
    path : str or path-like
        A ``.safetensors`` file, or a ``torch.save`` state dict.

    Returns
    -------
    FileWeights
        ``load()`` returns the state dict; ``available()``, ``path``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}.")
    return FileWeights(os.path.expanduser(os.fspath(path)))

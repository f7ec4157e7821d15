"""Recognising model files from their first bytes, not their names.

:func:`detect_format` tells a safetensors file from a pickle or a
``torch.save`` archive, and turns everything else (missing, a folder, empty,
truncated, an image, a text file) into a one-line :class:`ValueError` naming
the file and what to pass instead. Used by :func:`sklearn_imgcls.persistence.load`
and the command line's model files.
"""

from __future__ import annotations

import codecs
import os
import struct

__all__ = ["EXPECTED_MODEL", "detect_format"]

#: the end of every message: what a model file is and how to make one
EXPECTED_MODEL = ("expected a model written by `sklearn-imgcls train DATA --out model.safetensors` "
                  "or `estimator.save(path)` (safetensors)")
_COMPRESSED = (  # joblib.dump(..., compress=...) streams: gzip, bz2, xz, lz4, zlib
    b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x04\x22\x4d\x18", b"x\x01", b"x\x5e", b"x\x9c", b"x\xda", b"ZF",
)
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header
_IMAGES = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
           b"BM": "a BMP image", b"II*\x00": "a TIFF image", b"MM\x00*": "a TIFF image"}


def detect_format(path: str) -> str:
    """Return ``"safetensors"``, ``"pickle"`` or ``"torch-zip"`` from the content of ``path``.

    Parameters
    ----------
    path : str
        A model file.

    Raises
    ------
    ValueError
        One line naming ``path``, what it is instead (missing, a folder, empty,
        truncated, an image, a text file, ...) and what to pass.
    """
    if os.path.isdir(path):
        raise ValueError(f"Model file {path!r} is a folder; {EXPECTED_MODEL}.")
    if not os.path.exists(path):
        raise ValueError(f"No model file at {path!r}; train one with `sklearn-imgcls train DATA --out {path}`.")
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        raise ValueError(f"Model file {path!r} is empty (0 bytes), perhaps an interrupted copy; {EXPECTED_MODEL}.")
    header_length = struct.unpack("<Q", head[:8])[0] if len(head) >= 9 else 0
    if head[8:9] == b"{" and header_length <= _MAX_HEADER:
        if header_length > size - 8:
            raise ValueError(f"Model file {path!r} is a truncated safetensors file (its header needs "
                             f"{header_length + 8} bytes, the file has {size}); copy or train it again.")
        return "safetensors"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if head[:4] == b"PK\x03\x04":
        return "torch-zip"
    if b"\x00" not in head:
        try:  # incremental: a character cut at byte 512 is not an error
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            pass
        else:
            raise ValueError(f"{path!r} is a text file, not a model file; {EXPECTED_MODEL}.")
    if head.startswith(_COMPRESSED):
        return "pickle"
    for magic, name in _IMAGES.items():
        if head.startswith(magic):
            raise ValueError(f"{path!r} is {name}, not a model file (the model comes first: "
                             f"`sklearn-imgcls predict MODEL IMAGE...`); {EXPECTED_MODEL}.")
    raise ValueError(f"{path!r} is not a model file (unrecognised content); {EXPECTED_MODEL}.")

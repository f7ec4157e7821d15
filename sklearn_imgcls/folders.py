"""Datasets laid out as folders: ``root/<class name>/<image file>``.

The same layout as :class:`torchvision.datasets.ImageFolder`; files are not
opened here, only listed, so the estimators decode them lazily.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder"]

#: file suffixes treated as images (case-insensitive)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def load_image_folder(root: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> tuple[np.ndarray, np.ndarray]:
    """List the images of ``root/<class>/...`` with their class names.

    Parameters
    ----------
    root : str
        Folder with one subfolder per class (nested folders inside a class
        are searched too; hidden files and other suffixes are ignored).
    extensions : tuple of str
        Accepted file suffixes.

    Returns
    -------
    paths : numpy.ndarray of str
        Sorted by class, then path.
    labels : numpy.ndarray of str
        The class folder of each file.
    """
    if not os.path.isdir(root):
        raise ValueError(f"{root!r} is not a folder; expected one subfolder of images per class.")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise ValueError(f"{root!r} has no class subfolders; put each class's images in root/<class name>/.")
    paths, labels = [], []
    suffixes = tuple(s.lower() for s in extensions)
    for name in classes:
        found = sorted(
            os.path.join(folder, f)
            for folder, _, files in os.walk(os.path.join(root, name))
            for f in files
            if f.lower().endswith(suffixes) and not f.startswith(".")
        )
        paths += found
        labels += [name] * len(found)
    if not paths:
        raise ValueError(f"No image files ({', '.join(extensions)}) under the class folders of {root!r}.")
    return np.asarray(paths), np.asarray(labels)

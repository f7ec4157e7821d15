"""Test-only plugin: a linear backbone and a pass-through augmentation that counts calls."""

from torch import nn

# the import paths of the first release, kept working by re-exports (tests rely on them here)
from sklearn_imgcls.hookspecs import hookimpl
from sklearn_imgcls.specs import AugmentationSpec, BackboneSpec

CALLS = {"augment": 0, "images": 0}


def linear(in_channels, num_classes, image_size):
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size[0] * image_size[1], num_classes))


def counting():
    def augment(images, generator):
        CALLS["augment"] += 1
        CALLS["images"] += len(images)
        return images

    return augment


@hookimpl
def register_backbones():
    return [BackboneSpec("tiny_linear", linear, "a linear layer", tags=("test",))]


@hookimpl
def register_augmentations():
    return [AugmentationSpec("counting", counting, "identity that counts its calls")]

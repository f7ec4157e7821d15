"""The built-in corruptions (robustness reports) and the augmix augmentation.

Every test over corruptions is parametrized through the registry, so a
corruption added later is held to the same contract without a new test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sklearn_imgcls import CNNClassifier, build_augmentation, build_corruption, list_corruptions
from sklearn_imgcls.plugin import get_registry
from sklearn_imgcls.testing import sample_images

CORRUPTIONS = list_corruptions()
DETERMINISTIC = set(list_corruptions(tag="deterministic"))
FAMILIES = {
    "noise": {"gaussian_noise", "shot_noise", "impulse_noise"},
    "blur": {"gaussian_blur", "motion_blur"},
    "digital": {"jpeg", "pixelate", "contrast", "brightness"},
    "occlusion": {"occlusion", "stripes"},
    "geometry": {"translate", "rotate", "scale", "shear"},
}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_the_fifteen_builtin_corruptions_are_registered_by_family():
    for family, names in FAMILIES.items():
        assert set(list_corruptions(family=family)) == names
    assert set(CORRUPTIONS) >= set().union(*FAMILIES.values())
    assert DETERMINISTIC == {"gaussian_blur", "jpeg", "pixelate", "contrast", "brightness"}
    assert all(get_registry().get("corruption", name).max_severity == 5 for name in CORRUPTIONS)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_seeded_by_the_generator_only(name):
    corrupt = build_corruption(name)
    images = sample_images(6, 3, (12, 12))
    torch.manual_seed(1)
    first = corrupt(images, 3, gen(5))
    torch.manual_seed(2)
    assert torch.equal(first, corrupt(images, 3, gen(5)))
    other = corrupt(images, 3, gen(6))
    if name in DETERMINISTIC:
        assert torch.equal(first, other)
    else:
        assert not torch.equal(first, other)
        same = images[:1].expand(6, -1, -1, -1).clone()  # identical images get their own draws
        out = corrupt(same, 3, gen(5))
        assert len({tuple(row.flatten().tolist()) for row in out}) > 1


@pytest.mark.parametrize("name", CORRUPTIONS)
@pytest.mark.parametrize(("channels", "size", "dtype"), [
    (1, (8, 8), torch.float32), (3, (32, 32), torch.float32), (3, (8, 8), torch.float64), (2, (10, 14), torch.float32),
])
def test_shape_dtype_range_and_identity_at_severity_0(name, channels, size, dtype):
    corrupt = build_corruption(name)
    images = sample_images(4, channels, size).to(dtype)
    original = images.clone()
    assert torch.equal(corrupt(images, 0, gen()), images)
    for severity in range(1, 6):
        out = corrupt(images, severity, gen(severity))
        assert out.shape == images.shape and out.dtype == dtype
        assert float(out.min()) >= 0 and float(out.max()) <= 1 and torch.isfinite(out).all()
        assert not torch.equal(out, images), severity  # every severity does something, even at 8x8
    assert torch.equal(images, original)  # never in place


@pytest.mark.parametrize("name", CORRUPTIONS)
@pytest.mark.parametrize(("channels", "size"), [(1, (16, 16)), (3, (16, 16)), (1, (8, 8)), (3, (32, 32))])
def test_a_stronger_severity_changes_the_images_more(name, channels, size):
    corrupt = build_corruption(name)
    images = sample_images(10, channels, size)  # sklearn's digits, upscaled (and coloured)
    change = [float((corrupt(images, s, gen(3)) - images).abs().mean()) for s in range(6)]
    assert change[0] == 0
    assert all(b > a for a, b in zip(change, change[1:])), [round(c, 4) for c in change]


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_a_bad_severity_names_the_corruption_and_the_range(name):
    corrupt = build_corruption(name)
    images = sample_images(2, 1, (8, 8))
    for bad in (-1, 6, 2.5, True, "3"):
        with pytest.raises(ValueError, match=rf"corruption '{name}': severity must be an integer from 0 .* to 5"):
            corrupt(images, bad, gen())
    assert corrupt(images, np.int64(2), gen()).shape == images.shape  # numpy integers are integers


def test_wrong_inputs_are_refused_with_the_fix():
    corrupt = build_corruption("gaussian_noise")
    with pytest.raises(TypeError, match=r"float \(N, C, H, W\) tensor.*images.float\(\) / 255"):
        corrupt(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), 1, gen())
    with pytest.raises(TypeError, match="float"):
        corrupt(torch.zeros(1, 8, 8), 1, gen())
    with pytest.raises(TypeError, match=r"torch.Generator\(\).manual_seed\(0\)"):
        corrupt(torch.zeros(2, 1, 8, 8), 1, 0)


# -- exact amounts for curves ------------------------------------------------------------------------

def shifted(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """The images moved right by dx and down by dy pixels, zeros where nothing moved in."""
    out = torch.zeros_like(images)
    h, w = images.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[..., max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def test_translate_by_pixels_moves_exactly_that_far_and_ignores_the_severity():
    images = sample_images(8, 3, (12, 16))
    right = build_corruption("translate", pixels=3, direction="right")
    assert torch.allclose(right(images, 1, gen()), shifted(images, 3, 0), atol=1e-5)
    assert torch.allclose(build_corruption("translate", pixels=2, direction="up")(images, 1, gen()),
                          shifted(images, 0, -2), atol=1e-5)
    any_way = build_corruption("translate", pixels=3)
    out = any_way(images, 1, gen(4))
    assert torch.equal(out, any_way(images, 5, gen(4)))  # the amount is given: severity only gates 0
    assert torch.equal(any_way(images, 0, gen(4)), images)
    options = [shifted(images, dx, dy) for dx, dy in ((3, 0), (-3, 0), (0, 3), (0, -3))]
    picked = [next(i for i, option in enumerate(options) if torch.allclose(out[n], option[n], atol=1e-5))
              for n in range(len(images))]
    assert len(set(picked)) > 1  # a random axis direction per image


def test_rotate_by_degrees_turns_exactly_that_far():
    images = sample_images(4, 1, (12, 12))
    ccw = build_corruption("rotate", degrees=90, direction="counterclockwise")(images, 1, gen())
    assert torch.allclose(ccw, torch.rot90(images, 1, dims=(-2, -1)), atol=1e-5)
    cw = build_corruption("rotate", degrees=90, direction="clockwise")(images, 3, gen())
    assert torch.allclose(cw, torch.rot90(images, -1, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(build_corruption("rotate", degrees=0)(images, 1, gen()), images, atol=1e-6)
    turned = build_corruption("rotate", degrees=90)(images[:1].expand(8, -1, -1, -1), 2, gen(1))
    ways = {int(torch.allclose(t, torch.rot90(images[0], 1, dims=(-2, -1)), atol=1e-5)) for t in turned}
    assert ways == {0, 1}  # the sign is drawn per image


def test_scale_shear_and_occlusion_take_exact_amounts():
    images = sample_images(4, 1, (16, 16))
    assert torch.allclose(build_corruption("scale", factor=1.0)(images, 4, gen()), images, atol=1e-6)
    assert torch.allclose(build_corruption("shear", degrees=0)(images, 4, gen()), images, atol=1e-6)
    zoomed = build_corruption("scale", factor=0.5, fill=1.0)(images, 1, gen())
    assert torch.all(zoomed[..., :3, :] == 1) and torch.all(zoomed[..., :, -3:] == 1)  # the border a shrink leaves
    hidden = build_corruption("occlusion", area=0.25, fill=0.5)(torch.zeros(5, 2, 16, 16), 1, gen())
    assert ((hidden == 0.5).sum((1, 2, 3)) == 2 * 8 * 8).all()  # an 8x8 patch on every channel


@pytest.mark.parametrize(("name", "params", "message"), [
    ("translate", {"pixels": -1}, "pixels must be a number >= 0.0"),
    ("translate", {"direction": "diagonal"}, "direction must be one of"),
    ("rotate", {"degrees": 400}, r"degrees must be a number \[0.0, 360.0\]"),
    ("scale", {"factor": 0}, "factor must be a number"),
    ("occlusion", {"area": 0}, r"area must be a number \(0.0, 1.0\]"),
    ("occlusion", {"fill": "blue"}, "fill must be a pixel value in"),
    ("shear", {"fill": 2}, r"fill must be a pixel value in \[0, 1\]"),
])
def test_bad_build_parameters_are_refused_by_name(name, params, message):
    with pytest.raises(ValueError, match=message):
        build_corruption(name, **params)


# -- augmix ------------------------------------------------------------------------------------------

def test_augmix_keeps_shape_dtype_range_and_is_seeded_by_the_generator():
    augment = build_augmentation("augmix", severity=3, width=3, depth=-1, alpha=1.0)
    for channels in (1, 3):
        images = sample_images(6, channels, (12, 12))
        torch.manual_seed(0)
        out = augment(images, gen(7))
        assert out.shape == images.shape and out.dtype == images.dtype
        assert float(out.min()) >= 0 and float(out.max()) <= 1
        torch.manual_seed(1)
        assert torch.equal(out, augment(images, gen(7)))
        assert not torch.equal(out, augment(images, gen(8)))
        assert not torch.allclose(out, images, atol=1 / 255)


def test_augmix_parameters_are_checked():
    for params, message in (({"severity": 0}, "severity must be an integer from 1 to 10"),
                            ({"width": 0}, "width must be an integer >= 1"),
                            ({"depth": 0}, r"depth must be an integer >= 1 \(or -1\)"),
                            ({"alpha": 0.0}, "alpha must be a positive number")):
        with pytest.raises(ValueError, match=message):
            build_augmentation("augmix", **params)
    with pytest.raises(ValueError, match="1- or 3-channel"):
        build_augmentation("augmix")(torch.rand(2, 2, 8, 8), gen())


def test_augmix_trains_a_cnn_repeatably():
    X, y = load_digits(return_X_y=True)
    X, y = (X[:300] / 16).astype(np.float32), y[:300]
    params = dict(image_shape=(8, 8), max_epochs=1, random_state=0)
    clf = CNNClassifier(augment=["augmix"], **params).fit(X, y)
    assert clf.augment_ == ["augmix"]
    proba = clf.predict_proba(X)
    assert np.array_equal(proba, CNNClassifier(augment=["augmix"], **params).fit(X, y).predict_proba(X))
    assert not np.allclose(proba, CNNClassifier(augment=[], **params).fit(X, y).predict_proba(X))  # it was used

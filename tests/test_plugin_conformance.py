"""The plugin conformance kit (sklearn_imgcls.testing).

First every plugin we ship passes it, one test per check, in strict mode
(our plugins declare every layer and use the current hook names); then each
check meets a deliberately broken toy component and must fail with a message
that names the plugin, the component, the check and the fix.
"""

from __future__ import annotations

import importlib.util
import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sklearn_imgcls.plugin import (
    AugmentationSpec, BackboneSpec, CorruptionSpec, LossSpec, PretrainedWeights, SamplerSpec, hookimpl,
)
from sklearn_imgcls.plugin.discovery import DEFAULT_PLUGINS
from sklearn_imgcls.plugin.hookspecs import PluginDeprecationWarning
from sklearn_imgcls.testing import (
    PluginCheckError, PluginCheckWarning, check_augmentation, check_augmentation_batch,
    check_augmentation_declares_mixing, check_augmentation_seeded, check_backbone, check_backbone_backward,
    check_backbone_declared_layers, check_backbone_native, check_backbone_output, check_backbone_pickles,
    check_backbone_seeded, check_backbone_weights, check_id, check_loss, check_loss_class_priors,
    check_loss_integer_targets, check_loss_multilabel_targets, check_loss_pickles, check_loss_sample_weights,
    check_loss_soft_targets, check_plugin,
    check_corruption, check_corruption_batch, check_corruption_fields, check_corruption_monotone,
    check_corruption_seeded, check_corruption_severity_range, check_plugin_hooks, check_sampler, check_sampler_epoch, check_sampler_seeded, check_sampler_training_split,
    check_spec_fields, collect_plugin, parametrize_with_checks, plugin_checks,
)

# -- our plugins pass -------------------------------------------------------------------------------

#: timm's own tiny test architectures (built in milliseconds), checked in full
TIMM_TEST_MODELS = ("test_resnet", "test_efficientnet", "test_vit", "test_convnext")
#: the smallest curated timm backbone, checked in full; the other curated specs get the spec-field check
TIMM_FULL = ("timm:mobilenetv3_small_050",)


def _missing(module: str, path: str) -> list:
    def plugin_package_is_installed(spec):
        pytest.fail(
            f"the plugin package {module!r} is not installed, so its conformance cannot be checked: run "
            f"`bash scripts/setup_env.sh` (installs every package under plugins/), or "
            f"`.venv/bin/python -m pip install {path}`."
        )

    return [pytest.param(None, plugin_package_is_installed, id=f"{module}-not-installed")]


def _params(pairs) -> list:
    return [pytest.param(spec, check, id=f"{check_id(spec)}-{check.__name__}") for spec, check in pairs]


def _shipped() -> list:
    params = []
    for plugin in DEFAULT_PLUGINS:
        params += _params(plugin_checks(plugin, strict=True))
    if importlib.util.find_spec("sklearn_imgcls_example") is None:
        params += _missing("sklearn_imgcls_example", "plugins/sklearn-imgcls-example")
    else:
        params += _params(plugin_checks("example", strict=True))  # through its installed entry point
    if importlib.util.find_spec("sklearn_imgcls_timm") is None:
        params += _missing("sklearn_imgcls_timm", "plugins/sklearn-imgcls-timm")
    else:
        from sklearn_imgcls_timm import TimmBackbones

        params += _params(plugin_checks(TimmBackbones(TIMM_TEST_MODELS), strict=True))
        params += _params(
            (spec, check) for spec, check in plugin_checks("timm", strict=True)
            if getattr(spec, "name", "") in TIMM_FULL or check.__name__ in ("check_plugin_hooks", "check_spec_fields")
        )
    return params


@pytest.mark.parametrize("spec, check", _shipped())
def test_shipped_plugins_conform(spec, check):
    check(spec)


def test_every_shipped_plugin_and_kind_is_covered():
    ids = {p.id for p in _shipped()}
    for plugin in DEFAULT_PLUGINS + ("example", "TimmBackbones", "timm"):
        assert any(i.startswith(f"{plugin}:") or i.startswith(f"{plugin}-") for i in ids), plugin
    for kind in ("backbone", "loss", "augmentation", "sampler", "corruption"):
        assert any(f":{kind}:" in i for i in ids), kind
    assert sum("check_corruption_monotone" in i for i in ids) >= 15  # every built-in corruption
    assert sum("check_backbone_output" in i for i in ids) >= len(TIMM_TEST_MODELS) + 13


def test_a_missing_plugin_package_fails_with_the_install_command():
    (param,) = _missing("sklearn_imgcls_nope", "plugins/sklearn-imgcls-nope")
    spec, check = param.values
    with pytest.raises(pytest.fail.Exception, match=r"bash scripts/setup_env.sh.*pip install plugins/sklearn-imgcls-nope"):
        check(spec)


# -- toy components ---------------------------------------------------------------------------------

class Toy(nn.Module):
    """A small CNN with a stem, a feature block and a head; knobs break it in one way each."""

    def __init__(self, in_channels, num_classes, image_size, head_out=None, detach=False, flat_out=False):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 6, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.ReLU())
        self.unused = nn.Conv2d(8, 8, 1)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(8, head_out or num_classes)
        self.detach, self.flat_out = detach, flat_out

    def forward(self, x):
        out = self.head(self.pool(self.block(self.stem(x))))
        out = out.detach() if self.detach else out
        return out.flatten() if self.flat_out else out


def toy_native(num_classes):
    return Toy(3, num_classes, (8, 8))


GOOD = dict(classifier="head", first_conv="stem", target_layer="block")


def backbone(build=Toy, **fields) -> BackboneSpec:
    return BackboneSpec("toy", build, "a toy CNN", plugin="toys", **{**GOOD, **fields})


def fails(check, spec, *fragments, **options) -> PluginCheckError:
    with pytest.raises(PluginCheckError) as info:
        check(spec, **options)
    error = info.value
    message = str(error)
    assert error.check == check.__name__ and f"{check.__name__} failed" in message
    assert "plugin 'toys'" in message and f"'{spec.name}'" in message and ". Fix: " in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return error


def test_a_well_behaved_toy_passes_every_check():
    assert len(check_backbone(backbone(build_native=toy_native))) == 7


def test_check_backbone_output_catches_wrong_shapes_sizes_and_types():
    fails(check_backbone_output, backbone(lambda c, k, s: Toy(c, k, s, head_out=10)),
          "returned shape (2, 10); expected (N, num_classes) = (2, 5)", "size the classification head")
    fails(check_backbone_output, backbone(lambda c, k, s: Toy(c, k, s, flat_out=True)), "returned shape (10,)")
    fixed = lambda c, k, s: nn.Sequential(nn.Flatten(), nn.Linear(c * 32 * 32, k))  # noqa: E731 - sized for 32x32 only
    fails(check_backbone_output, backbone(fixed), "forward of build(1, 5, (8, 8))", "raised RuntimeError",
          "adapt to the image size")
    fails(check_backbone_output, backbone(lambda c, k, s: "not a module"), "returned str, not a torch.nn.Module")


def test_check_backbone_backward_catches_detached_logits():
    fails(check_backbone_backward, backbone(lambda c, k, s: Toy(c, k, s, detach=True)), "backward raised",
          "do not detach the logits")


def test_check_backbone_declared_layers_catches_wrong_names_kinds_and_unused_layers():
    fails(check_backbone_declared_layers, backbone(classifier="fc"), "classifier='fc' is not a submodule",
          "stem, block, unused, pool, head", "classifier='head'")
    fails(check_backbone_declared_layers, backbone(classifier="stem"), "is a Conv2d", "not an nn.Linear")
    fails(check_backbone_declared_layers, backbone(_two_heads, classifier="hidden"), "out_features=7",
          "expected num_classes=5")
    fails(check_backbone_declared_layers, backbone(first_conv="block.0"),
          "first_conv='block.0' received 6 channels in build(1, 5, (8, 8)); expected in_channels=1")
    fails(check_backbone_declared_layers, backbone(target_layer="pool"), "outputs torch.Size([2, 8])",
          "Grad-CAM needs a feature map")
    fails(check_backbone_declared_layers, backbone(target_layer="unused"), "never runs in the forward pass")


def _two_heads(c, k, s):
    model = Toy(c, k, s)
    model.hidden = nn.Linear(8, 7)
    return model


def test_undeclared_layers_warn_and_fail_under_strict():
    spec = backbone(classifier=None, first_conv=None, target_layer=None)
    with pytest.warns(PluginCheckWarning) as record:
        check_backbone_declared_layers(spec)
    assert [str(w.message).split("warns: ")[1].split(":")[0] for w in record] == [
        "declares no classifier", "declares no first_conv", "declares no target_layer"]
    assert "Fix: declare it, e.g. BackboneSpec(..., target_layer='block.0')" in str(record[2].message)
    fails(check_backbone_declared_layers, spec, "declares no classifier", "BackboneSpec(..., classifier='head')",
          strict=True)


def test_check_backbone_native_catches_missing_or_mismatched_native_builds():
    weights = (PretrainedWeights("toy1k", dict, num_classes=1000),)
    fails(check_backbone_native, backbone(weights=weights), "declares pretrained weights but no build_native")
    renamed = lambda k: nn.Sequential(Toy(3, k, (8, 8)))  # noqa: E731 - names shifted under "0."
    fails(check_backbone_native, backbone(build_native=renamed), "classifier='head' is not a submodule of the module "
          "build_native(5) returns")


def test_check_backbone_weights_catches_malformed_declarations_and_unloadable_files(tmp_path):
    fails(check_backbone_weights, backbone(build_native=toy_native, weights=("IMAGENET1K_V1",)),
          "weights holds 'IMAGENET1K_V1', not a PretrainedWeights", "sklearn_imgcls.plugin.sources")
    byte_units = PretrainedWeights("toy1k", dict, mean=(124.0, 116.0, 104.0))
    fails(check_backbone_weights, backbone(build_native=toy_native, weights=(byte_units,)),
          "mean=(124.0, 116.0, 104.0) is outside (0, 1]", "0-1 pixel units")
    two = (PretrainedWeights("a", dict, default=True), PretrainedWeights("b", dict, default=True))
    fails(check_backbone_weights, backbone(build_native=toy_native, weights=two), "more than one weights entry")
    path = tmp_path / "toy.pt"
    torch.save(Toy(3, 10, (8, 8)).state_dict(), path)  # 10 outputs, declared as 1000
    wrong = PretrainedWeights("toy1k", lambda: torch.load(path, weights_only=True), num_classes=1000)
    spec = backbone(build_native=toy_native, weights=(wrong,))
    check_backbone_weights(spec)  # load() is only called on request
    fails(check_backbone_weights, spec, "weights 'toy1k' do not fit build_native(1000)", "size mismatch",
          check_weights=True)
    right = PretrainedWeights("toy10", lambda: torch.load(path, weights_only=True), num_classes=10)
    check_backbone_weights(backbone(build_native=toy_native, weights=(right,)), check_weights=True)


class Unpicklable(Toy):
    def __init__(self, *args):
        super().__init__(*args)
        self.activation = lambda x: x  # a lambda attribute: pickle cannot store it


def test_check_backbone_pickles_catches_lambda_attributes():
    fails(check_backbone_pickles, backbone(Unpicklable), "pickle of the built module raised",
          "keep lambdas, local functions")


def test_check_backbone_seeded_catches_initialisation_from_numpy_global_state():
    import numpy as np

    def unseeded(c, k, s):
        model = Toy(c, k, s)
        model.head.weight.data = torch.from_numpy(np.random.rand(k, 8).astype("float32"))
        return model

    fails(check_backbone_seeded, backbone(unseeded), "differ in ['head.weight']", "torch's default generator")


def test_check_spec_fields_catches_empty_descriptions_and_list_tags():
    fails(check_spec_fields, BackboneSpec("toy", Toy, "", plugin="toys"), "description is empty")
    fails(check_spec_fields, LossSpec("toy", ce, "ce", tags=["x"], plugin="toys"),
          "tags=['x'] is not a tuple")
    fails(check_spec_fields, SamplerSpec("toy", dict, "s", stage="batch", plugin="toys"), "stage='batch'")


# -- losses ------------------------------------------------------------------------------------------

def loss(build, **fields) -> LossSpec:
    return LossSpec("toy_loss", build, "a toy loss", plugin="toys", **fields)


class HardOnlyPoly1(nn.Module):
    """The example plugin's first Poly1Loss: indexes targets, so probability targets break it."""

    def __init__(self, class_weight=None):
        super().__init__()

    def forward(self, logits, targets):
        ce = nn.functional.cross_entropy(logits, targets, reduction="none")
        return (ce + 1 - torch.softmax(logits, 1).gather(1, targets[:, None]).squeeze(1)).mean()


def ce(class_weight=None, reduction="mean"):
    return nn.CrossEntropyLoss(weight=class_weight, reduction=reduction)


class ArgmaxCE(nn.CrossEntropyLoss):
    def __init__(self, class_weight=None):
        super().__init__(weight=class_weight)

    def forward(self, logits, targets):
        return super().forward(logits, targets.argmax(1) if targets.ndim == 2 else targets)


class NoReduction(nn.Module):
    def __init__(self, class_weight=None, class_priors=None):
        super().__init__()

    def forward(self, logits, targets):
        return nn.functional.cross_entropy(logits, targets)


def test_check_loss_integer_targets_catches_vectors_bad_weights_and_undeclared_priors():
    fails(check_loss_integer_targets, loss(lambda class_weight=None: nn.CrossEntropyLoss(reduction="none")),
          "returned torch.Size([6]); expected a float scalar")
    summed = lambda class_weight=None: nn.CrossEntropyLoss(weight=class_weight, reduction="sum")  # noqa: E731
    check_loss_integer_targets(loss(summed))  # sum is a scalar too, and ones as weights change nothing
    scaled = lambda class_weight=None: nn.CrossEntropyLoss(weight=None if class_weight is None else 2 * class_weight,  # noqa: E731
                                                           reduction="sum")
    fails(check_loss_integer_targets, loss(scaled), "class_weight=ones gives")

    def priors_required(class_weight=None, class_priors=None):
        if class_priors is None:
            raise ValueError("needs class_priors")
        return nn.CrossEntropyLoss()

    fails(check_loss_integer_targets, loss(priors_required), "raised ValueError: needs class_priors",
          "must declare LossSpec(..., needs_class_priors=True)")
    fails(check_loss_integer_targets, loss(lambda class_weight=None: nn.functional.cross_entropy),
          "not an nn.Module")


def test_check_loss_soft_targets_catches_index_only_and_argmax_losses():
    fails(check_loss_soft_targets, loss(HardOnlyPoly1, soft_targets=True), "the loss on one-hot float targets raised",
          "accept (N, num_classes) float probability targets")
    fails(check_loss_soft_targets, loss(ArgmaxCE, soft_targets=True), "the mixing is ignored")
    check_loss_soft_targets(loss(ce, soft_targets=True))
    assert "check_loss_soft_targets" not in str(check_loss(loss(HardOnlyPoly1)))  # not declared: not checked


def test_check_loss_sample_weights_catches_missing_or_ignored_reduction():
    fails(check_loss_sample_weights, loss(NoReduction, sample_weights=True), "has no `reduction`")

    class Ignored(NoReduction):
        reduction = "mean"

    fails(check_loss_sample_weights, loss(Ignored, sample_weights=True), "expected one loss per sample, shape (6,)")
    check_loss_sample_weights(loss(ce, sample_weights=True, soft_targets=True))


def test_check_loss_class_priors_catches_missing_parameters_and_ignored_priors():
    fails(check_loss_class_priors, loss(ce, needs_class_priors=True),
          "build has no class_priors parameter")
    fails(check_loss_class_priors, loss(NoReduction, needs_class_priors=True), "the same for uniform and skewed")


def test_check_loss_pickles_catches_closures():
    class Local(nn.CrossEntropyLoss):  # a class local to a function cannot be pickled
        def __init__(self, class_weight=None):
            super().__init__(weight=class_weight)

    fails(check_loss_pickles, loss(Local), "pickle of the built loss raised")
    check_loss_pickles(loss(ce))


# -- augmentations -----------------------------------------------------------------------------------

def augmentation(build, **fields) -> AugmentationSpec:
    return AugmentationSpec("toy_aug", build, "a toy augmentation", plugin="toys", **fields)


def test_check_augmentation_batch_catches_shape_changes_in_place_edits_and_undeclared_mixing():
    fails(check_augmentation_batch, augmentation(lambda: lambda x, g: x[..., 1:, :]),
          "came back as (4, 1, 11, 16)", "keep the batch's shape")
    fails(check_augmentation_batch, augmentation(lambda: lambda x, g: x.mul_(0.5)), "changed its input batch in place",
          "images.clone()")
    fails(check_augmentation_batch, augmentation(lambda: lambda x, g: (x, None)), "returned tuple, not a tensor",
          "declare mixes_labels=True")
    fails(check_augmentation_batch, augmentation(lambda: lambda x, g: x.double()), "torch.float64")

    def bad_mix(images, targets, generator):
        return images, targets * 0.5

    fails(check_augmentation_batch, augmentation(lambda: bad_mix, mixes_labels=True), "not probabilities")
    check_augmentation_batch(augmentation(lambda: lambda x, t, g: (x, t), mixes_labels=True))


def test_check_augmentation_seeded_catches_the_global_random_state():
    fails(check_augmentation_seeded, augmentation(lambda: lambda x, g: x + torch.rand(x.shape)),
          "draws from torch's global random state", "generator=generator")
    check_augmentation_seeded(augmentation(lambda: lambda x, g: x + torch.rand(x.shape, generator=g)))


def test_check_augmentation_declares_mixing_catches_an_attribute_the_spec_contradicts():
    mixer = SimpleNamespace(mixes_labels=True)
    fails(check_augmentation_declares_mixing, augmentation(lambda: mixer),
          "says mixes_labels=True but the spec declares mixes_labels=False", "mixes_labels=True)")


# -- samplers ----------------------------------------------------------------------------------------

def sampler(build, **fields) -> SamplerSpec:
    return SamplerSpec("toy_sampler", build, "a toy sampler", plugin="toys", **fields)


def test_check_sampler_epoch_catches_wrong_types_ranges_and_stage():
    fails(check_sampler_epoch, sampler(lambda: lambda y, g: torch.arange(len(y)).float()), "torch.float32",
          "1-D torch.int64")
    fails(check_sampler_epoch, sampler(lambda: lambda y, g: torch.arange(len(y)) + 1), "outside [0, 40)")
    fails(check_sampler_epoch, sampler(lambda: SimpleNamespace(fit_resample=None)),
          "object with fit_resample, but the spec declares stage='epoch'", "stage='training_split'")


def test_check_sampler_seeded_catches_the_global_random_state():
    fails(check_sampler_seeded, sampler(lambda: lambda y, g: torch.randperm(len(y))), "gave different indices")


class Resampler:
    def __init__(self, random_state=None):
        self.random_state = random_state

    def get_params(self):
        return {"random_state": self.random_state}

    def set_params(self, **params):
        return self

    def fit_resample(self, X, y):
        import numpy as np

        keep = np.random.default_rng().permutation(len(y))  # ignores random_state
        return X[keep], y[keep]


def test_check_sampler_training_split_catches_missing_fit_resample_and_unrepeatable_runs():
    fails(check_sampler_training_split, sampler(lambda: object(), stage="training_split"),
          "without fit_resample(X, y)")
    fails(check_sampler_training_split, sampler(Resampler, stage="training_split"),
          "two fit_resample runs with random_state=0 differ")
    assert "check_sampler_training_split" in str(check_sampler(sampler(_smote, stage="training_split")))


def _smote():
    from imblearn.over_sampling import SMOTE

    return SMOTE()


# -- corruptions ------------------------------------------------------------------------------------

def corruption(apply, **fields) -> CorruptionSpec:
    return CorruptionSpec("toy_corruption", lambda: apply, "a toy corruption", plugin="toys",
                          **{"family": "noise", **fields})


def _severity(severity):
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 5:
        raise ValueError(f"severity must be an integer from 0 to 5, got {severity!r}")
    return severity


def noisy(images, severity, generator):
    """A well-behaved corruption: uniform noise growing with the severity, drawn per pixel from the generator."""
    noise = torch.rand(images.shape, generator=generator) - 0.5
    return (images + 0.1 * _severity(severity) * noise).clamp(0, 1)


def test_a_well_behaved_toy_corruption_passes_every_check():
    assert len(check_corruption(corruption(noisy))) == 5
    assert len(check_corruption("gaussian_noise")) == 5  # a registered name resolves through the registry
    with pytest.raises(TypeError, match="check_corruption takes a CorruptionSpec"):
        check_corruption(backbone())


def test_check_corruption_fields_catches_a_missing_family_and_a_bad_max_severity():
    fails(check_corruption_fields, corruption(noisy, family=""), "family=''", "declare family='noise'")
    fails(check_corruption_fields, corruption(noisy, max_severity=0), "max_severity=0", "positive int")


def test_check_corruption_batch_catches_shapes_ranges_in_place_edits_and_severity_0():
    fails(check_corruption_batch, corruption(lambda x, s, g: x[..., 1:, :]), "came back as (4, 1, 7, 8)",
          "keep the batch's shape and dtype")
    fails(check_corruption_batch, corruption(lambda x, s, g: x * 2 + s), "values leave [0, 1]", "clamp the result")
    fails(check_corruption_batch, corruption(lambda x, s, g: x.mul_(1 - s / 10)), "changed its input in place")
    fails(check_corruption_batch, corruption(lambda x, s, g: (x + 0.1).clamp(0, 1)), "severity 0 changed the images",
          "return the images unchanged")

    def rgb_only(x, s, g):
        assert x.shape[1] in (1, 3), "only 1 or 3 channels"
        return noisy(x, s, g)

    fails(check_corruption_batch, corruption(rgb_only), "(4, 4, 8, 8) batch, severity=0", "raised AssertionError",
          "work on any number of channels")


def test_check_corruption_seeded_catches_the_global_random_state_and_one_draw_per_batch():
    fails(check_corruption_seeded, corruption(lambda x, s, g: (x + 0.1 * s * torch.rand(x.shape)).clamp(0, 1)),
          "the same generator seed gave different batches", "generator=generator")

    def one_draw(x, s, g):
        return (x + 0.1 * s * torch.rand((1, *x.shape[1:]), generator=g)).clamp(0, 1)

    fails(check_corruption_seeded, corruption(one_draw), "one random draw serves the whole batch", "per image")
    check_corruption_seeded(corruption(lambda x, s, g: x * (1 - _severity(s) / 10)))  # deterministic is fine


def test_check_corruption_severity_range_catches_unchecked_severities():
    fails(check_corruption_severity_range, corruption(lambda x, s, g: (x * (1 - min(s, 5) / 10))),
          "severity=-1 was accepted; the declared range is 0..5", "raise ValueError")

    def key_error(x, s, g):
        return {0: x, 1: x * 0.9, 2: x * 0.8, 3: x * 0.7, 4: x * 0.6, 5: x * 0.5}[s]

    fails(check_corruption_severity_range, corruption(key_error), "severity=-1 raised KeyError, not a ValueError")


def test_check_corruption_monotone_catches_severities_that_do_not_grow():
    flat = corruption(lambda x, s, g: x.clone() if _severity(s) == 0 else (x + 0.2).clamp(0, 1))
    fails(check_corruption_monotone, flat, "is not increasing", "strictly stronger")
    flipped = corruption(lambda x, s, g: x.clone() if _severity(s) == 0 else x * (0.5 + _severity(s) / 10))
    fails(check_corruption_monotone, flipped, "mean absolute change by severity on 1-channel (16, 16) digits")


# -- whole plugins -----------------------------------------------------------------------------------

class ToyPlugin:
    @hookimpl
    def sklearn_imgcls_register_backbones(self):
        return [BackboneSpec("toy", Toy, "a toy CNN", **{**GOOD, "target_layer": "unused"})]

    @hookimpl
    def sklearn_imgcls_register_losses(self):
        return [LossSpec("toy_loss", HardOnlyPoly1, "claims soft targets", soft_targets=True),
                LossSpec("toy_ce", ce, "fine", soft_targets=True, sample_weights=True)]


class OldNames:
    @hookimpl
    def register_augmentations(self):
        return [AugmentationSpec("toy_aug", lambda: lambda x, g: x.clone(), "identity")]


def test_check_plugin_reports_every_failure_at_once():
    with pytest.raises(PluginCheckError) as info:
        check_plugin(ToyPlugin())
    failures = {(f.plugin, f.component, f.check) for f in info.value.failures}
    assert failures == {("ToyPlugin", "toy", "check_backbone_declared_layers"),
                        ("ToyPlugin", "toy_loss", "check_loss_soft_targets")}
    assert str(info.value).startswith("plugin 'ToyPlugin': 2 of 16 checks failed:\n- plugin 'ToyPlugin', backbone")
    ran = check_plugin(ToyPlugin(), select=["toy_ce"])
    assert ran == ["ToyPlugin-check_plugin_hooks"] + [f"ToyPlugin:loss:toy_ce-check_{name}" for name in (
        "spec_fields", "loss_integer_targets", "loss_soft_targets", "loss_sample_weights", "loss_pickles")]


def test_deprecated_hook_names_warn_and_fail_under_strict():
    target = collect_plugin(OldNames())
    assert target.deprecated_hooks == ("register_augmentations",)
    with pytest.warns(PluginCheckWarning, match="rename the function to sklearn_imgcls_register_augmentations"):
        check_plugin_hooks(target)
    with pytest.raises(PluginCheckError, match="implements the deprecated hook register_augmentations"):
        check_plugin(OldNames(), strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginDeprecationWarning)
        warnings.simplefilter("ignore", PluginCheckWarning)
        assert check_plugin(OldNames())  # collecting does not raise pluggy's warning as an error


def test_collecting_refuses_bad_plugins_by_name():
    from tests.plugins import unknown_hook, wrong_spec_type

    with pytest.raises(PluginCheckError, match="collect_plugin failed: .*register_optimisers"):
        collect_plugin(unknown_hook)
    with pytest.raises(PluginCheckError, match="returned LossSpec.*return BackboneSpec instances"):
        collect_plugin(wrong_spec_type)
    with pytest.raises(PluginCheckError, match=r"no installed plugin .*'nope'.*installed: .*example"):
        collect_plugin("nope")

    class Empty:
        @hookimpl
        def sklearn_imgcls_register_samplers(self):
            return []

    with pytest.raises(PluginCheckError, match="its hooks return no components"):
        check_plugin(Empty())

    class Twice:
        @hookimpl
        def sklearn_imgcls_register_losses(self):
            return [LossSpec("x", ce, "a"), LossSpec("x", ce, "b")]

    with pytest.raises(PluginCheckError, match="loss 'x' is returned twice"):
        collect_plugin(Twice())


def test_plugins_are_found_by_entry_point_module_and_builtin_name():
    assert collect_plugin("example").plugin == "example"
    import sklearn_imgcls_example

    assert collect_plugin(sklearn_imgcls_example).plugin == "example"
    names = {s.name for s in collect_plugin("sklearn_imgcls.builtin.losses").specs}
    assert {"cross_entropy", "focal"} <= names
    assert check_augmentation("flip_h") and check_loss("focal")  # registered names resolve through the registry
    with pytest.raises(TypeError, match="check_loss takes a LossSpec"):
        check_loss(backbone())


@parametrize_with_checks([ToyPlugin()], select=["toy_ce"])
def test_parametrize_with_checks_gives_one_test_per_check(spec, check, request):
    check(spec)
    assert request.node.callspec.id.startswith(("ToyPlugin-check_plugin_hooks", "ToyPlugin:loss:toy_ce-check_"))


def test_parametrize_with_checks_ids_name_plugin_kind_component_and_check():
    mark = parametrize_with_checks(ToyPlugin(), select=["toy_ce"])
    ids = [mark.kwargs["ids"](value) for pair in mark.args[1] for value in pair]
    assert "ToyPlugin:loss:toy_ce" in ids and "check_loss_sample_weights" in ids
    assert "check_backbone_output" not in ids  # select kept only toy_ce


class MatrixOnlyBCE(nn.Module):
    """A third party's multi-label loss: (N, k) 0/1 targets only, class_weight as each label's pos_weight."""

    def __init__(self, class_weight=None):
        super().__init__()
        self.class_weight, self.reduction = class_weight, "mean"

    def forward(self, logits, targets):
        if targets.ndim != 2:
            raise ValueError("expects an (N, k) 0/1 matrix")
        per_label = nn.functional.binary_cross_entropy_with_logits(logits, targets.float(),
                                                                   pos_weight=self.class_weight, reduction="none")
        per_image = per_label.mean(dim=1)  # reduction='none': one value per image, as sample weights need
        return per_image if self.reduction == "none" else per_image.mean()


def test_a_multilabel_loss_is_checked_on_label_matrices_not_class_indices():
    spec = loss(MatrixOnlyBCE, multilabel=True, sample_weights=True)
    check_spec_fields(spec)
    check_loss_multilabel_targets(spec)
    check_loss_sample_weights(spec)  # reduction='none' on a 0/1 matrix: one value per image
    ran = check_loss(spec)  # every check that applies to a multi-label loss, and only those
    assert [r.split("-")[-1] for r in ran] == ["check_spec_fields", "check_loss_multilabel_targets",
                                               "check_loss_sample_weights", "check_loss_pickles"], ran
    # declared multilabel but it indexes class labels: the multi-label check names the fix
    fails(check_loss_multilabel_targets, loss(HardOnlyPoly1, multilabel=True), "a 0/1 label matrix",
          "declare multilabel=False")
    fails(check_loss_multilabel_targets, loss(lambda class_weight=None: MatrixOnlyBCE(class_weight * 2
          if class_weight is not None else None), multilabel=True), "class_weight=ones gives")
    fails(check_spec_fields, loss(MatrixOnlyBCE, multilabel="yes"), "multilabel='yes' is not a bool")


"""Plugin contract v2: hooks called through pluggy, deprecated hook names, declared components.

Plugins are registered on a fresh registry (``builtin_registry()``) or, where
an estimator must find them, on the process registry inside the
``fresh_registry`` fixture, so nothing leaks into other tests.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from dataclasses import replace
from importlib.metadata import entry_points

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_imgcls.plugin.hookspecs import PluginDeprecationWarning
from sklearn_imgcls import CNNClassifier
from sklearn_imgcls._core.components import resolve_sampler
from sklearn_imgcls._core.iterators import augment_batch
from sklearn_imgcls.plugin import AugmentationSpec, BackboneSpec, LossSpec, SamplerSpec, hookimpl
from sklearn_imgcls.plugin.discovery import ENTRY_POINT_GROUP, PluginError, make_plugin_manager
from sklearn_imgcls.plugin.hookspecs import DEPRECATED_HOOKS, HOOKS
from sklearn_imgcls.plugin.registry import ComponentChain, Registry, get_registry
from tests.plugins import tiny_linear

FIT = dict(image_shape=(1, 8, 8), max_epochs=1, batch_size=64, validation_fraction=None, random_state=0)


def builtin_registry() -> Registry:
    return Registry(*make_plugin_manager(load_entry_points=False, blocked=()))


def register_legacy(registry: Registry, name: str = "legacy") -> str:
    """Register tests/plugins/tiny_linear.py (0.1 contract); its deprecation warnings are expected here."""
    with pytest.warns(PluginDeprecationWarning):
        return registry.register_plugin(tiny_linear, name=name)


# -- hooks go through pluggy ----------------------------------------------------------
def test_hook_monitoring_sees_one_call_per_contributing_plugin():
    registry = builtin_registry()
    calls = []
    undo = registry.plugin_manager.add_hookcall_monitoring(
        lambda hook, impls, kwargs: calls.append((hook, [impl.plugin_name for impl in impls])),
        lambda outcome, hook, impls, kwargs: calls.append(("done", len(outcome.get_result()[0]))),
    )
    try:
        names = registry.names("augmentation")
    finally:
        undo()
    started = [entry for entry in calls if entry[0] == HOOKS["augmentation"]]
    assert [plugins for _, plugins in started] == [
        ["sklearn_imgcls.builtin.augmentations"], ["sklearn_imgcls.builtin.mixing"],
        ["sklearn_imgcls.builtin.policy_augmentations"],
    ]
    assert sum(n for tag, n in calls if tag == "done") == len(names)


def test_enable_tracing_writes_the_hook_calls():
    registry = builtin_registry()
    lines = []
    registry.plugin_manager.trace.root.setwriter(lines.append)
    undo = registry.plugin_manager.enable_tracing()
    try:
        registry.specs("loss")
    finally:
        undo()
    assert any(HOOKS["loss"] in line for line in lines)
    assert any("finish" in line and "cross_entropy" in line for line in lines)


class HideTorchvision:
    """A plugin whose only backbone hook is a wrapper: it drops every spec tagged "torchvision"."""

    @hookimpl(wrapper=True)
    def sklearn_imgcls_register_backbones(self):
        contributed = yield
        return [[spec for spec in specs if "torchvision" not in spec.tags] for specs in contributed]


class AuditLosses:
    """A wrapper that adds a tag to every loss it sees, and a plain hook that adds a loss of its own."""

    @hookimpl(wrapper=True)
    def sklearn_imgcls_register_losses(self):
        contributed = yield
        return [[replace(spec, tags=spec.tags + ("audited",)) for spec in specs] for specs in contributed]

    @hookimpl
    def sklearn_imgcls_register_augmentations(self):
        return [AugmentationSpec("identity", lambda: (lambda images, generator: images), "does nothing")]


def test_a_hook_wrapper_filters_the_specs_of_every_plugin():
    registry = builtin_registry()
    assert "resnet18" in registry.names("backbone")
    registry.register_plugin(HideTorchvision(), name="hide_torchvision")
    names = registry.names("backbone")
    assert "resnet18" not in names and "vit_b_16" not in names
    assert {"simple_cnn", "bn_cnn"} <= set(names)
    assert registry.get("backbone", "bn_cnn").plugin == "sklearn_imgcls.builtin.cnn_backbones"  # still attributed
    registry.unregister_plugin("hide_torchvision")
    assert "resnet18" in registry.names("backbone")


def test_a_hook_wrapper_rewrites_specs_and_its_plugin_adds_components():
    registry = builtin_registry()
    registry.register_plugin(AuditLosses(), name="audit")
    assert all("audited" in spec.tags for spec in registry.specs("loss").values())
    assert registry.get("loss", "focal").tags == ("imbalance", "audited")
    assert registry.get("augmentation", "identity").plugin == "audit"


def test_a_wrapper_returning_no_lists_is_named():
    class Broken:
        @hookimpl(wrapper=True)
        def sklearn_imgcls_register_samplers(self):
            yield
            return ["oversample"]

    registry = builtin_registry()
    registry.register_plugin(Broken(), name="broken")
    with pytest.raises(TypeError, match="plugin 'sklearn_imgcls.builtin.samplers' returned 'oversample'.*wrappers"):
        registry.specs("sampler")


# -- deprecated hook names -----------------------------------------------------------------
def test_deprecated_hooks_still_register_components_and_warn_with_names():
    registry = builtin_registry()
    with pytest.warns(PluginDeprecationWarning) as caught:
        registry.register_plugin(tiny_linear, name="legacy")
    messages = {str(w.message) for w in caught}
    for kind, old in DEPRECATED_HOOKS.items():
        assert any(f"plugin 'legacy' implements the deprecated hook {old}:" in m and HOOKS[kind] in m for m in messages)
    assert {w.filename for w in caught} == {tiny_linear.__file__}  # points at the plugin's own functions
    assert "tiny_linear" in registry.names("backbone")
    assert {"legacy_prior_ce", "legacy_nll"} <= set(registry.names("loss"))
    assert registry.get("loss", "legacy_nll").plugin == "legacy"
    assert registry.from_deprecated_hook("loss", "legacy_nll") and not registry.from_deprecated_hook("loss", "focal")
    expected = sorted(("legacy", old, HOOKS[kind]) for kind, old in DEPRECATED_HOOKS.items())
    assert sorted(registry.deprecated_hook_users()) == expected


def test_deprecated_hooks_warn_when_discovered_through_an_entry_point(tmp_path, monkeypatch):
    """An installed 0.1 plugin (a real dist-info on sys.path) warns when discovery loads it."""
    (tmp_path / "old_style_plugin.py").write_text(textwrap.dedent('''
        from sklearn_imgcls.hookspecs import hookimpl
        from sklearn_imgcls.specs import SamplerSpec

        @hookimpl
        def register_samplers():
            return [SamplerSpec("every_other", lambda: (lambda y, generator: y[::2]), "old style")]
    '''))
    info = tmp_path / "old_style_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: old-style-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nold_style = old_style_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    others = [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name != "old_style"]
    try:
        with pytest.warns(PluginDeprecationWarning, match="plugin 'old_style' implements the deprecated hook "
                                                    "register_samplers.*sklearn_imgcls_register_samplers"):
            registry = Registry(*make_plugin_manager(default_plugins=(), blocked=others))
    finally:
        sys.modules.pop("old_style_plugin", None)
    assert registry.names("sampler") == ["every_other"]
    assert ("old_style", "old-style-plugin") in registry.plugins()


def test_a_plugin_on_both_names_of_a_hook_is_refused():
    class Both:
        @hookimpl
        def sklearn_imgcls_register_losses(self):
            return []

        @hookimpl
        def register_losses(self):
            return []

    registry = builtin_registry()
    with pytest.raises(PluginError, match="'both' implements both sklearn_imgcls_register_losses and its "
                                          "deprecated name register_losses.*remove register_losses"):
        registry.register_plugin(Both(), name="both")  # refused outright: no deprecation warning needed
    assert "both" not in dict(registry.plugins())


# -- what built-ins declare ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cross_entropy", "label_smoothing", "focal", "logit_adjustment"])
def test_builtin_losses_do_what_they_declare(name):
    spec = builtin_registry().get("loss", name)
    assert spec.soft_targets and spec.sample_weights
    assert spec.needs_class_priors == (name == "logit_adjustment")
    extra = {"class_priors": torch.tensor([0.5, 0.3, 0.2])} if spec.needs_class_priors else {}
    loss = spec.build(class_weight=None, **extra)
    logits, labels = torch.randn(5, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 0, 1])
    torch.testing.assert_close(loss(logits, labels), loss(logits, nn.functional.one_hot(labels, 3).float()))
    loss.reduction = "none"
    assert loss(logits, labels).shape == (5,)


def test_builtin_augmentations_and_samplers_declare_mixing_and_stage():
    registry = builtin_registry()
    mixing = {name for name, spec in registry.specs("augmentation").items() if spec.mixes_labels}
    assert mixing == {"mixup", "cutmix"}
    assert {name: spec.stage for name, spec in registry.specs("sampler").items()} == {
        "oversample": "epoch", "undersample": "epoch", "smote": "training_split"}


def test_label_mixing_is_read_from_the_spec_not_from_the_built_object(fresh_registry):
    class Marked:  # a v2 per-image augmentation that happens to carry the old attribute
        mixes_labels = True

        def __call__(self, images, generator):
            return images + 1

    def swap(images, targets, generator):  # a declared mixer without any attribute
        return images.flip(0), targets.flip(0)

    class Plugin:
        @hookimpl
        def sklearn_imgcls_register_augmentations(self):
            return [AugmentationSpec("marked", Marked, "per image"),
                    AugmentationSpec("swap", lambda: swap, "mixes", mixes_labels=True)]

    get_registry().register_plugin(Plugin(), name="mixers")
    chain = ComponentChain("augmentation", [("marked", {}), ("swap", {})]).build()
    assert chain.mixes_labels() == [False, True]
    images, labels = torch.zeros(2, 1, 2, 2), torch.tensor([0, 1])
    out, soft = augment_batch(chain, images, labels, torch.Generator(), 2)
    assert torch.equal(out, images + 1) and torch.equal(soft, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


# -- incompatible combinations are refused in fit, before anything is built ----------------------
BUILT = {"backbone": 0}


def counted_linear(in_channels, num_classes, image_size):
    BUILT["backbone"] += 1
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size[0] * image_size[1], num_classes))


class HardCE(nn.Module):
    """Cross-entropy for integer targets, declared as such (no soft targets, no sample weights)."""

    def forward(self, logits, targets):
        return nn.functional.cross_entropy(logits, targets)


class Strict:
    """A v2 plugin whose components declare their limits."""

    @hookimpl
    def sklearn_imgcls_register_backbones(self):
        return [BackboneSpec("counted_linear", counted_linear, "a linear layer that counts its builds")]

    @hookimpl
    def sklearn_imgcls_register_losses(self):
        return [
            LossSpec("hard_ce", lambda class_weight=None: HardCE(), "integer targets only"),
            LossSpec("needs_priors", lambda class_priors, class_weight=None: HardCE(), "undeclared priors"),
        ]

    @hookimpl
    def sklearn_imgcls_register_samplers(self):
        return [
            SamplerSpec("per_batch", lambda: (lambda y, g: torch.arange(len(y))), "bad stage", stage="per_batch"),
            SamplerSpec("not_resampler", lambda: (lambda y, g: torch.arange(len(y))), "no fit_resample",
                        stage="training_split"),
            SamplerSpec("undeclared_resampler", tiny_linear.HalfResampler, "fit_resample, stage left 'epoch'"),
        ]


@pytest.fixture
def strict(fresh_registry):
    get_registry().register_plugin(Strict(), name="strict")
    BUILT["backbone"] = 0
    yield
    assert BUILT["backbone"] == 0  # refused before the network was built: nothing trained


def refused(clf, X, y, error, pattern, **fit_params):
    with pytest.raises(error, match=pattern):
        clf.fit(X, y, **fit_params)
    assert not hasattr(clf, "net_")


def test_a_loss_without_soft_targets_is_refused_under_label_mixing(digits_small, strict):
    X, y = digits_small
    refused(CNNClassifier("counted_linear", loss="hard_ce", augment=["flip_h", "mixup"], **FIT), X, y, ValueError,
            r"loss 'hard_ce' \(plugin 'strict'\) does not declare soft_targets=True, but augment includes 'mixup'.*"
            r"Use a loss that declares soft_targets \(cross_entropy, focal.*or remove 'mixup' from augment")
    refused(CNNClassifier("counted_linear", loss="hard_ce", augment=["mixup", "cutmix"], **FIT), X, y, ValueError,
            "'mixup' and 'cutmix', which mix labels")


def test_sample_weight_with_a_loss_that_cannot_weight_samples_is_refused(digits_small, strict):
    X, y = digits_small
    refused(CNNClassifier("counted_linear", loss="hard_ce", **FIT), X, y, ValueError,
            r"sample_weight needs .* loss 'hard_ce' \(plugin 'strict'\) does not declare sample_weights=True.*"
            r"cross_entropy", sample_weight=np.ones(len(y)))


def test_sampler_stages_are_checked(digits_small, strict, tmp_path):
    from PIL import Image

    X, y = digits_small
    refused(CNNClassifier("counted_linear", sampler="per_batch", **FIT), X, y, ValueError,
            r"sampler 'per_batch' \(plugin 'strict'\) declares stage='per_batch'.*'epoch', 'training_split'")
    refused(CNNClassifier("counted_linear", sampler="not_resampler", **FIT), X, y, TypeError,
            "declares stage='training_split' but builds a function without fit_resample")
    refused(CNNClassifier("counted_linear", sampler="undeclared_resampler", **FIT), X, y, TypeError,
            "declares stage='epoch' but builds a HalfResampler.*declare stage='training_split'")
    paths = []
    for i in range(12):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray((X[i].reshape(8, 8) * 255).astype(np.uint8)).save(paths[-1])
    refused(CNNClassifier("counted_linear", sampler="smote", **{**FIT, "image_shape": None}), paths, y[:12],
            ValueError, r"resamples the training split's images in memory \(stage='training_split'\)")


def test_a_loss_requiring_undeclared_priors_is_named(digits_small, strict):
    X, y = digits_small
    refused(CNNClassifier("counted_linear", loss="needs_priors", **FIT), X, y, TypeError,
            "requires class_priors but its LossSpec does not declare needs_class_priors=True")


# -- plugins on the deprecated hooks fall back to 0.1's inference, never silently wrong ------------
@pytest.fixture
def legacy(fresh_registry):
    register_legacy(get_registry())


def test_legacy_loss_gets_priors_from_its_signature(digits_small, legacy):
    X, y = digits_small
    clf = CNNClassifier("tiny_linear", loss="legacy_prior_ce", **FIT).fit(X, y)
    priors = torch.tensor(np.bincount(y) / len(y), dtype=torch.float32)
    torch.testing.assert_close(clf.net_.criterion_.seen_priors, priors)


def test_legacy_losses_under_mixing_are_probed_before_training(digits_small, legacy):
    X, y = digits_small
    refused(CNNClassifier("tiny_linear", loss="legacy_nll", augment=["mixup"], **FIT), X, y, ValueError,
            "loss 'legacy_nll' .*declares no soft_targets .*misreads them.*remove 'mixup'")
    refused(CNNClassifier("tiny_linear", loss="legacy_nll", augment=["legacy_swap"], **FIT), X, y, ValueError,
            "'legacy_swap'")  # the 0.1 attribute still marks a deprecated-hook augmentation as label-mixing
    clf = CNNClassifier("tiny_linear", loss="legacy_prior_ce", augment=["mixup"], **FIT).fit(X, y)
    assert np.isfinite(clf.history_[-1, "train_loss"])  # a loss that reads soft targets right keeps working


def test_legacy_sample_weighting_and_sampler_stage_fall_back(digits_small, legacy):
    X, y = digits_small
    refused(CNNClassifier("tiny_linear", loss="legacy_nll", **FIT), X, y, ValueError,
            "'legacy_nll' cannot weight samples: its module has no 'reduction'", sample_weight=np.ones(len(y)))
    CNNClassifier("tiny_linear", loss="legacy_prior_ce", **FIT).fit(X, y, sample_weight=np.ones(len(y)))
    sampler, resampler = resolve_sampler(get_registry(), ("legacy_half", {}))
    assert sampler is None and isinstance(resampler, tiny_linear.HalfResampler)

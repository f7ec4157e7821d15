"""How the estimators meet persistence and skorch: the recipe protocol, Unfreezer, one statistics function."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, Unfreezer

import sklearn_imgcls
from sklearn_imgcls import CNNClassifier, TransferClassifier
from sklearn_imgcls._core.recipe import RECIPE_KEYS, ModelRecipe

SMALL = {"channels": (4, 8), "hidden": 16}


def test_the_recipe_protocol_describes_what_fit_builds(digits_small):
    X, y = digits_small
    unfitted = CNNClassifier(preset="fast").__sklearn_imgcls_recipe__((1, 8, 8))
    assert unfitted == ModelRecipe(None, {"source": "registry", "backbone": "simple_cnn", "backbone_params": {},
                                          "build_size": (8, 8), "build_channels": 1, "replace_head": False}, False)
    transfer = TransferClassifier("simple_cnn", weights=None).__sklearn_imgcls_recipe__((3, 16, 16))
    assert transfer.fixed == {"backbone": "simple_cnn"} and transfer.freezes and transfer.architecture is None
    clf = CNNClassifier("simple_cnn", backbone_params=SMALL, max_epochs=1, random_state=0).fit(X, y)
    described = clf.__sklearn_imgcls_recipe__()
    assert described.architecture == clf.net_.module_.recipe and set(described.architecture) == RECIPE_KEYS
    assert described.fixed["build_size"] == (8, 8)
    with pytest.raises(ValueError, match="preset must be one of"):  # parameters are checked as fit checks them
        CNNClassifier(preset="slow").__sklearn_imgcls_recipe__((1, 8, 8))


@pytest.mark.parametrize("make", [
    lambda: CNNClassifier("simple_cnn", backbone_params=SMALL, max_epochs=1, random_state=0),
    lambda: TransferClassifier("simple_cnn", weights=None, backbone_params=SMALL, max_epochs=1, random_state=0),
], ids=["cnn", "transfer"])
def test_networks_without_a_recorded_recipe_are_described_by_their_estimator(make, digits_small, tmp_path):
    # networks built before recipes were recorded on them (older pickles): each estimator rebuilds its own recipe
    X, y = digits_small
    clf = make().fit(X, y)
    recorded = clf.net_.module_.recipe
    del clf.net_.module_.recipe
    assert clf.__sklearn_imgcls_recipe__().architecture == recorded
    loaded = sklearn_imgcls.load(clf.save(tmp_path / "model.safetensors"))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)


def test_a_file_naming_an_estimator_outside_the_allow_list_is_refused(digits_small, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    X, y = digits_small
    path = CNNClassifier("simple_cnn", backbone_params=SMALL, max_epochs=1).fit(X, y).save(tmp_path / "m.safetensors")
    with safe_open(path, framework="pt") as handle:
        metadata, tensors = handle.metadata(), {k: handle.get_tensor(k) for k in handle.keys()}
    save_file(tensors, tmp_path / "evil.safetensors", metadata={**metadata, "estimator": "BaseImageClassifier"})
    with pytest.raises(ValueError, match="names estimator 'BaseImageClassifier', which load\\(\\) does not create"):
        sklearn_imgcls.load(tmp_path / "evil.safetensors")


class _TrainableBackbone(Callback):
    """Records, at the end of each epoch, whether every backbone parameter trains."""

    def initialize(self):
        self.trainable = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.trainable.append(all(p.requires_grad for p in net.module_.backbone.parameters()))


def test_skorchs_unfreezer_releases_the_backbone_for_the_last_epochs_only(digits_small):
    X, y = digits_small
    probe = _TrainableBackbone()
    clf = TransferClassifier("bn_cnn", weights=None, freeze="backbone", max_epochs=4, fine_tune_epochs=2,
                             batch_size=64, callbacks=[("probe", probe)], random_state=0).fit(X, y)
    unfreezers = [cb for _, cb in clf.net_.callbacks_ if isinstance(cb, Unfreezer)]
    assert len(unfreezers) == 1
    assert probe.trainable == [False, False, True, True]
    assert not any(name.startswith("backbone.backbone") for name in unfreezers[0].patterns)


def test_transfer_normalize_decides_the_statistics_when_the_weights_have_none(digits_small):
    X, y = digits_small
    own = TransferClassifier("simple_cnn", weights=None, max_epochs=1, random_state=0).fit(X, y).net_.module_
    raw = TransferClassifier("simple_cnn", weights=None, max_epochs=1, normalize=False, random_state=0).fit(X, y)
    assert torch.equal(raw.net_.module_.mean, torch.zeros(1, 1, 1, 1))
    assert torch.equal(raw.net_.module_.std, torch.ones(1, 1, 1, 1))
    assert own.mean.item() == pytest.approx(float(X.mean()), abs=1e-4)
    assert own.std.item() == pytest.approx(float(X.std()), rel=1e-2)
    cnn = CNNClassifier("simple_cnn", max_epochs=1, random_state=0).fit(X, y).net_.module_
    assert torch.equal(cnn.mean, own.mean) and torch.equal(cnn.std, own.std)  # one statistics function for both


def test_the_estimator_base_reaches_no_public_module():
    code = ("import sys, sklearn_imgcls._core.base, sklearn_imgcls._core.net_factory; "
            "print(sorted(m for m in sys.modules if m.startswith('sklearn_imgcls.') and m.split('.')[1] in "
            "('persistence', 'onnx_export', 'lr_finder', 'checkpoints', 'presets', 'cli', 'builtin', 'robustness', "
            "'cnn', 'transfer', 'classifier')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_preset_data_are_core_data_re_exported_publicly():
    from sklearn_imgcls._core.preset_data import AUGMENT_PRESETS as core
    from sklearn_imgcls.presets import AUGMENT_PRESETS

    assert AUGMENT_PRESETS is core and sorted(AUGMENT_PRESETS) == ["light", "standard", "strong"]

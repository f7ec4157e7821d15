"""The example plugin in plugins/ works after a plain ``pip install``.

``scripts/setup_env.sh`` installs it (not editable) into the test environment.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import torch

from sklearn_imgcls import CNNClassifier, build_loss, list_augmentations, list_backbones, list_losses, list_plugins



def test_the_example_plugin_is_installed():
    """CI installs the plugin (scripts/setup_env.sh); without it this fails rather than letting the others skip."""
    assert any(ep.name == "example" for ep in entry_points(group="sklearn_imgcls")), (
        "plugins/sklearn-imgcls-example is not installed: run scripts/setup_env.sh")


def test_entry_point_plugin_is_discovered_with_its_package():
    assert ("example", "sklearn-imgcls-example") in list_plugins()
    assert "lenet5" in list_backbones()
    assert "poly1" in list_losses()
    assert "invert" in list_augmentations()


def test_train_with_the_plugin_backbone_and_loss_by_name(digits_small):
    X, y = digits_small
    clf = CNNClassifier("lenet5", loss="poly1", image_shape=(1, 8, 8), preset="fast", max_epochs=10, lr=5e-3, random_state=0)
    clf.fit(X, y)
    assert clf.net_.module_.backbone.__class__.__module__ == "sklearn_imgcls_example"
    assert clf.score(X, y) > 0.8


def test_poly1_equals_its_formula():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([0, 0])
    p_true = torch.softmax(logits, 1)[:, 0]
    expected = (torch.nn.functional.cross_entropy(logits, targets, reduction="none") + 2.0 * (1 - p_true)).mean()
    assert torch.isclose(build_loss("poly1", epsilon=2.0)(logits, targets), expected)


def test_blocking_the_plugin_from_the_environment():
    code = "import sklearn_imgcls as s; print('lenet5' in s.list_backbones())"
    env_out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"SKLEARN_IMGCLS_BLOCK_PLUGINS": "example", "PATH": ""},
    ).stdout
    assert env_out.strip() == "False"


def test_the_example_plugin_is_on_contract_v2():
    from sklearn_imgcls.plugin.registry import get_registry

    registry = get_registry()
    assert not [user for user in registry.deprecated_hook_users() if user[0] == "example"]
    spec = registry.get("loss", "poly1")
    assert spec.soft_targets and spec.sample_weights and not spec.needs_class_priors
    backbone = registry.get("backbone", "lenet5")
    model = backbone.build(1, 3, (8, 8))
    assert isinstance(model.get_submodule(backbone.classifier), torch.nn.Linear)
    assert isinstance(model.get_submodule(backbone.first_conv), torch.nn.Conv2d)
    model.get_submodule(backbone.target_layer)


def test_poly1_takes_soft_targets_and_weights_samples():
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    weight = torch.tensor([1.0, 2.0, 0.5])
    one_hot = torch.nn.functional.one_hot(labels, 3).float()
    loss = build_loss("poly1", class_weight=weight)
    torch.testing.assert_close(loss(logits, one_hot), loss(logits, labels))  # one-hot rows = their labels
    soft = 0.7 * one_hot + 0.3 * one_hot.roll(1, dims=0)
    p = torch.softmax(logits, 1)
    expected = -(soft * torch.log(p)).sum(1) + 1.0 - (soft * p).sum(1)  # CE + epsilon * (1 - p_t), p_t = <q, p>
    w = soft @ weight
    torch.testing.assert_close(loss(logits, soft), (w * expected).sum() / w.sum())
    loss.reduction = "none"
    torch.testing.assert_close(loss(logits, soft), w * expected)


def test_train_poly1_under_mixup_with_sample_weights(digits_small):
    import numpy as np

    X, y = digits_small
    clf = CNNClassifier("lenet5", loss="poly1", augment=["mixup"], image_shape=(1, 8, 8), preset="fast", max_epochs=10,
                        lr=5e-3, random_state=0)
    clf.fit(X, y, sample_weight=np.linspace(0.5, 2.0, len(y)))
    assert np.isfinite(clf.history_[-1, "train_loss"])
    assert clf.score(X, y) > 0.6

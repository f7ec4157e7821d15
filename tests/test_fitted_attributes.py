"""What fit resolved (presets, the trained backbone) is a fitted attribute, also after load()."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import sklearn_imgcls
from sklearn_imgcls import CNNClassifier, TransferClassifier
from sklearn_imgcls.presets import PRESETS

DATA = pathlib.Path(__file__).parent / "data"
LETTERS = np.array(list("abcdefghij"))
SMALL = {"channels": (4, 8), "hidden": 16}
RESOLVED = ("backbone_", "backbone_params_", "max_epochs_", "batch_size_", "lr_", "lr_schedule_", "augment_")

# predict_proba of the first 3 digits by the two models in tests/data, computed by the release that
# wrote them (commit 4466868: before load() restored the fitted attributes)
OLD_PROBABILITIES = {
    "cnn": [[0.09293223986724197, 0.08453317794601006, 0.09428054909617117, 0.10592486043218419, 0.10458861369333128,
             0.08026921808920218, 0.10587315340245629, 0.12323550226714836, 0.10928727767830548, 0.09907540752794897],
            [0.09364762413849406, 0.09264702611767364, 0.0944743256172517, 0.1046501641530458, 0.10164732700935536,
             0.08244221227544929, 0.10062917542156408, 0.11843950428756676, 0.10927153553887643, 0.10215110544072287],
            [0.09149156111378207, 0.09189451091224085, 0.09597601395559477, 0.10535757009477259, 0.1023781645152765,
             0.084327149012941, 0.0998053520685854, 0.11707664186676048, 0.11019834699611032, 0.10149468946393603]],
    "transfer": [[0.08524455303549039, 0.08650244192390161, 0.10820737500588316, 0.09847583706466456,
                  0.09903036138956806, 0.0946801762869836, 0.11939510647538336, 0.08582927456152833,
                  0.09702015017582959, 0.12561472408076735],
                 [0.08617558458709097, 0.08500541873284308, 0.10835261804390875, 0.10202421399987063,
                  0.09846367833709238, 0.09599509233229, 0.11940950333192205, 0.08525482692204157,
                  0.09755441691807534, 0.12176464679486523],
                 [0.08565573415062434, 0.08375327292859014, 0.1092348643453298, 0.10295543250043086,
                  0.0963523697572085, 0.09639942762846598, 0.11616640831527784, 0.08768700847211557,
                  0.09777417163021906, 0.12402131027173789]],
}


@pytest.fixture(scope="module")
def first_digits(digits):
    X, y = digits
    return X[:60] * 16.0, LETTERS[y[:60]]  # the 0..16 values the files were trained on


def test_a_cnn_file_written_before_fitted_attributes_loads_with_them(first_digits):
    # written by CNNClassifier("simple_cnn", backbone_params=SMALL, preset="fast", max_epochs=1, image_shape=(1, 8, 8))
    X, _ = first_digits
    loaded = sklearn_imgcls.load(DATA / "cnn_written_by_0_1.safetensors")
    fast = PRESETS["fast"]
    assert (loaded.backbone_, loaded.backbone_params_, loaded.max_epochs_) == ("simple_cnn", SMALL, 1)
    assert (loaded.batch_size_, loaded.lr_, loaded.lr_schedule_, loaded.augment_) == (
        fast["batch_size"], fast["lr"], fast["lr_schedule"], fast["augment"])
    assert loaded.get_params()["batch_size"] is None  # the parameter still shows what the user set
    assert loaded.image_shape_ == (1, 8, 8) and loaded.n_features_in_ == 64 and list(loaded.classes_) == list(LETTERS)
    np.testing.assert_allclose(loaded.predict_proba(X[:3]), OLD_PROBABILITIES["cnn"], atol=1e-5)


def test_a_transfer_file_written_before_fitted_attributes_loads_with_them(first_digits):
    # written by TransferClassifier("simple_cnn", backbone_params=SMALL, weights=None, freeze="backbone",
    # max_epochs=2, batch_size=16, image_shape=(1, 8, 8))
    X, _ = first_digits
    loaded = sklearn_imgcls.load(DATA / "transfer_written_by_0_1.safetensors")
    assert (loaded.backbone_, loaded.backbone_params_, loaded.max_epochs_, loaded.batch_size_) == (
        "simple_cnn", SMALL, 2, 16)
    assert (loaded.lr_, loaded.lr_schedule_, loaded.augment_) == (1e-3, "constant", None)
    assert loaded.fine_tune_epochs_ == 1  # half of max_epochs under freeze="backbone"
    assert loaded.frozen_parameters_ == ["features.0.weight", "features.0.bias", "features.3.weight",
                                         "features.3.bias", "classifier.1.weight", "classifier.1.bias"]
    np.testing.assert_allclose(loaded.predict_proba(X[:3]), OLD_PROBABILITIES["transfer"], atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: CNNClassifier(preset="fast", max_epochs=1, backbone_params=SMALL, backbone="simple_cnn", random_state=0),
    lambda: TransferClassifier("simple_cnn", weights=None, backbone_params=SMALL, freeze="backbone", max_epochs=2,
                               batch_size=32, random_state=0),
], ids=["cnn", "transfer"])
def test_save_and_load_keep_every_fitted_attribute(make, digits_small, tmp_path):
    X, y = digits_small
    clf = make().fit(X, y)
    loaded = sklearn_imgcls.load(clf.save(tmp_path / "model.safetensors"))
    for name in RESOLVED + ("image_shape_", "n_features_in_") + (
            ("frozen_parameters_", "fine_tune_epochs_") if isinstance(clf, TransferClassifier) else ()):
        assert getattr(loaded, name) == getattr(clf, name), name
    assert not hasattr(loaded, "frozen_parameters_") or isinstance(clf, TransferClassifier)


def test_onnx_producer_names_the_fitted_backbone(digits_small, tmp_path):
    import onnx

    X, y = digits_small
    clf = CNNClassifier(preset="fast", max_epochs=1, random_state=0).fit(X, y)
    model = onnx.load(clf.to_onnx(str(tmp_path / "model.onnx")))
    producer = {entry.key: entry.value for entry in model.metadata_props}["producer"]
    assert producer == "sklearn-imgcls CNNClassifier(simple_cnn)"  # the preset's backbone, not None


def test_repr_and_html_repr_name_what_the_preset_chose_once_fitted():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    clf = CNNClassifier(preset="fast", max_epochs=1, image_shape=(1, 8, 8), random_state=0)
    assert "#" not in repr(clf) and clf.trained_with() == {}
    clf.fit(X[:120], y[:120])
    assert clf.trained_with() == {"backbone": "simple_cnn", "batch_size": 128, "lr": 2e-3, "lr_schedule": "onecycle"}
    text = repr(clf)
    assert text.endswith("# trained with backbone='simple_cnn', batch_size=128, lr=0.002, lr_schedule='onecycle'")
    assert repr(eval(text, {"CNNClassifier": CNNClassifier})) == repr(clf.__class__(**clf.get_params()))  # still valid Python
    page = clf._repr_mimebundle_()["text/html"]
    assert "trained with backbone=&#x27;simple_cnn&#x27;" in page and page.rstrip().endswith("</body>")

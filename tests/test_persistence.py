"""Pickle-free saving: safetensors weights + JSON metadata, rebuilt without pretrained files."""

from __future__ import annotations

import copy
import json
import os
import pathlib
import struct

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sklearn_imgcls
from sklearn_imgcls import CNNClassifier, TransferClassifier
from sklearn_imgcls.datasets import load_digits_images
from sklearn_imgcls._core.weights import hub_checkpoint_path

NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


@pytest.fixture(scope="module")
def images():
    X, y = load_digits_images()
    return X[:300], y[:300]


def test_cnn_round_trip_keeps_parameters_labels_history_and_probabilities(images, tmp_path):
    X, y = images
    clf = CNNClassifier("bn_cnn", max_epochs=2, random_state=0, class_weight={0: 2.0}, augment=[("rotate", {"degrees": 5})],
                        sampler=("oversample", {}), tta="flip_h").fit(X, y)
    path = clf.save(str(tmp_path / "model.safetensors"))
    loaded = sklearn_imgcls.load(path)
    assert type(loaded) is CNNClassifier and loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert loaded.history_[:, "train_loss"] == clf.history_[:, "train_loss"]


def test_string_labels_and_transfer_from_a_deleted_checkpoint(images, tmp_path):
    X, y = images
    source = CNNClassifier("simple_cnn", max_epochs=1, random_state=0).fit(X, y)
    checkpoint = str(tmp_path / "pre.safetensors")
    source.save_weights(checkpoint)
    clf = TransferClassifier("simple_cnn", weights=checkpoint, max_epochs=1, fine_tune_epochs=0, random_state=0)
    clf.fit(X, NAMES[y])
    path = clf.save(str(tmp_path / "transfer.safetensors"))
    os.remove(checkpoint)  # the saved model must not need the pretrained file
    loaded = sklearn_imgcls.load(path)
    assert loaded.classes_.tolist() == clf.classes_.tolist() and loaded.frozen_parameters_ == clf.frozen_parameters_
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert (loaded.predict(X) == clf.predict(X)).all()


def test_transfer_from_torchvision_weights_loads_without_them(images, tmp_path, monkeypatch):
    from torchvision.models import MobileNet_V3_Small_Weights, get_model

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = MobileNet_V3_Small_Weights.DEFAULT
    target = hub_checkpoint_path(weights.url)
    os.makedirs(os.path.dirname(target))
    torch.manual_seed(0)
    torch.save(get_model("mobilenet_v3_small", weights=None).state_dict(), target)
    X, y = images
    clf = TransferClassifier("mobilenet_v3_small", weights="DEFAULT", input_size=(32, 32), max_epochs=1,
                             fine_tune_epochs=0, batch_size=100, random_state=0).fit(X[:100], y[:100])
    path = clf.save(str(tmp_path / "mobilenet.safetensors"))
    os.remove(target)
    loaded = sklearn_imgcls.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X[:50]), clf.predict_proba(X[:50]), atol=1e-5)


def test_live_objects_and_foreign_files_are_refused(images, tmp_path):
    from safetensors.torch import save_file
    from skorch.callbacks import Callback

    X, y = images
    clf = CNNClassifier(max_epochs=1, callbacks=[Callback()]).fit(X, y)
    with pytest.raises(ValueError, match="set_params\\(callbacks=None\\)"):
        clf.save(str(tmp_path / "m.safetensors"))
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not written by sklearn_imgcls.save"):
        sklearn_imgcls.load(str(tmp_path / "plain.safetensors"))
    save_file({"w": torch.zeros(2)}, str(tmp_path / "evil.safetensors"),
              metadata={"format": "sklearn-imgcls-model/1", "estimator": "os.system", "params": json.dumps({})})
    with pytest.raises(ValueError, match="does not create"):
        sklearn_imgcls.load(str(tmp_path / "evil.safetensors"))
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04\x95not safetensors")
    with pytest.raises(ValueError, match="is a pickle file.*never unpickles"):
        sklearn_imgcls.load(str(tmp_path / "model.pkl"))
    with pytest.raises(ValueError, match="No model file"):
        sklearn_imgcls.load(str(tmp_path / "missing.safetensors"))


# -- files that load but are wrong: every malformed file is one ValueError naming the file and the field ----------
def _header(path) -> tuple[dict, bytes]:
    raw = open(path, "rb").read()
    length = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def _write_header(path, header: dict, data: bytes) -> None:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)) + text + data)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small fitted model, its predictions and its file."""
    X, y = load_digits_images()
    clf = CNNClassifier("simple_cnn", image_shape=(1, 8, 8), max_epochs=1, random_state=0).fit(X[:200], NAMES[y[:200]])
    path = str(tmp_path_factory.mktemp("saved") / "model.safetensors")
    clf.save(path)
    return clf, X[:50], path


def _tampered(saved, tmp_path, change) -> str:
    """A copy of the saved file whose parsed metadata JSON ``change(metadata)`` edited in place."""
    header, data = _header(saved[2])
    original = {key: json.loads(value) for key, value in header["__metadata__"].items()
                if key not in ("format", "estimator", "checksum")}
    metadata = copy.deepcopy(original)
    change(metadata)
    stored = header["__metadata__"]
    for key in set(original) | set(metadata):
        if key not in metadata:
            del stored[key]
        elif metadata[key] != original.get(key, object()):  # unchanged fields keep their exact text
            stored[key] = json.dumps(metadata[key])
    path = str(tmp_path / "tampered.safetensors")
    _write_header(path, header, data)
    return path


def _set(field, value):
    def change(metadata):
        metadata[field] = value
    return change


def _edit(field, key, value):
    def change(metadata):
        metadata[field][key] = value
    return change


def _classes(values, dtype=None):
    def change(metadata):
        metadata["classes"]["values"] = values(metadata["classes"]["values"])
        if dtype is not None:
            metadata["classes"]["dtype"] = dtype
    return change


def _remove(field):
    def change(metadata):
        del metadata[field]
    return change


CORRUPTIONS = {
    **{f"no {field}": (_remove(field), field) for field in
       ("params", "classes", "image_shape", "frozen_parameters", "history", "architecture")},
    "unknown field": (_set("extra", 1), "extra"),
    "num_outputs=-5": (_edit("architecture", "num_outputs", -5), "architecture"),
    "9 classes": (_classes(lambda v: v[:9]), "architecture"),
    "11 classes": (_classes(lambda v: v + ["zzz"]), "architecture"),
    "9 classes and outputs": (lambda m: (_classes(lambda v: v[:9])(m), m["architecture"].update(num_outputs=9)),
                              "tensors"),
    "classes unsorted": (_classes(lambda v: [v[1], v[0], *v[2:]]), "classes"),
    "classes repeated": (_classes(lambda v: [v[0], *v[:-1]]), "classes"),
    "classes truncated by dtype": (_classes(lambda v: v, "<U2"), "classes"),
    "classes of a date dtype": (_classes(lambda v: v, "<M8[s]"), "classes"),
    "classes not a list": (_set("classes", {"values": "abc", "dtype": "object"}), "classes"),
    "classes nested": (_classes(lambda v: [[x] for x in v], "object"), "classes"),
    "image_shape 2 values": (_set("image_shape", [8, 8]), "image_shape"),
    "image_shape zero": (_set("image_shape", [1, 0, 8]), "image_shape"),
    "image_shape float": (_set("image_shape", [1, 8, 8.5]), "image_shape"),
    "image_shape text": (_set("image_shape", "1x8x8"), "image_shape"),
    "image_shape other size": (_set("image_shape", [1, 16, 16]), "image_shape"),
    "image_shape other channels": (_set("image_shape", [3, 8, 8]), "image_shape"),
    "image_shape huge": (_set("image_shape", [1, 10**9, 10**9]), "image_shape"),
    "params unknown": (_edit("params", "os", "system"), "params"),
    "params not an object": (_set("params", [1, 2]), "params"),
    "params lr=-1": (_edit("params", "lr", -1), "params"),
    "params backbone": (_edit("params", "backbone", "os.system"), "params"),
    "params loss": (_edit("params", "loss", "builtins.eval"), "params"),
    "params optimizer": (_edit("params", "optimizer", "torch.optim.LBFGS"), "params"),
    "params tta": (_edit("params", "tta", "spin"), "params"),
    "params batch_size": (_edit("params", "batch_size", 0), "params"),
    "params device": (_edit("params", "device", "tpu:x"), "params"),
    "params random_state": (_edit("params", "random_state", "seed"), "params"),
    "params callbacks": (_edit("params", "callbacks", ["os.system"]), "params"),
    "params image_shape": (_edit("params", "image_shape", [1, 4, 4]), "image_shape"),
    "params bad tuple": (_edit("params", "image_shape", {"__tuple__": 5}), "params"),
    "architecture other backbone": (_edit("architecture", "backbone", "bn_cnn"), "architecture"),
    "architecture unknown backbone": (_edit("architecture", "backbone", "os.system"), "architecture"),
    "architecture source": (_edit("architecture", "source", "pickle"), "architecture"),
    "architecture build_size": (_edit("architecture", "build_size", [10**6, 10**6]), "architecture"),
    "architecture missing key": (lambda m: m["architecture"].pop("replace_head"), "architecture"),
    "architecture not an object": (_set("architecture", "simple_cnn"), "architecture"),
    "history not a list": (_set("history", {"epoch": 1}), "history"),
    "history of numbers": (_set("history", [1, 2]), "history"),
    "frozen_parameters": (_set("frozen_parameters", ["backbone.nothing"]), "frozen_parameters"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_tampered_metadata_is_refused_naming_file_and_field(saved, tmp_path, name):
    change, field = CORRUPTIONS[name]
    path = _tampered(saved, tmp_path, change)
    with pytest.raises(ValueError) as info:
        sklearn_imgcls.load(path)
    message = str(info.value)
    assert path in message and f"'{field}'" in message and "\n" not in message, message


def test_untouched_copy_of_the_tampering_helper_loads(saved, tmp_path):
    clf, X, _ = saved
    loaded = sklearn_imgcls.load(_tampered(saved, tmp_path, lambda metadata: None))
    assert (loaded.predict(X) == clf.predict(X)).all()


@pytest.mark.parametrize("field", ["params", "classes", "image_shape", "history", "architecture",
                                   "frozen_parameters"])
def test_invalid_json_is_refused(saved, tmp_path, field):
    header, data = _header(saved[2])
    header["__metadata__"][field] = header["__metadata__"][field][:-1]
    path = str(tmp_path / "cut.safetensors")
    _write_header(path, header, data)
    with pytest.raises(ValueError, match=f"field '{field}': not valid JSON"):
        sklearn_imgcls.load(path)


def _rewritten_tensors(saved, tmp_path, change) -> str:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(saved[2], framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(saved[2])
    change(tensors)
    path = str(tmp_path / "tensors.safetensors")
    save_file(tensors, path, metadata=metadata)
    return path


@pytest.mark.parametrize("name, change", [
    ("int8", lambda t: t.update({k: v.to(torch.int8) for k, v in t.items()})),
    ("bool", lambda t: t.update({"backbone.features.0.weight": t["backbone.features.0.weight"] > 0})),
    ("float64", lambda t: t.update({"mean": t["mean"].double()})),
    ("shape", lambda t: t.update({"backbone.features.0.bias": torch.zeros(31)})),
    ("missing", lambda t: t.pop("std")),
    ("extra", lambda t: t.update({"backdoor": torch.zeros(1)})),
])
def test_tensors_that_do_not_fit_the_architecture_are_refused(saved, tmp_path, name, change):
    path = _rewritten_tensors(saved, tmp_path, change)
    with pytest.raises(ValueError, match="field .tensors.") as info:
        sklearn_imgcls.load(path)
    assert path in str(info.value)


def _pickled_model(saved):
    import pickle

    return pickle.dumps(saved[0])


@pytest.mark.parametrize("name, content, expected", [
    ("png", lambda s: b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG image"),
    ("text", lambda s: b"epochs: 10\nlr: 0.1\n", "text file"),
    ("empty", lambda s: b"", "empty"),
    ("truncated", lambda s: open(s[2], "rb").read()[:-100], "truncated|not a valid safetensors"),
    ("truncated header", lambda s: open(s[2], "rb").read()[:200], "truncated"),
    ("pickle", _pickled_model, "pickle"),
    ("garbled header", lambda s: open(s[2], "rb").read().replace(b'"dtype":"F32"', b'"dtype":"F99"', 1),
     "not a valid safetensors"),
    ("header not json", lambda s: struct.pack("<Q", 16) + b"{not json at all", "not a valid safetensors"),
])
def test_files_of_other_kinds_are_refused(saved, tmp_path, name, content, expected):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content(saved))
    with pytest.raises(ValueError, match=expected) as info:
        sklearn_imgcls.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="is a folder") as info:
        sklearn_imgcls.load(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_string_labels_and_path_objects_round_trip(saved, tmp_path):
    clf, X, path = saved
    loaded = sklearn_imgcls.load(pathlib.Path(path))
    assert loaded.classes_.tolist() == sorted(NAMES.tolist()) and (loaded.predict(X) == clf.predict(X)).all()
    assert clf.save(tmp_path / "again.safetensors") == str(tmp_path / "again.safetensors")


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                     max_size=4),
                    max_leaves=12)
FIELDS = ["params", "classes", "image_shape", "frozen_parameters", "history", "architecture"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), key=st.text(max_size=12), value=JSON, replace=st.booleans())
def test_any_json_in_any_field_loads_or_is_a_clear_value_error(saved, tmp_path, field, key, value, replace):
    def change(metadata):
        if replace or not isinstance(metadata[field], dict):
            metadata[field] = value
        else:
            metadata[field][key] = value

    path = _tampered(saved, tmp_path, change)
    try:
        loaded = sklearn_imgcls.load(path)
    except ValueError as exc:
        assert path in str(exc) and "\n" not in str(exc)
    else:  # a harmless change (history, an unused label of a parameter): the model still predicts as saved
        assert (loaded.predict(saved[1]) == saved[0].predict(saved[1])).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_any_changed_header_byte_loads_or_is_a_clear_value_error(saved, tmp_path, position, byte):
    raw = bytearray(open(saved[2], "rb").read())
    header_end = 8 + struct.unpack("<Q", raw[:8])[0]
    raw[position % header_end] = byte
    path = tmp_path / "flipped.safetensors"
    path.write_bytes(bytes(raw))
    try:
        loaded = sklearn_imgcls.load(path)
    except ValueError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    else:  # the change was one the format ignores (e.g. padding): the model is the one saved
        np.testing.assert_array_equal(loaded.predict_proba(saved[1]), saved[0].predict_proba(saved[1]))


def test_save_is_atomic(saved, tmp_path, monkeypatch):
    import safetensors.torch

    clf, X, original = saved
    path = tmp_path / "model.safetensors"
    before = open(original, "rb").read()
    path.write_bytes(before)

    def broken(module, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_model", broken)
    with pytest.raises(OSError, match="model.safetensors"):
        clf.save(str(path))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.safetensors"]


def test_transfer_file_checks_frozen_names_and_the_image_shape_against_the_network(tmp_path):
    X, y = load_digits_images()
    clf = TransferClassifier("simple_cnn", weights=None, freeze="backbone", fine_tune_epochs=0, max_epochs=1,
                             random_state=0).fit(X[:100], y[:100])
    saved = (clf, X[:20], clf.save(str(tmp_path / "transfer.safetensors")))
    assert clf.frozen_parameters_ and sklearn_imgcls.load(saved[2]).frozen_parameters_ == clf.frozen_parameters_
    for change, field in [(_set("frozen_parameters", ["classifier.9.weight"]), "frozen_parameters"),
                          (_set("frozen_parameters", "features"), "frozen_parameters"),
                          (_set("image_shape", [2, 8, 8]), "image_shape")]:  # 2 channels into a 1-channel network
        with pytest.raises(ValueError, match=f"field '{field}'"):
            sklearn_imgcls.load(_tampered(saved, tmp_path, change))


def test_damage_that_leaves_a_plausible_file_is_caught_by_the_checksum(saved, tmp_path):
    clf, X, path = saved
    renamed = _tampered(saved, tmp_path, _classes(lambda v: [v[0], v[1], "fivf", *v[3:]]))  # still sorted
    with pytest.raises(ValueError, match="field 'checksum'"):
        sklearn_imgcls.load(renamed)
    raw = bytearray(open(path, "rb").read())
    raw[-3] ^= 0x10  # one bit of one weight
    flipped = tmp_path / "flipped.safetensors"
    flipped.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="field 'checksum'"):
        sklearn_imgcls.load(flipped)
    header, data = _header(path)
    del header["__metadata__"]["checksum"]  # as written before the checksum was added: still loads
    _write_header(str(tmp_path / "old.safetensors"), header, data)
    assert (sklearn_imgcls.load(tmp_path / "old.safetensors").predict(X) == clf.predict(X)).all()


def test_a_save_weights_file_given_to_load_points_to_transfer(tmp_path):
    from sklearn.datasets import load_digits

    from sklearn_imgcls import CNNClassifier, load

    X, y = load_digits(return_X_y=True)
    model = CNNClassifier(preset="fast", max_epochs=1, random_state=0).fit(X[:100], y[:100])
    path = str(tmp_path / "w.safetensors")
    model.save_weights(path)
    with pytest.raises(ValueError, match=r"holds network weights written by save_weights\(\).*TransferClassifier"):
        load(path)

"""The served model over real HTTP: uvicorn on 127.0.0.1, a real fitted model, real PNG uploads (urllib).

Predictions equal ``predict_proba`` on the same files; concurrent requests are
predicted in fewer calls (the server's own counters in /health); uploads over
the byte or pixel limit get 413, non-images 400 naming the file; the command
line refuses a pickled model without --allow-pickle.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import urllib.error
import urllib.request

import joblib
import numpy as np
import pytest
from PIL import Image

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls.cli.main import main
from sklearn_imgcls.persistence import load, save
from sklearn_imgcls.serve import start_server
from sklearn_imgcls.serve.results import format_predictions

MAX_BYTES, MAX_PIXELS = 60_000, 10_000


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body with every file in the field ``files``."""
    boundary = "sklearn-imgcls-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
             f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n" for name, data in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post(url: str, files: list[tuple[str, bytes]], chunked: bool = False) -> tuple[int, dict]:
    body, content_type = multipart(files)
    data = iter([body[i:i + 8192] for i in range(0, len(body), 8192)]) if chunked else body
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def served(digits_small, tmp_path_factory):
    """A model fitted on 8x8 digits, saved and loaded back safely, served with small limits; PNG files of digits."""
    X, y = digits_small
    folder = tmp_path_factory.mktemp("serve")
    fitted = CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=1, random_state=0, verbose=0).fit(X, y)
    save(fitted, folder / "model.safetensors")
    clf = load(folder / "model.safetensors")
    paths = []
    for i in range(6):
        paths.append(str(folder / f"digit{i}.png"))
        Image.fromarray(np.uint8(np.round(X[i * 37].reshape(8, 8) * 255))).save(paths[-1])
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)  # colour, resized to 8x8 gray
    paths.append(str(folder / "colour.png"))
    Image.fromarray(rgb).save(paths[-1])
    with start_server(clf, port=0, max_upload_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, max_wait_ms=150,
                      max_batch=16) as server:
        yield server.url, clf, paths, folder


def read(path: str) -> tuple[str, bytes]:
    with open(path, "rb") as handle:
        return path.rsplit("/", 1)[-1], handle.read()


def probabilities(prediction: dict, classes) -> np.ndarray:
    by_class = {entry["class"]: entry["probability"] for entry in prediction["top"]}
    return np.array([by_class[c] for c in classes.tolist()])


def test_predictions_equal_predict_proba_on_the_same_files(served):
    url, clf, paths, _ = served
    status, body = post(f"{url}/predict?top_k=10", [read(p) for p in paths])
    assert status == 200 and body["model"] == "CNNClassifier"
    expected = clf.predict_proba(paths)
    assert [p["file"] for p in body["predictions"]] == [p.rsplit("/", 1)[-1] for p in paths]
    for prediction, row, label in zip(body["predictions"], expected, clf.predict(paths)):
        np.testing.assert_array_equal(probabilities(prediction, clf.classes_), row.astype(np.float64))
        assert prediction["label"] == label
        assert [e["probability"] for e in prediction["top"]] == sorted(row.astype(float).tolist(), reverse=True)


def test_top_k_defaults_to_five_and_cam_returns_a_png(served):
    url, clf, paths, _ = served
    status, body = post(f"{url}/predict?cam=true", [read(paths[0])])
    assert status == 200
    prediction = body["predictions"][0]
    assert len(prediction["top"]) == 5
    image = Image.open(io.BytesIO(base64.b64decode(prediction["cam"]["png_base64"])))
    assert image.format == "PNG" and image.size == (prediction["cam"]["width"], prediction["cam"]["height"])
    assert image.size[0] >= 128 and len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 10  # a heat map, not one colour
    status, body = post(f"{url}/predict?cam=true", [read(paths[0]), read(paths[1])])
    assert status == 400 and "one image" in body["detail"]


def test_health_and_info(served):
    url, clf, _, _ = served
    assert get(f"{url}/health")["status"] == "ok"
    info = get(f"{url}/info")
    assert info["model"] == "CNNClassifier" and info["classes"] == clf.classes_.tolist()
    assert info["image_shape"] == [1, 8, 8] and info["backbone"] == clf.backbone_ == "simple_cnn"
    assert info["trained_with"]["backbone"] == "simple_cnn" and info["multilabel"] is False
    assert info["sklearn_imgcls_version"] and info["serving"]["max_pixels"] == MAX_PIXELS


def test_concurrent_requests_are_predicted_together(served):
    url, clf, paths, _ = served
    before = get(f"{url}/health")
    barrier, answers = threading.Barrier(8), [None] * 8

    def client(i: int) -> None:
        barrier.wait()
        answers[i] = post(f"{url}/predict?top_k=10", [read(paths[i % len(paths)])])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    after = get(f"{url}/health")
    assert after["images_predicted"] - before["images_predicted"] == 8
    assert after["predict_calls"] - before["predict_calls"] < 8  # at least two requests shared a predict call
    assert after["largest_batch"] >= 2
    for i, (status, body) in enumerate(answers):
        assert status == 200
        expected = clf.predict_proba([paths[i % len(paths)]])[0]
        np.testing.assert_array_equal(probabilities(body["predictions"][0], clf.classes_), expected.astype(float))


@pytest.mark.parametrize("chunked", [False, True])
def test_an_upload_over_the_byte_limit_gets_413(served, chunked):
    url, *_ = served
    noise = png(np.random.default_rng(1).integers(0, 256, (150, 150, 3), dtype=np.uint8))
    assert len(noise) > MAX_BYTES
    status, body = post(f"{url}/predict", [("big.png", noise)], chunked=chunked)
    assert status == 413 and f"{MAX_BYTES:,} bytes" in body["detail"]
    assert get(f"{url}/health")["status"] == "ok"  # the server carries on


def test_an_image_over_the_pixel_limit_gets_413_naming_it(served):
    url, *_ = served
    flat = png(np.zeros((200, 200), dtype=np.uint8))  # 40,000 pixels in a few hundred bytes
    status, body = post(f"{url}/predict", [("wide.png", flat)])
    assert status == 413 and "'wide.png'" in body["detail"] and "40,000 pixels" in body["detail"]


def test_non_images_get_400_naming_the_file(served):
    url, _, paths, _ = served
    status, body = post(f"{url}/predict", [read(paths[0]), ("notes.txt", b"not an image at all")])
    assert status == 400 and "'notes.txt' is not an image" in body["detail"]
    truncated = read(paths[-1])[1][:60]
    status, body = post(f"{url}/predict", [("cut.png", truncated)])
    assert status == 400 and "'cut.png' cannot be decoded" in body["detail"]
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"
    status, body = post(f"{url}/predict", [("drawing.eps", eps)])
    assert status == 400 and "'drawing.eps' is in the EPS format" in body["detail"]  # formats that run programs are never decoded
    request = urllib.request.Request(f"{url}/predict", data=b"{}", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=30)
    assert raised.value.code == 400 and "multipart/form-data" in json.load(raised.value)["detail"]


def test_the_page_is_self_contained(served):
    url, *_ = served
    with urllib.request.urlopen(f"{url}/", timeout=30) as response:
        page = response.read().decode()
        policy = response.headers["Content-Security-Policy"]
    assert "<input" in page and 'type="file"' in page
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy


def test_a_multilabel_model_lists_every_label_over_its_threshold(digits_small, served):
    X, y = digits_small
    Y = np.stack([y % 2 == 0, y > 4, y == 3], axis=1).astype(int)
    clf = CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=1, random_state=0, verbose=0,
                        threshold=0.3).fit(X, Y)
    assert clf.multilabel_
    paths = served[2][:4]
    with start_server(clf, port=0) as server:
        status, body = post(f"{server.url}/predict", [read(p) for p in paths])
        info = get(f"{server.url}/info")
    assert status == 200 and info["multilabel"] is True and info["threshold"] == 0.3
    expected = clf.predict(paths)
    for prediction, row in zip(body["predictions"], expected):
        assert prediction["labels"] == clf.classes_[row.astype(bool)].tolist()
        assert len(prediction["top"]) == 3


def test_format_predictions_for_multilabel_rows():
    proba = np.array([[0.9, 0.2, 0.6], [0.1, 0.1, 0.1]])
    results = format_predictions(proba, ["a.png", "b.png"], np.array(["cat", "dog", "sky"]), top_k=2,
                                 multilabel=True, threshold=0.5)
    assert results[0]["labels"] == ["cat", "sky"] and results[1]["labels"] == []
    assert [e["class"] for e in results[0]["top"]] == ["cat", "sky"]


def test_create_app_refuses_bad_limits_and_unfitted_models(served):
    from sklearn_imgcls.serve import create_app

    clf = served[1]
    with pytest.raises(ValueError, match="max_batch must be a positive whole number"):
        create_app(clf, max_batch=0)
    with pytest.raises(ValueError, match="SKLEARN_IMGCLS_MAX_PIXELS"):
        create_app(clf, max_pixels=10**12)
    with pytest.raises(TypeError, match="fitted classifier"):
        create_app(CNNClassifier())


def test_the_command_refuses_a_pickle_without_allow_pickle(served, capsys):
    folder = served[3]
    joblib.dump(served[1], folder / "model.pkl")
    assert main(["serve", str(folder / "model.pkl"), "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert "is a pickle" in error and "--allow-pickle" in error


def test_the_command_refuses_a_port_in_use_in_one_line(served, capsys):
    """Was: the model loaded, uvicorn logged '[Errno 98] address already in use' and the command exited 3."""
    url, _, _, folder = served
    busy = int(url.rsplit(":", 1)[1])  # the fixture's server listens there
    assert main(["serve", str(folder / "model.safetensors"), "--port", str(busy)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and f"cannot listen on 127.0.0.1:{busy}" in error and "--port" in error

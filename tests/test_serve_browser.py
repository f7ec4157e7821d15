"""The served page in a real headless browser (Debian's chromium + chromium-driver, installed by .ci/run).

The server is the command line's own (``sklearn-imgcls serve MODEL --port 0`` in a subprocess); the
browser chooses image files on the page's file input and the page shows the model's predicted
class and the Grad-CAM overlay, without a console error.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls.persistence import save


@pytest.fixture(scope="module")
def served_by_the_command(digits_small, tmp_path_factory):
    """``sklearn-imgcls serve model.safetensors --port 0`` starting; yields a function giving its URL once it
    listens (the browser starts meanwhile), the model and two PNGs."""
    X, y = digits_small
    folder = tmp_path_factory.mktemp("page")
    clf = CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=1, random_state=0, verbose=0).fit(X, y)
    save(clf, folder / "model.safetensors")
    paths = []
    for i in (3, 150):
        paths.append(str(folder / f"digit_{i}.png"))
        Image.fromarray(np.uint8(np.round(X[i].reshape(8, 8) * 255))).save(paths[-1])
    process = subprocess.Popen([sys.executable, "-m", "sklearn_imgcls.cli", "serve", str(folder / "model.safetensors"),
                                "--port", "0", "--threads", "1"], stderr=subprocess.PIPE, text=True)

    def listening_url() -> str:
        seen = []
        while True:
            line = process.stderr.readline()
            assert line, f"the server stopped before listening: {''.join(seen)}"
            seen.append(line)
            found = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
            if found:
                return found.group(1)

    try:
        yield listening_url, clf, paths
    finally:
        process.terminate()
        process.wait(20)


def test_the_page_shows_predictions_and_grad_cam(served_by_the_command, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    listening_url, clf, paths = served_by_the_command
    browser.get(listening_url() + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda b: "CNNClassifier (simple_cnn)" in b.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "files").send_keys("\n".join(paths))
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".card img.cam")) == 2
               or b.find_elements(By.CSS_SELECTOR, "[data-error]"))
    assert browser.find_elements(By.CSS_SELECTOR, "[data-error]") == []
    cards = {card.find_element(By.TAG_NAME, "h2").text: card for card in browser.find_elements(By.CSS_SELECTOR, ".card")}
    for path, label in zip(paths, clf.predict(paths)):
        card = cards[path.rsplit("/", 1)[-1]]
        assert card.find_element(By.CSS_SELECTOR, ".label").get_attribute("data-label") == str(label)
        assert len(card.find_elements(By.CSS_SELECTOR, ".bar")) == 5
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not browser.execute_script(
            "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"):
        time.sleep(0.1)
    sizes = browser.execute_script("return [...document.querySelectorAll('img.cam')].map(i => i.naturalWidth)")
    assert sizes == [256, 256]  # 8x8 inputs drawn 32x larger
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []

"""The HTML report in a real headless browser (Debian's chromium + chromium-driver, installed by .ci/run).

Every image loads, the page logs no console error, and the figures sit side by side on a
1400-pixel-wide screen instead of one tall column.
"""

from __future__ import annotations

import shutil

import pytest

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls.report import write_report


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path, chromium = shutil.which("chromedriver"), shutil.which("chromium")
    assert driver_path and chromium, ("the browser test needs Debian's chromium and chromium-driver: "
                                      "apt-get install -y chromium chromium-driver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                 "--allow-file-access-from-files"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def test_the_report_renders_in_a_browser(browser, digits_small, tmp_path):
    X, y = digits_small
    clf = CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=2, validation_fraction=0.2,
                        random_state=0).fit(X, y)
    index = write_report(clf, X, y, str(tmp_path / "report"))
    browser.get(f"file://{index}")
    images = browser.execute_script(
        "return [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0,"
        " Math.round(i.getBoundingClientRect().top)])")
    assert len(images) == 8 and all(loaded for _, loaded, _ in images), images
    tops = [top for _, _, top in images]
    assert len(set(tops)) < len(tops)  # at least two figures share a row
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    assert browser.title == f"CNNClassifier ({clf.backbone_})"

"""The HTML report in a real headless browser (Debian's chromium + chromium-driver, installed by .ci/run).

Every image loads, the page logs no console error, and the figures sit side by side on a
1400-pixel-wide screen instead of one tall column.
"""

from __future__ import annotations

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls.report import write_report


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

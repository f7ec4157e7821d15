"""The command line on a multi-label table: a CSV of PNG files whose label cells read "a;b" (empty: no label).

train -> predict -> evaluate run in-process through ``main``, as the console script does; tables
whose label column cannot be read, and multi-label data given to a single-label model, end with
exit status 2 and one line naming the problem.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sklearn_imgcls.cli.main import main
from sklearn_imgcls.cli.labels_out import search_settings
from sklearn_imgcls.datasets import load_dataset, load_image_table

NAMES = ("hbar", "vbar", "dot")


def write_table(folder, n: int = 60, seed: int = 0) -> tuple[str, list[list[str]]]:
    """``n`` 12x12 PNGs with a horizontal bar, a vertical bar and/or a dot, and ``labels.csv`` naming them."""
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    rows, truth = [], []
    for i in range(n):
        image = (rng.random((12, 12)) * 60).astype(np.uint8)
        on = rng.random(3) < 0.45
        if on[0]:
            image[rng.integers(1, 11), :] = 255
        if on[1]:
            image[:, rng.integers(1, 11)] = 255
        if on[2]:
            r, c = rng.integers(0, 9, 2)
            image[r : r + 3, c : c + 3] = 200
        Image.fromarray(image).save(folder / f"img{i}.png")
        labels = [name for name, flag in zip(NAMES, on) if flag]
        truth.append(labels)
        rows.append({"path": f"img{i}.png", "label": " ; ".join(labels)})  # spaces around ';' are dropped
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    return str(folder / "labels.csv"), truth


def test_a_semicolon_table_is_multilabel_and_a_class_tree_is_not(tmp_path):
    table, truth = write_table(tmp_path / "ml", n=8)
    paths, labels = load_image_table(table)
    assert labels.dtype == object and labels.tolist() == truth  # an empty cell: an image with no label
    two = tmp_path / "two.csv"
    pd.DataFrame({"path": paths[:2], "label": ["dot;hbar", "vbar;dot;vbar"]}).to_csv(two, index=False)
    assert load_image_table(str(two))[1].tolist() == [["dot", "hbar"], ["vbar", "dot"]]  # each label once
    assert load_image_table(str(two), multilabel=False)[1].tolist() == ["dot;hbar", "vbar;dot;vbar"]  # not split
    single = tmp_path / "single.csv"
    pd.DataFrame({"path": paths[:2], "label": ["dot", "hbar"]}).to_csv(single, index=False)
    assert load_image_table(str(single))[1].tolist() == ["dot", "hbar"]  # no ';': one class per image
    assert load_image_table(str(single), multilabel=True)[1].tolist() == [["dot"], ["hbar"]]
    (tmp_path / "tree" / "dot").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "tree" / "dot" / "a;b.png")
    assert load_dataset(str(tmp_path / "tree"))[1].tolist() == ["dot"]  # class folders stay multiclass


def test_train_predict_evaluate_a_multilabel_table(tmp_path, capsys):
    table, truth = write_table(tmp_path / "data")
    model = str(tmp_path / "model.safetensors")
    assert main(["train", table, "--param", 'preset="fast"', "--param", "max_epochs=3", "--param", "lr=0.01",
                 "--param", "random_state=0", "--param", "num_workers=0", "--quiet", "--out", model]) == 0
    capsys.readouterr()
    images = [str(tmp_path / "data" / f"img{i}.png") for i in range(6)]
    assert main(["predict", model, *images, "--proba"]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)
    assert list(out.columns) == ["path", "prediction", "proba_dot", "proba_hbar", "proba_vbar"]
    for _, row in out.iterrows():  # the labels at or above the 0.5 threshold, joined by ';' in classes_ order
        expected = [name for name in ("dot", "hbar", "vbar") if row[f"proba_{name}"] >= 0.5]
        assert row["prediction"] == ";".join(expected)
    assert main(["evaluate", model, table, "--report", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    for name in ("subset_accuracy", "hamming_loss", "f1_samples", "f1_micro", "f1_macro"):
        assert f"{name}: " in printed
    assert "accuracy:" not in printed.replace("subset_accuracy:", "")  # no multiclass accuracy line
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert sum(saved["per_label"][name]["support"] for name in NAMES) == sum(len(labels) for labels in truth)
    assert (tmp_path / "report" / "label_confusion.png").is_file()
    assert not (tmp_path / "report" / "confusion_matrix.png").exists()


def test_bad_label_columns_end_with_one_line(tmp_path, capsys):
    table, truth = write_table(tmp_path / "data", n=16)
    empty = tmp_path / "data" / "empty.csv"
    pd.DataFrame({"path": [f"img{i}.png" for i in range(4)], "label": ["", ";", " ; ", ""]}).to_csv(empty, index=False)
    with pytest.raises(ValueError, match="names no label at all"):
        load_image_table(str(empty))
    commas = tmp_path / "data" / "commas.csv"  # labels joined by ',' split the row: say that ';' joins them
    commas.write_text("path,label\nimg0.png,hbar,vbar\nimg1.png,hbar\n")
    with pytest.raises(ValueError, match=r"more fields than the header.*joined by ';'"):
        load_image_table(str(commas))
    assert main(["train", str(empty), "--param", "max_epochs=1", "--out", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "names no label at all" in err
    single = tmp_path / "data" / "single.csv"  # the same images, one class each
    pd.DataFrame({"path": [f"img{i}.png" for i in range(16)],
                  "label": [labels[0] if labels else "none" for labels in truth]}).to_csv(single, index=False)
    model = str(tmp_path / "single.safetensors")
    assert main(["train", str(single), "--param", 'preset="fast"', "--param", "max_epochs=1", "--quiet",
                 "--out", model]) == 0
    capsys.readouterr()
    assert main(["evaluate", model, table]) == 2  # several labels per image for a single-label model
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "trained for single-label" in err


def test_search_settings_split_and_score_multilabel_targets():
    folds, scoring, y = search_settings([["a"], ["a", "b"], [], ["b"]], cv=2, seed=0)
    assert type(folds).__name__ == "KFold" and "f1_score" in repr(scoring) and "samples" in repr(scoring)
    assert list(y.columns) == ["a", "b"] and y.to_numpy().tolist() == [[1, 0], [1, 1], [0, 0], [0, 1]]
    folds, scoring, y = search_settings(np.array(["a", "b", "a", "b"]), cv=2, seed=0)
    assert type(folds).__name__ == "StratifiedKFold" and scoring is None and y.tolist() == ["a", "b", "a", "b"]


def test_tune_scores_a_multilabel_table_and_saves_a_model_with_the_label_names(tmp_path, capsys):
    """Was: every candidate scored NaN (the scorer got lists of labels), exit 0 and the first candidate saved."""
    table, truth = write_table(tmp_path / "data", n=36)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"lr": [0.003, 0.01]}))
    best = str(tmp_path / "best.safetensors")
    assert main(["tune", table, "--grid", str(grid), "--cv", "2", "--param", 'preset="fast"', "--param",
                 "max_epochs=2", "--out", best]) == 0
    out = capsys.readouterr().out
    assert "best score (f1_samples" in out and "nan" not in out.lower()
    from sklearn_imgcls import load

    model = load(best)
    assert model.multilabel_ and sorted(model.classes_.tolist()) == sorted({label for row in truth for label in row})

"""Train a CNNClassifier through Hugging Face Accelerate.

One process (CPU or one GPU)::

    python examples/train_accelerate.py

Several GPUs or machines (configure once with ``accelerate config``)::

    accelerate launch examples/train_accelerate.py --epochs 10 --mixed-precision bf16

Each process trains on its share of every epoch's batches; the model is
saved by the main process only. Validation splits are not supported across
processes, so this script evaluates on the held-out test images afterwards.
"""

from __future__ import annotations

import argparse

from accelerate import Accelerator
from sklearn.model_selection import train_test_split

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls.datasets import load_digits_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--backbone", default="bn_cnn")
    parser.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    parser.add_argument("--out", default=None, help="save the fitted model (joblib) here")
    args = parser.parse_args()

    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    X, y = load_digits_images()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    clf = CNNClassifier(args.backbone, max_epochs=args.epochs, random_state=0, accelerator=accelerator, verbose=1)
    clf.fit(X_train, y_train)
    if accelerator.is_main_process:
        print(f"test accuracy on {accelerator.num_processes} process(es), device {accelerator.device}: "
              f"{clf.score(X_test, y_test):.4f}")
        if args.out:
            import joblib

            joblib.dump(clf, args.out)


if __name__ == "__main__":
    main()

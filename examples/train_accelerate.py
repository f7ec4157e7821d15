"""Train a CNNClassifier through Hugging Face Accelerate.

One process (CPU or one GPU)::

    python examples/train_accelerate.py

Several processes: the same script once per process (configure once with ``accelerate config``)::

    torchrun --nproc_per_node 2 examples/train_accelerate.py --cpu --epochs 5     # two CPU processes, gloo
    accelerate launch --multi_gpu --num_processes 4 examples/train_accelerate.py --mixed-precision bf16

(``accelerate launch --cpu --num_processes 2`` starts one process in accelerate 1.15: its CPU
launcher needs MPI.) Each process trains on its share of every epoch's batches with
``--batch-size`` images per step (the global batch is processes x batch size); the validation
split is scored once, spread over the processes; the epoch table, checkpoints and the model file
(``--out``, ``clf.save``) are written by the main process only.
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
    parser.add_argument("--batch-size", type=int, default=64, help="images per process and step")
    parser.add_argument("--cpu", action="store_true", help="train on CPUs even where a GPU is present")
    parser.add_argument("--out", default=None, help="save the fitted model (safetensors) here")
    args = parser.parse_args()

    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=args.cpu)
    X, y = load_digits_images()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    clf = CNNClassifier(args.backbone, max_epochs=args.epochs, batch_size=args.batch_size, validation_fraction=0.1,
                        random_state=0, accelerator=accelerator, verbose=1)
    clf.fit(X_train, y_train)
    accelerator.print(f"test accuracy on {accelerator.num_processes} process(es), device {accelerator.device}: "
                      f"{clf.score(X_test, y_test):.4f}")
    if args.out:
        clf.save(args.out)  # every process may call it: only the main one writes


if __name__ == "__main__":
    main()

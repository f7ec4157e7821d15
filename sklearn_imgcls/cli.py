"""The ``sklearn-imgcls`` command line.

Subcommands: ``demo`` (train on scikit-learn's bundled digits and print a
report), ``train``, ``predict``, ``evaluate``, ``tune`` (grid search on loky
or Dask), ``compare`` (cross-validated leaderboard of candidate models) and
``plugins`` (list installed components and where they come from).
User errors end with exit code 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .presets import PRESETS

__all__ = ["main"]

EPILOG = """DATA is 'digits', 'fashion-mnist', a folder with one subfolder per class, a CSV/parquet
table with columns path,label, or an .npz with arrays X and y.

examples:
  sklearn-imgcls demo                 train on the digits images, print the report
  sklearn-imgcls demo --backbone resnet18 --epochs 10
  sklearn-imgcls train photos/ --backbone bn_cnn --param max_epochs=20 --param augment='"light"' --out model.joblib
  sklearn-imgcls predict model.joblib new/*.png --proba > predictions.csv
  sklearn-imgcls evaluate model.joblib test_photos/ --report report/
  sklearn-imgcls tune photos/ --grid grid.json --cv 3 --n-jobs 2 --backend dask --out best.joblib
  sklearn-imgcls export model.joblib --onnx model.onnx
  sklearn-imgcls compare digits --budget 120
  sklearn-imgcls compare photos/ --budget 600 --report out/   (photos/<class>/<image>)
  sklearn-imgcls plugins              list backbones, losses, augmentations, samplers
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sklearn-imgcls",
        description="Image classification as scikit-learn estimators.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a CNN on the bundled digits images and report")
    demo.add_argument("--backbone", default=None, help="registry backbone name (default: the default model's, bn_cnn)")
    demo.add_argument("--epochs", type=int, default=None, help="training epochs (default: the default model's, 20)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    DATA_HELP = "'digits', 'fashion-mnist', a class-folder tree, a path,label CSV/parquet, or an .npz"
    train = sub.add_parser("train", help="fit a classifier on DATA and save it")
    train.add_argument("data", help=DATA_HELP)
    train.add_argument("--estimator", default="cnn", choices=["cnn", "transfer"], help="CNNClassifier or TransferClassifier")
    train.add_argument("--backbone", default=None, help="registry backbone name (see `sklearn-imgcls plugins`)")
    train.add_argument("--preset", default=None, choices=sorted(PRESETS),
                       help="CNNClassifier training recipe for the parameters not set (default: accurate)")
    train.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="estimator parameter, value as JSON when it parses (repeatable)")
    train.add_argument("--out", required=True, help="model file to write (joblib)")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from OUT.checkpoint/ (same DATA and parameters)")
    predict = sub.add_parser("predict", help="print predictions for images as CSV")
    predict.add_argument("model", help="model file written by train or tune")
    predict.add_argument("images", nargs="+", help="image files or folders")
    predict.add_argument("--proba", action="store_true", help="add one probability column per class")
    evaluate = sub.add_parser("evaluate", help="score a saved model on labelled DATA")
    evaluate.add_argument("model", help="model file written by train or tune")
    evaluate.add_argument("data", help=DATA_HELP)
    evaluate.add_argument("--report", default=None, help="folder for the HTML report")
    tune = sub.add_parser("tune", help="grid search with cross-validation (loky or Dask)")
    tune.add_argument("data", help=DATA_HELP)
    tune.add_argument("--grid", required=True, help="JSON or YAML file mapping parameters to lists of values")
    tune.add_argument("--estimator", default="cnn", choices=["cnn", "transfer"])
    tune.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="fixed parameter (repeatable)")
    tune.add_argument("--cv", type=int, default=3, help="folds (default: 3)")
    tune.add_argument("--n-jobs", type=int, default=None, help="parallel fits (default: 1)")
    tune.add_argument("--backend", default="loky", choices=["loky", "dask"], help="joblib backend (default: loky)")
    tune.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a local 2-worker cluster)")
    tune.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    tune.add_argument("--out", default=None, help="save the refitted best model here")
    export = sub.add_parser("export", help="export a saved model to ONNX")
    export.add_argument("model", help="model file written by train or tune")
    export.add_argument("--onnx", required=True, help="ONNX file to write")
    compare = sub.add_parser("compare", help="rank candidate models on a dataset by cross-validation")
    compare.add_argument(
        "data", help="'digits', 'fashion-mnist', a folder with one subfolder per class, a CSV/parquet of path,label, or an .npz with X and y"
    )
    compare.add_argument("--budget", type=float, default=None, help="time budget in seconds (default: none)")
    compare.add_argument("--cv", type=int, default=3, help="cross-validation folds (default: 3)")
    compare.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    compare.add_argument("--report", default=None, help="folder to write leaderboard.csv, .html and .png into")
    sub.add_parser("plugins", help="list installed components and their plugins")
    return parser


def _plugins() -> int:
    from .registry import KINDS, get_registry

    registry = get_registry()
    packages = dict(registry.plugins())
    for kind in KINDS:
        print({"loss": "losses"}.get(kind, kind + "s") + ":")
        for name, spec in registry.specs(kind).items():
            print(f"  {name:<22} {spec.description}  [{spec.plugin} from {packages.get(spec.plugin, '?')}]")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from .demo import run_demo

            run_demo(backbone=args.backbone, max_epochs=args.epochs, seed=args.seed, verbose=not args.quiet)
            return 0
        if args.command == "compare":
            from .commands import compare_command

            return compare_command(args.data, args.budget, args.cv, args.seed, args.report)
        if args.command == "train":
            from .commands import train_command

            params = args.param + ([f'preset="{args.preset}"'] if args.preset else [])
            return train_command(args.data, args.out, args.estimator, args.backbone, params, args.quiet, args.resume)
        if args.command == "predict":
            from .commands import predict_command

            return predict_command(args.model, args.images, args.proba)
        if args.command == "evaluate":
            from .commands import evaluate_command

            return evaluate_command(args.model, args.data, args.report)
        if args.command == "export":
            from .commands import export_command

            return export_command(args.model, args.onnx)
        if args.command == "tune":
            from .commands import tune_command

            return tune_command(args.data, args.grid, args.estimator, args.param, args.cv, args.n_jobs,
                                args.backend, args.scheduler, args.out, args.seed)
        return _plugins()
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the exception's layout
        print(f"sklearn-imgcls: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

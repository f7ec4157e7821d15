"""The ``sklearn-imgcls`` command line.

Subcommands: ``demo`` (train on scikit-learn's bundled digits and print a
report), ``compare`` (cross-validated leaderboard of candidate models on a
dataset) and ``plugins`` (list installed components and where they come from).
User errors end with exit code 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

__all__ = ["main"]

EPILOG = """examples:
  sklearn-imgcls demo                 train on the digits images, print the report
  sklearn-imgcls demo --backbone resnet18 --epochs 10
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
    demo.add_argument("--backbone", default="bn_cnn", help="registry backbone name (default: bn_cnn)")
    demo.add_argument("--epochs", type=int, default=20, help="training epochs (default: 20)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--quiet", action="store_true", help="no per-epoch progress")
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


def _compare(args) -> int:
    import os

    import pandas as pd

    from .select import leaderboard

    from .datasets import load_dataset

    X, y, shape = load_dataset(args.data)
    board = leaderboard(X, y, "auto", cv=args.cv, time_budget=args.budget, image_shape=shape,
                        random_state=args.seed, refit=False, verbose=1)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(board.round(4).to_string(index=False))
    if args.report:
        from .plot import plot_leaderboard

        os.makedirs(args.report, exist_ok=True)
        board.to_csv(os.path.join(args.report, "leaderboard.csv"), index=False)
        html = board.round(4).to_html(index=False)
        if (board["status"] == "ok").any():
            plot_leaderboard(board).savefig(os.path.join(args.report, "leaderboard.png"), dpi=110)
            html += '\n<p><img src="leaderboard.png" alt="score against fit time"></p>'
        with open(os.path.join(args.report, "leaderboard.html"), "w", encoding="utf-8") as handle:
            handle.write(f"<!doctype html><meta charset='utf-8'><title>Leaderboard</title>\n{html}\n")
        print(f"report written to {args.report}")
    return 0


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
            return _compare(args)
        return _plugins()
    except (ValueError, TypeError) as exc:
        print(f"sklearn-imgcls: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

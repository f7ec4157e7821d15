"""The ``sklearn-imgcls`` command line.

Subcommands: ``demo`` (train on scikit-learn's bundled digits and print a
report) and ``plugins`` (list installed components and where they come from).
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
        return _plugins()
    except (ValueError, TypeError) as exc:
        print(f"sklearn-imgcls: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

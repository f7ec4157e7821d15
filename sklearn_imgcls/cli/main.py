"""The ``sklearn-imgcls`` command line.

Subcommands: ``demo`` (train on scikit-learn's bundled digits and print a
report), ``train``, ``predict``, ``evaluate``, ``tune`` (grid search on loky
or Dask), ``export`` (ONNX), ``validate`` (dataset checks), ``compare``
(cross-validated leaderboard of candidate models), ``serve`` (an HTTP API and
web page for a saved model) and ``plugins`` (list installed components and
where they come from). User errors, unreadable
model files and disk problems end with exit code 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from typing import Sequence

from ..plugin.discovery import PluginError
from ..plugin.registry import DuplicateComponentError
from ..presets import PRESETS
from . import options as O
from .serve_command import add_serve_parser, serve_command

__all__ = ["EPILOG", "build_parser", "main", "one_line"]

#: ``np.str_('cat')`` -> ``'cat'``, ``np.int64(3)`` -> ``3`` in messages
_NUMPY_REPR = re.compile(r"np\.(?:str_|bytes_|bool_?|u?int(?:8|16|32|64|c|p)?|float(?:16|32|64|128)?|longlong|"
                         r"complex(?:64|128)?)\(((?:[^()]|\([^()]*\))*)\)")
_NUMPY_BOOL = re.compile(r"np\.(True|False)_")

EPILOG = """DATA is 'digits', 'fashion-mnist', a folder with one subfolder per class, a CSV/parquet
table with columns path,label (a label cell 'a;b' makes it multi-label), or an .npz with arrays X and y.

examples:
  sklearn-imgcls demo                 train on the digits images, print the report
  sklearn-imgcls demo --backbone resnet18 --epochs 10
  sklearn-imgcls validate photos/ --test test_photos/   exit 0: no issues, 1: issues listed
  sklearn-imgcls train photos/ --backbone bn_cnn --param max_epochs=20 --param augment='"light"' --out model.safetensors
  sklearn-imgcls predict model.safetensors new/*.png --proba --skip-invalid > predictions.csv
  sklearn-imgcls predict model.safetensors big_folder/ --out predictions.parquet --backend dask --scheduler tcp://host:8786
  sklearn-imgcls evaluate model.safetensors test_photos/ --report report/ --threads 4
  sklearn-imgcls evaluate model.safetensors test_photos/ --corruptions gaussian_noise,rotate --severities 1,3,5
  sklearn-imgcls tune photos/ --grid grid.json --cv 3 --n-jobs 2 --backend dask --out best.safetensors
  sklearn-imgcls export model.safetensors --onnx model.onnx
  sklearn-imgcls compare digits --budget 120
  sklearn-imgcls tune photos/ --grid grid.json --search halving --min-epochs 1 --max-epochs 9
  sklearn-imgcls compare photos/ --budget 600 --report out/   (photos/<class>/<image>)
  sklearn-imgcls train photos/ --out model.safetensors --log tensorboard:runs --log mlflow:sqlite:///mlflow.db
  sklearn-imgcls serve model.safetensors --port 8000   HTTP API + page at http://127.0.0.1:8000/
  sklearn-imgcls plugins              list backbones, losses, augmentations, samplers

model files: --out writes the safe format (safetensors + JSON; loading runs no code) whatever the
name, except that a name ending in .joblib/.pkl/.pickle together with --allow-pickle writes a
joblib pickle. predict/evaluate/export recognise the format by content and read a pickle only
with --allow-pickle (a pickle can run any code when loaded).
train/evaluate decode every image first and stop naming all undecodable files (predict streams
and names them all at the end); --skip-invalid leaves them out instead (listed on stderr).
--threads N sets torch's thread count (default: torch's, all cores); results with the same
random_state repeat exactly only at the same thread count. tune gives each parallel fit N // n-jobs.
exit codes: 0 success, 1 validate found issues, 2 user error, unreadable model file or disk problem,
  130 train stopped by Ctrl-C (model and checkpoint saved; add --resume).
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``sklearn-imgcls`` argument parser, one subparser per command.

    Options that several commands share are defined once in
    :mod:`sklearn_imgcls.cli.options`.

    Returns
    -------
    argparse.ArgumentParser
    """
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
    O.add_seed(demo)
    O.add_quiet(demo)
    train = sub.add_parser("train", help="fit a classifier on DATA and save it")
    O.add_data(train)
    O.add_estimator(train)
    train.add_argument("--backbone", default=None, help="registry backbone name (see `sklearn-imgcls plugins`)")
    train.add_argument("--preset", default=None, choices=sorted(PRESETS),
                       help="CNNClassifier training recipe for the parameters not set (default: accurate)")
    O.add_params(train)
    train.add_argument("--out", required=True, help="model file to write, e.g. model.safetensors (safe format)")
    O.add_quiet(train)
    O.add_log(train, "the fit (parameters, per-epoch metrics) and the saved model file")
    train.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from OUT.checkpoint/ (same DATA and parameters)")
    _add_run_options(train, writes=True)
    predict = sub.add_parser("predict", help="predict images; CSV on stdout, or streamed to a CSV/parquet file")
    O.add_model(predict)
    predict.add_argument("images", nargs="+", help="image files, folders, or CSV/parquet tables with a path column")
    predict.add_argument("--proba", action="store_true", help="add one probability column per class")
    predict.add_argument("--out", default=None, metavar="FILE",
                         help="write FILE.csv or FILE.parquet as the files are predicted (default: CSV on stdout)")
    predict.add_argument("--chunk-size", type=O.positive_int, default=1024, metavar="N",
                         help="files predicted at a time, and per Dask task; memory grows with N only (default: 1024)")
    O.add_cluster(predict)
    _add_run_options(predict)
    evaluate = sub.add_parser("evaluate", help="score a saved model on labelled DATA")
    O.add_model(evaluate)
    O.add_data(evaluate)
    O.add_report(evaluate, "the HTML report")
    O.add_log(evaluate, "the metrics and the --report folder as a new run")
    O.add_corruptions(evaluate)
    _add_run_options(evaluate)
    tune = sub.add_parser("tune", help="grid or successive-halving search with cross-validation (loky or Dask)")
    O.add_data(tune)
    tune.add_argument("--grid", required=True, help="JSON or YAML file mapping parameters to lists of values")
    O.add_estimator(tune)
    O.add_params(tune)
    O.add_cv(tune)
    tune.add_argument("--n-jobs", type=int, default=None, help="parallel fits (default: 1)")
    O.add_cluster(tune, "loky")
    tune.add_argument("--search", default="grid", choices=["grid", "halving"],
                      help="grid: every combination of --grid; halving: successive halving over epochs, every "
                           "combination trains --min-epochs, the best third 3x as many, ... up to --max-epochs")
    tune.add_argument("--min-epochs", type=O.positive_int, default=None, metavar="N",
                      help="epochs of the first halving round")
    tune.add_argument("--max-epochs", type=O.positive_int, default=None, metavar="N",
                      help="epochs of the last halving round")
    O.add_seed(tune)
    tune.add_argument("--out", default=None, help="save the refitted best model here, e.g. best.safetensors")
    _add_run_options(tune, writes=True, skip_invalid=False)
    export = sub.add_parser("export", help="export a saved model to ONNX")
    O.add_model(export)
    export.add_argument("--onnx", required=True, help="ONNX file to write (one self-contained file)")
    O.add_allow_pickle(export)
    validate = sub.add_parser("validate", help="check a dataset: unreadable files, duplicates, leakage, balance")
    O.add_data(validate)
    validate.add_argument("--test", default=None, metavar="DATA", help="test set to check for leakage (duplicates of DATA)")
    compare = sub.add_parser("compare", help="rank candidate models on a dataset by cross-validation")
    O.add_data(compare)
    compare.add_argument("--budget", type=float, default=None, help="time budget in seconds (default: none)")
    O.add_cv(compare)
    O.add_seed(compare)
    O.add_report(compare, "leaderboard.csv, .html and .png")
    O.add_cluster(compare)
    sub.add_parser("plugins", help="list installed components and their plugins")
    add_serve_parser(sub)
    return parser


def _add_run_options(parser: argparse.ArgumentParser, *, writes: bool = False, skip_invalid: bool = True) -> None:
    """--threads, --allow-pickle (reading models, or with ``writes`` writing one) and --skip-invalid."""
    O.add_threads(parser)
    O.add_allow_pickle(parser, writes=writes)
    if skip_invalid:
        O.add_skip_invalid(parser)


def _plugins() -> int:
    from ..plugin.registry import KINDS, get_registry

    registry = get_registry()
    packages = dict(registry.plugins())
    specs = {kind: registry.specs(kind) for kind in KINDS}  # a broken plugin fails here, before any output
    width = max((len(name) for found in specs.values() for name in found), default=0) + 1
    for kind in KINDS:
        print({"loss": "losses"}.get(kind, kind + "s") + ":")
        for name, spec in specs[kind].items():
            weights = getattr(spec, "weights", ())
            shown = f"  weights: {', '.join(w.name for w in weights)}" if weights else ""
            print(f"  {name:<{width}} {spec.description}  [{spec.plugin} from {packages.get(spec.plugin, '?')}]{shown}")
    for plugin, old, new in registry.deprecated_hook_users():
        print(f"note: plugin {plugin!r} implements the deprecated hook {old}(); it still works, "
              f"but its author should rename it to {new}()")
    return 0


def one_line(exc: BaseException) -> str:
    """The exception's message on one line, with plain values instead of numpy reprs.

    Parameters
    ----------
    exc : BaseException
        What the command raised.

    Returns
    -------
    str
        The message: no line breaks, no ``[Errno N]``, ``'cat'`` for ``np.str_('cat')``.
    """
    message = str(exc)
    if isinstance(exc, OSError) and exc.strerror:  # no "[Errno 13]" prefix; name the file and the usual fixes
        message = exc.strerror if exc.filename is None else \
            f"{exc.strerror}: {exc.filename!r}; check the path, its permissions and the free disk space."
    message = " ".join(message.split()) or type(exc).__name__
    return _NUMPY_BOOL.sub(r"\1", _NUMPY_REPR.sub(r"\1", message))


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from .demo import run_demo

        run_demo(backbone=args.backbone, max_epochs=args.epochs, seed=args.seed, verbose=not args.quiet)
        return 0
    if args.command == "plugins":
        return _plugins()
    if args.command == "serve":
        return serve_command(args)
    from . import commands

    if args.command == "compare":
        return commands.compare_command(args.data, args.budget, args.cv, args.seed, args.report,
                                        backend=args.backend, scheduler=args.scheduler)
    if args.command == "validate":
        return commands.validate_command(args.data, args.test)
    if args.command == "export":
        return commands.export_command(args.model, args.onnx, allow_pickle=args.allow_pickle)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    if args.command == "train":
        params = args.param + ([f'preset="{args.preset}"'] if args.preset else [])
        return commands.train_command(args.data, args.out, args.estimator, args.backbone, params, args.quiet,
                                      args.resume, allow_pickle=args.allow_pickle, skip_invalid=args.skip_invalid,
                                      log=args.log)
    if args.command == "predict":
        return commands.predict_command(args.model, args.images, args.proba, args.out, allow_pickle=args.allow_pickle,
                                        backend=args.backend, scheduler=args.scheduler, chunk_size=args.chunk_size,
                                        skip_invalid=args.skip_invalid)
    if args.command == "evaluate":
        return commands.evaluate_command(args.model, args.data, args.report, allow_pickle=args.allow_pickle,
                                         skip_invalid=args.skip_invalid, corruptions=args.corruptions,
                                         severities=args.severities, log=args.log)
    return commands.tune_command(args.data, args.grid, args.estimator, args.param, args.cv, args.n_jobs,
                                 args.backend, args.scheduler, args.out, args.seed, threads=args.threads,
                                 allow_pickle=args.allow_pickle, search=args.search, min_epochs=args.min_epochs,
                                 max_epochs=args.max_epochs)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    0 on success, 1 when ``validate`` found issues, 2 for a user error, an
    unreadable model file or a disk problem (one line on stderr; argparse's
    own usage errors also exit 2); 130 after Ctrl-C and 143 after SIGTERM
    (how SLURM, Kubernetes and ``timeout`` stop a job), both after the
    usual clean-up: no half-written output is left behind.
    """
    args = build_parser().parse_args(argv)
    with _terminate_cleanly():
        return _run(args)


@contextlib.contextmanager
def _terminate_cleanly():
    """While the command runs, SIGTERM raises SystemExit(143), so ``finally`` blocks remove temporary files."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    try:
        return _dispatch(args)
    except KeyboardInterrupt:  # train handles Ctrl-C itself (saves the model); elsewhere stop with one line
        print("sklearn-imgcls: interrupted (Ctrl-C); nothing was written under the output's name", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sklearn-imgcls predict ... | head`: the reader left; stop quietly
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except (ValueError, TypeError, OSError, ImportError, PluginError, DuplicateComponentError) as exc:
        # OSError: disk full, permissions, missing paths; PluginError / DuplicateComponentError: an installed
        # plugin is broken or clashes with another (their messages say how to block it)
        print(f"sklearn-imgcls: error: {one_line(exc)}", file=sys.stderr)
        return 2


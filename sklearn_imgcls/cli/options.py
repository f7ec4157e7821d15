"""The options several ``sklearn-imgcls`` subcommands share, each defined once with its help text.

:mod:`sklearn_imgcls.cli.main` builds the parser from these helpers; the
``--estimator`` choices come from :data:`ESTIMATORS`, which also gives the
class each choice trains (imported only when asked for, so ``--help`` stays fast).
"""

from __future__ import annotations

import argparse

__all__ = ["DATA_HELP", "ESTIMATORS", "MODEL_HELP", "add_allow_pickle", "add_corruptions", "add_cv", "add_data",
           "add_cluster", "add_estimator", "add_log", "add_model", "add_params", "add_quiet", "add_report", "add_seed", "add_skip_invalid",
           "add_threads", "estimator_class", "log_spec", "name_list", "positive_int", "severity_list"]


def _cnn() -> type:
    from ..cnn import CNNClassifier

    return CNNClassifier


def _transfer() -> type:
    from ..transfer import TransferClassifier

    return TransferClassifier


#: ``--estimator`` choice -> the estimator class it trains (imported when called: ``--help`` loads no torch)
ESTIMATORS = {"cnn": _cnn, "transfer": _transfer}

DATA_HELP = "'digits', 'fashion-mnist', a class-folder tree, a path,label CSV/parquet, or an .npz with X and y"
MODEL_HELP = "model file written by train or tune (.safetensors; a pickle needs --allow-pickle)"


def estimator_class(kind: str) -> type:
    """The estimator class of an ``--estimator`` choice.

    Parameters
    ----------
    kind : str
        A key of :data:`ESTIMATORS`.

    Returns
    -------
    type

    Raises
    ------
    ValueError
        ``kind`` is not one of them (the message lists them).
    """
    if kind not in ESTIMATORS:
        raise ValueError(f"--estimator must be one of {sorted(ESTIMATORS)}, got {kind!r}.")
    return ESTIMATORS[kind]()


def positive_int(text: str) -> int:
    """argparse ``type``: a whole number of at least 1 (an argparse error otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


def name_list(text: str) -> list[str]:
    """argparse ``type``: comma-separated names, e.g. ``gaussian_noise,jpeg`` (an argparse error when empty, or
    for a path: ``--corruptions`` takes an optional value, so before MODEL it would swallow the model's path)."""
    import os

    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    if os.path.exists(text) or os.sep in text or "." in text:
        raise argparse.ArgumentTypeError(
            f"{text!r} looks like a file, not corruption names: put --corruptions after MODEL and DATA, or write "
            f"--corruptions=all (or --corruptions=NAME,NAME) before them")
    return names


def severity_list(text: str) -> tuple[int, ...]:
    """argparse ``type``: comma-separated whole numbers, e.g. ``1,3,5``."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers such as 1,3,5, got {text!r}") from None
    return values


def add_data(parser: argparse.ArgumentParser) -> None:
    """The positional ``data`` (a dataset as :func:`~sklearn_imgcls.datasets.load_dataset` reads it)."""
    parser.add_argument("data", help=DATA_HELP)


def add_model(parser: argparse.ArgumentParser) -> None:
    """The positional ``model`` (a saved model file)."""
    parser.add_argument("model", help=MODEL_HELP)


def add_threads(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's thread count."""
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="torch threads (default: torch's, all cores); fix it for repeatable results")


def add_allow_pickle(parser: argparse.ArgumentParser, *, writes: bool = False) -> None:
    """``--allow-pickle``: read pickled models, or (``writes``) write one for a pickle suffix of ``--out``."""
    if writes:
        text = ("with an --out name ending in .joblib/.pkl/.pickle, write a joblib pickle (loading it runs code) "
                "instead of refusing")
    else:
        text = "also read pickled models (joblib); unpickling runs code: trusted files only"
    parser.add_argument("--allow-pickle", action="store_true", help=text)


def add_skip_invalid(parser: argparse.ArgumentParser) -> None:
    """``--skip-invalid``: leave out undecodable image files instead of stopping."""
    parser.add_argument("--skip-invalid", action="store_true",
                        help="leave out unreadable image files (listed on stderr) instead of stopping")


def add_estimator(parser: argparse.ArgumentParser) -> None:
    """``--estimator``: which estimator class to train."""
    parser.add_argument("--estimator", default="cnn", choices=sorted(ESTIMATORS),
                        help="cnn: CNNClassifier, transfer: TransferClassifier (default: cnn)")


def add_params(parser: argparse.ArgumentParser) -> None:
    """``--param KEY=VALUE`` (repeatable): estimator parameters."""
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="estimator parameter, value as JSON when it parses (repeatable)")


def add_seed(parser: argparse.ArgumentParser) -> None:
    """``--seed``: the random seed."""
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def add_cv(parser: argparse.ArgumentParser) -> None:
    """``--cv``: cross-validation folds."""
    parser.add_argument("--cv", type=int, default=3, help="cross-validation folds (default: 3)")


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """``--quiet``: no per-epoch progress."""
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")


def log_spec(text: str) -> str:
    """argparse ``type``: one ``--log`` spec, checked (form, tracker installed) before any work."""
    from .._core.trackers import parse_log

    try:
        parse_log(text)
    except (ValueError, ImportError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_log(parser: argparse.ArgumentParser, what: str) -> None:
    """``--log SPEC`` (repeatable): log ``what`` to TensorBoard or MLflow (optional extras)."""
    parser.add_argument("--log", action="append", default=[], metavar="SPEC", type=log_spec,
                        help=f"log {what} (repeatable): tensorboard:DIR (a new subfolder of DIR per run), or "
                             "mlflow:URI (sqlite:///mlflow.db, http://host:5000, a folder or file:///abs; "
                             "end with #EXPERIMENT to name the experiment, default sklearn-imgcls); "
                             "needs pip install 'sklearn-imgcls[tensorboard]' / '[mlflow]'")


def add_report(parser: argparse.ArgumentParser, what: str) -> None:
    """``--report FOLDER``: where to write ``what``."""
    parser.add_argument("--report", default=None, metavar="FOLDER", help=f"folder to write {what} into")


def add_corruptions(parser: argparse.ArgumentParser) -> None:
    """``--corruptions [NAMES]`` and ``--severities``: measure accuracy under image corruptions."""
    parser.add_argument("--corruptions", nargs="?", const="all", default=None, type=name_list, metavar="NAMES",
                        help="also measure accuracy under image corruptions and print the table: every installed "
                             "one, or the comma-separated NAMES (see `sklearn-imgcls plugins`); adds a section "
                             "to --report")
    parser.add_argument("--severities", type=severity_list, default=None, metavar="S,S,...",
                        help="corruption severities to measure with --corruptions (default: 1,2,3,4,5)")


def add_cluster(parser: argparse.ArgumentParser, here: str = "local") -> None:
    """``--backend {here,dask}`` and ``--scheduler ADDR``: run the work on this machine or on a Dask cluster.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    here : str
        The name of the on-this-machine choice and the default (``"loky"`` for ``tune``, ``"local"`` elsewhere).
    """
    where = "joblib's loky processes" if here == "loky" else "this process"
    parser.add_argument("--backend", default=here, choices=[here, "dask"],
                        type=lambda value: here if value in ("local", "loky") else value,  # one word for "here"
                        help=f"{here} (or {'local' if here == 'loky' else 'loky'}): {where}; dask: the workers of a "
                             f"Dask cluster (default: {here})")
    parser.add_argument("--scheduler", default=None, metavar="ADDR",
                        help="Dask scheduler address, e.g. tcp://host:8786 (default with --backend dask: a local "
                             "cluster of 2 single-threaded workers)")

"""Shared machinery of the plugin conformance checks (:mod:`sklearn_imgcls.testing`).

A check is a function ``check_x(ctx)`` decorated with :func:`conformance_check`;
the decorator turns it into ``check_x(spec, **options)``, gives it a
:class:`CheckContext` (the spec, the options, ``fail``/``advise``/``call``
helpers) and turns any failure into a :class:`PluginCheckError` whose
message names the plugin, the component, the check and what to fix. An
exception escaping from the plugin's own code becomes such an error too,
with the original exception chained.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = [
    "KIND_OF_SPEC",
    "CheckContext",
    "CheckOptions",
    "PluginCheckError",
    "PluginCheckWarning",
    "conformance_check",
    "describe_exception",
    "require_common_fields",
    "seeded_generator",
]


class PluginCheckError(AssertionError):
    """A plugin component does not follow the sklearn-imgcls contract.

    Attributes
    ----------
    plugin, kind, component, check : str
        Which plugin, which kind of component (``"backbone"``, ``"loss"``,
        ``"augmentation"``, ``"sampler"`` or ``"plugin"``), which component
        and which check failed.
    problem, fix : str
        What is wrong, and what to change.
    failures : list of PluginCheckError
        For an error raised by :func:`~sklearn_imgcls.testing.check_plugin`
        after several checks failed: each failure (else ``[self]``).
    """

    def __init__(
        self, problem: str, fix: str = "", *, plugin: str = "", kind: str = "", component: str = "", check: str = ""
    ) -> None:
        self.problem, self.fix = problem, fix
        self.plugin, self.kind, self.component, self.check = plugin, kind, component, check
        self.failures: list[PluginCheckError] = [self]
        super().__init__(self.message())

    def message(self, verb: str = "failed") -> str:
        """The full message: where, what is wrong, what to fix (``verb``: "failed", or "warns" for advice)."""
        where = []
        if self.plugin:
            where.append(f"plugin {self.plugin!r}")
        if self.kind and self.kind != "plugin":
            where.append(f"{self.kind} {self.component!r}")
        head = ", ".join(where)
        if self.check:
            head = f"{head}: {self.check} {verb}" if head else f"{self.check} {verb}"
        text = f"{head}: {self.problem}" if head else self.problem
        return f"{text.rstrip('.')}. Fix: {self.fix}" if self.fix else text


class PluginCheckWarning(UserWarning):
    """A component works, but relies on a fallback or a deprecated form (an error under ``strict=True``)."""


@dataclass(frozen=True)
class CheckOptions:
    """Options every check receives.

    Parameters
    ----------
    strict : bool
        Turn :class:`PluginCheckWarning` advice (undeclared layers, deprecated
        hook names) into failures.
    check_weights : bool
        Call each :class:`~sklearn_imgcls.plugin.specs.PretrainedWeights`'s
        ``load()`` and load the result into ``build_native``; off by default
        because ``load`` may read large files or download them.
    image_sizes : tuple of (int, int)
        ``(H, W)`` sizes a backbone is built and run at; the first with 1
        input channel, the others with 3.
    """

    strict: bool = False
    check_weights: bool = False
    image_sizes: tuple[tuple[int, int], ...] = ((8, 8), (12, 20))


@dataclass
class CheckContext:
    """What a check works with: the spec, the options and helpers to report problems."""

    spec: Any
    kind: str
    check: str
    options: CheckOptions = field(default_factory=CheckOptions)

    def error(self, problem: str, fix: str = "") -> PluginCheckError:
        """A :class:`PluginCheckError` naming this plugin, component and check."""
        return PluginCheckError(
            problem, fix, plugin=getattr(self.spec, "plugin", "") or "", kind=self.kind,
            component=getattr(self.spec, "name", "") or "", check=self.check,
        )

    def fail(self, problem: str, fix: str = "") -> None:
        """Raise a :class:`PluginCheckError` (see :meth:`error`)."""
        raise self.error(problem, fix)

    def require(self, condition: Any, problem: str, fix: str = "") -> None:
        """Fail with ``problem`` unless ``condition`` holds."""
        if not condition:
            self.fail(problem, fix)

    def advise(self, problem: str, fix: str) -> None:
        """Warn with :class:`PluginCheckWarning`, or fail under ``strict=True``."""
        if self.options.strict:
            self.fail(problem, fix)
        warnings.warn(PluginCheckWarning(self.error(problem, fix).message("warns")), stacklevel=3)

    def call(self, what: str, function: Callable[..., Any], *args: Any, fix: str = "", **kwargs: Any) -> Any:
        """Call the plugin's ``function``; an exception from it becomes a failure naming ``what``."""
        try:
            return function(*args, **kwargs)
        except PluginCheckError:
            raise
        except Exception as exc:  # foreign code: any exception is the finding
            raise self.error(f"{what} raised {describe_exception(exc)}", fix) from exc


#: spec class name -> component kind, for the messages of checks that serve every kind
KIND_OF_SPEC = {"BackboneSpec": "backbone", "LossSpec": "loss", "AugmentationSpec": "augmentation",
                "SamplerSpec": "sampler", "CorruptionSpec": "corruption"}


def describe_exception(exc: BaseException) -> str:
    """``"TypeError: message"``, shortened to one line of at most 300 characters."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def seeded_generator(seed: int):
    """A CPU :class:`torch.Generator` seeded with ``seed``."""
    import torch

    return torch.Generator().manual_seed(seed)


def conformance_check(kind: str, applies: Callable[[Any], bool] | None = None) -> Callable:
    """Turn ``check(ctx)`` into ``check(spec, **options)`` for one component kind.

    Parameters
    ----------
    kind : str
        The component kind the check is for (or ``"plugin"``).
    applies : callable or None
        ``applies(spec) -> bool``: whether the check is relevant to a spec
        (e.g. soft-target checks only for losses declaring ``soft_targets``);
        None means always.
    """

    def decorate(function: Callable[[CheckContext], None]) -> Callable[..., None]:
        @functools.wraps(function)
        def check(spec: Any, **options: Any) -> None:
            try:
                resolved = CheckOptions(**options)
            except TypeError:
                raise TypeError(
                    f"{function.__name__}() got unknown options {sorted(options)}; accepted: "
                    f"{sorted(CheckOptions.__dataclass_fields__)}."
                ) from None
            ctx = CheckContext(spec, KIND_OF_SPEC.get(type(spec).__name__, kind), function.__name__, resolved)
            try:
                function(ctx)
            except PluginCheckError:
                raise
            except Exception as exc:  # the component misbehaved where the check did not expect it
                raise ctx.error(
                    f"the component raised {describe_exception(exc)}",
                    "see the traceback above this error; the contract is in PLUGINS.md",
                ) from exc

        check.kind = kind
        check.applies = applies or (lambda spec: True)
        return check

    return decorate


def require_common_fields(ctx: CheckContext, name_example: str, build_fix: str, description_use: str,
                          tags_fix: str) -> None:
    """The fields every spec kind shares: name, build, description, tags (the examples fit the kind)."""
    spec = ctx.spec
    ctx.require(isinstance(spec.name, str) and spec.name and spec.name == spec.name.strip() and "," not in spec.name,
                f"name={spec.name!r} must be a non-empty string without commas or surrounding spaces",
                f"choose a short identifier such as {name_example!r}")
    ctx.require(callable(spec.build), f"build={spec.build!r} is not callable", build_fix)
    ctx.require(isinstance(spec.description, str) and spec.description.strip(), "description is empty",
                f"give a one-line description; {description_use}")
    ctx.require(isinstance(spec.tags, tuple) and all(isinstance(t, str) for t in spec.tags),
                f"tags={spec.tags!r} is not a tuple of strings", tags_fix)

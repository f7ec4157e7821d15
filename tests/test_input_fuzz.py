"""Fuzzing the input layer: every input either works or raises our own clear error."""

from __future__ import annotations

import traceback

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sklearn_imgcls import CNNClassifier
from sklearn.exceptions import NotFittedError

from sklearn_imgcls.errors import ImageInputError, ImageInputTypeError, NonFiniteOutputError
from sklearn_imgcls._core.images import ImageReadError
from sklearn_imgcls._core.data import as_image_data

DTYPES = st.sampled_from([np.uint8, np.int16, np.int64, np.float16, np.float32, np.float64, np.bool_])
shapes = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6)
arrays = st.one_of(
    hnp.arrays(DTYPES, shapes, elements=None),
    hnp.arrays(np.float64, shapes, elements=st.sampled_from([0.0, 1.0, np.nan, np.inf, -np.inf, 0.5])),
    st.lists(st.text(max_size=5), max_size=4),
    st.lists(st.one_of(st.integers(-3, 300), st.floats(allow_nan=True)), max_size=6),
    st.none(),
    st.text(max_size=5),
)


def _raised_by_us(exc: BaseException) -> bool:
    """The exception is one of the types sklearn_imgcls defines for user mistakes, not one from deep in torch or numpy."""
    return isinstance(exc, (ImageInputError, ImageInputTypeError, NonFiniteOutputError, ImageReadError, NotFittedError))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(X=arrays, image_shape=st.one_of(st.none(), st.tuples(st.integers(0, 4), st.integers(0, 6), st.integers(0, 6))))
def test_as_image_data_accepts_or_explains(X, image_shape):
    try:
        data = as_image_data(X, image_shape)
    except (ValueError, TypeError) as exc:
        assert _raised_by_us(exc), "".join(traceback.format_exception(exc))
        assert len(str(exc)) > 20
        return
    assert len(data) >= 1 and len(data.image_shape) == 3


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.random((40, 1, 6, 6)).astype(np.float32)
    return CNNClassifier(max_epochs=1, random_state=0).fit(X, np.arange(40) % 2)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(X=arrays)
def test_predict_accepts_or_explains(fitted, X):
    try:
        proba = fitted.predict_proba(X)
    except (ValueError, TypeError) as exc:
        assert _raised_by_us(exc), "".join(traceback.format_exception(exc))
        return
    assert proba.shape[1] == 2 and np.allclose(proba.sum(axis=1), 1)

"""dalib.report.score: numbers inside the bounds, bounds outside, 'diverged' for NaN/inf."""

import math

import pytest

from dalib.report import score


def test_number_inside_bounds_is_rounded():
    assert score(0.2049) == "0.20"
    assert score(0.2051, 3) == "0.205"
    assert score(0.4, above=1.0, below=0.1) == "0.40"


def test_values_beyond_a_bound_print_as_the_bound():
    assert score(3.4, above=1.0) == "> 1"
    assert score(15.7, above=2) == "> 2"
    assert score(0.001, below=0.01) == "< 0.01"


def test_a_value_on_the_bound_is_printed():
    assert score(1.0, above=1.0) == "1.00"


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_values_read_diverged(value):
    assert score(value, above=1) == "diverged"


@pytest.mark.parametrize("digits", [-1, 1.5, True])
def test_bad_digits_are_refused(digits):
    with pytest.raises(ValueError, match="digits"):
        score(0.5, digits)


def test_crossed_bounds_are_refused():
    with pytest.raises(ValueError, match="below"):
        score(0.5, above=0.1, below=1.0)

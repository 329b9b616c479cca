"""Printing scores so that they read the same on every machine.

A filter that tracks the truth is a contracting system: the observations pull every analysis
back, so a last-bit difference in the arithmetic (a fused multiply-add, a wider SIMD
register, another BLAS kernel) stays a last-bit difference, and its time-mean RMSE agrees
between machines to many digits.  A filter that has lost the truth is a free-running chaotic
system: the same last-bit difference grows to the size of the attractor within a few time
units, and its RMSE differs in the first digit from one processor to the next.

So a score is printed as a number only where it is reproducible, and as a bound where it is
not: ``score(3.4, above=1.0)`` prints ``"> 1"``.  The claim behind the bound (this filter
lost the truth) holds on any machine, and the book checks it with an ``assert``.
"""

from __future__ import annotations

import math

__all__ = ["score"]


def score(value: float, digits: int = 2, *, above: float | None = None,
          below: float | None = None) -> str:
    """Format a score, replacing values outside ``[below, above]`` by a bound.

    Parameters
    ----------
    value : float
        The score, e.g. a time-mean RMSE.
    digits : int
        Decimals printed for values inside the bounds.
    above, below : float, optional
        Values larger than ``above`` print as ``"> above"``, values smaller than ``below``
        as ``"< below"``; NaN and infinite values print as ``"diverged"``.

    Returns
    -------
    str

    Examples
    --------
    >>> score(0.2049)
    '0.20'
    >>> score(3.4, above=1.0)
    '> 1'
    >>> score(float("inf"))
    'diverged'
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}")
    if above is not None and below is not None and below > above:
        raise ValueError(f"below ({below}) must not exceed above ({above})")
    value = float(value)
    if not math.isfinite(value):
        return "diverged"
    if above is not None and value > above:
        return f"> {above:g}"
    if below is not None and value < below:
        return f"< {below:g}"
    return f"{value:.{digits}f}"

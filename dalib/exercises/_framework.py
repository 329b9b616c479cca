"""The machinery shared by all exercise checks."""

from __future__ import annotations

import contextlib
import copy
import functools
import textwrap
import warnings
from dataclasses import dataclass

import numpy as np

from ..backend import to_numpy

__all__ = ["Feedback", "exercise", "Unfinished", "Wrong", "as_float_array", "call_answer",
           "quietly"]


@dataclass(frozen=True)
class Feedback:
    """Outcome of a check: ``passed`` and a message for the student."""

    passed: bool
    message: str
    exercise: str = ""

    def __str__(self) -> str:
        mark = "Correct" if self.passed else "Not yet"
        where = f" [{self.exercise}]" if self.exercise else ""
        return textwrap.fill(f"{mark}{where}: {self.message}", width=70,
                             subsequent_indent="    ")

    __repr__ = __str__

    def __bool__(self) -> bool:
        return self.passed


class Unfinished(Exception):
    """Raised inside a check when the answer is still a placeholder."""


class Wrong(Exception):
    """Raised inside a check with a hint when the answer is incorrect."""


def _is_placeholder(answer) -> bool:
    return answer is Ellipsis or answer is None


def _private_copy(value):
    """A deep copy of ``value`` (arrays, lists, twin experiments...), or ``value`` itself.

    Objects that cannot be copied (a random generator holding a module, a function) are
    passed as they are; functions are immutable anyway.
    """
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - anything not copyable is passed unchanged
        return value


def call_answer(fn, *args, **kwargs):
    """Call a student's function on copies of the arguments, turning crashes into feedback.

    The function gets its own copies, so an answer that changes its inputs in place
    (``m += K @ v``) cannot change the arrays the check compares it with: the expected
    answer is always computed from the pristine inputs.
    """
    if _is_placeholder(fn):
        raise Unfinished("replace the `...` with your answer, then run the cell again.")
    if not callable(fn):
        raise Wrong(f"expected a function, got {type(fn).__name__}.")
    try:
        out = fn(*(_private_copy(a) for a in args),
                 **{k: _private_copy(v) for k, v in kwargs.items()})
    except NotImplementedError:
        raise Unfinished("your function still raises NotImplementedError.") from None
    except (Unfinished, Wrong):
        raise
    except Exception as err:  # noqa: BLE001 - any crash becomes a message
        raise Wrong(f"your function raised {type(err).__name__}: {err}") from None
    if _is_placeholder(out):
        raise Unfinished("your function returns nothing yet: replace the `...` with your code "
                         "and `return` the result.")
    return out


@contextlib.contextmanager
def quietly():
    """Run a check's own experiment without run-time warnings (a diverging filter, an
    overflow): the check's feedback says what went wrong, in one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def as_float_array(value, what: str):
    """A student's result as a NumPy float array, or a hint naming ``what`` it should be."""
    try:
        return np.asarray(to_numpy(value), dtype=float)
    except Exception:  # noqa: BLE001 - any conversion failure becomes a hint
        raise Wrong(f"{what} should be an array of numbers, got {type(value).__name__}.") from None


def exercise(name: str):
    """Decorate a checker ``f(answer, ...) -> str`` into a check that returns Feedback.

    The checker raises :class:`Unfinished` or :class:`Wrong` with a hint, or returns the
    success message.  Any other exception is reported as a message, never as a traceback.
    """

    def wrap(checker):
        @functools.wraps(checker)
        def check(answer, *args, **kwargs) -> Feedback:
            if _is_placeholder(answer):
                return Feedback(False, "replace the `...` with your answer, then run the cell "
                                "again.", name)
            try:
                message = checker(answer, *args, **kwargs)
            except Unfinished as err:
                return Feedback(False, str(err), name)
            except Wrong as err:
                return Feedback(False, str(err), name)
            except Exception as err:  # noqa: BLE001
                return Feedback(False, f"checking failed with {type(err).__name__}: {err}. "
                                "Is the answer of the expected type and shape?", name)
            return Feedback(True, message or "well done.", name)

        return check

    return wrap

"""The self-check machinery never shows a traceback."""

from dalib.exercises import Feedback, exercise
from dalib.exercises._framework import Wrong, call_answer


@exercise("demo")
def check_double(fn):
    out = call_answer(fn, 3)
    if out != 6:
        raise Wrong(f"double(3) should be 6, got {out}.")
    return "double works."


def test_outcomes():
    assert check_double(lambda x: 2 * x).passed
    unfinished = check_double(...)
    assert not unfinished and "replace the `...`" in str(unfinished)

    def todo(x):
        raise NotImplementedError

    assert "NotImplementedError" in check_double(todo).message

    def no_return(x):
        2 * x

    assert "`return` the result" in check_double(no_return).message

    def crash(x):
        return 1 / 0

    fb = check_double(crash)
    assert isinstance(fb, Feedback) and "ZeroDivisionError" in fb.message
    assert "should be 6, got 9" in check_double(lambda x: 3 * x).message
    assert str(check_double(lambda x: x + x)).startswith("Correct [demo]")

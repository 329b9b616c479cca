"""Self-checks for the book's exercises.

Each chapter's exercises come with a check that a student calls on their answer, e.g.::

    from dalib.exercises import ch01
    ch01.check_lorenz63_rhs(my_rhs)

A check never raises: it returns a :class:`Feedback` that prints as one helpful line,
whether the answer is right, wrong, unfinished (``...``, ``None``, ``NotImplementedError``)
or crashes.
"""

from ._framework import Feedback, exercise

__all__ = ["Feedback", "exercise"]

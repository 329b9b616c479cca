"""The student edition: the teacher's book without the solutions, and nothing else missing.

``tools/execute_notebooks.py --student`` writes the copy that ``make student-book`` builds.
These tests compare its notebooks with the stored (teacher) notebooks of ``book/``; the
solutions are found here independently, by a pattern over each notebook's whole text, and
the Sphinx build itself (with warnings as errors) is a step of ``make test``.
"""

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
FENCE = r"(?:`{3,}|:{3,})"
# A whole solution, in a notebook's text: from its start marker to its end marker's fence.
SOLUTION = re.compile(
    rf"^\s*{FENCE}\{{solution-start\}}.*?^\s*{FENCE}\{{solution-end\}}[^\n]*\n\s*{FENCE}\s*$",
    re.DOTALL | re.MULTILINE,
)
EXERCISE = re.compile(rf"^\s*{FENCE}\{{exercise\}}[^\n]*\n:label: (\S+)", re.MULTILINE)
HEADING = re.compile(r"^#{1,6} .+$", re.MULTILINE)
ROLE = re.compile(r"\{(?:ref|numref|eq)\}`(?:[^`<]*<)?([^`<>]+)>?`")
LABEL = re.compile(
    r"^\s*\(([^()\s]+)\)=\s*$|^\s*:(?:label|name):\s*(\S+)|\$\$\s*\(([^()\s]+)\)\s*$",
    re.MULTILINE,
)
INCLUDE = re.compile(r"^\s*(?:`{3,}|:{3,})\{(?:literalinclude|include|figure|image)\}\s*(\S+)",
                     re.MULTILINE)


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "execute_notebooks", ROOT / "tools" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "book-copy"
    load_tool().student_copy(out)
    return out


def text(nb, kinds=("markdown", "code")) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type in kinds)


def output_text(cells) -> str:
    parts = []
    for cell in cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def solution_code(nb) -> list[str]:
    """The code cells inside solutions, by the same pattern over the whole text."""
    solutions = "\n".join(SOLUTION.findall(text(nb)))
    return [c for c in nb.cells if c.cell_type == "code" and c.source and c.source in solutions]


def squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def meaningful(lines) -> set[str]:
    """Lines that identify text: not blank, not fences, not short."""
    return {s for line in lines if len(s := line.strip()) > 12 and not s.startswith(("```", ":::"))}


def test_there_are_notebooks_to_compare():
    assert len(NOTEBOOKS) >= 9


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_notebook_keeps_everything_but_solutions(path, student):
    teacher = nbformat.read(path, as_version=4)
    pupil = nbformat.read(student / "book" / path.name, as_version=4)
    teacher_text, pupil_text = text(teacher), text(pupil)
    outside = SOLUTION.sub("", teacher_text)

    exercises = EXERCISE.findall(teacher_text)
    if re.match(r"(ch\d\d[a-z]?|app)_", path.name):
        assert exercises, f"{path.name}: no exercises found in the teacher's notebook"
    assert EXERCISE.findall(pupil_text) == exercises
    assert HEADING.findall(text(pupil, ["markdown"])) == HEADING.findall(
        text(teacher, ["markdown"]))
    assert pupil_text.count("{bibliography}") == teacher_text.count("{bibliography}")
    # Every stub with its self-check, and every code cell outside solutions, stays in order.
    code = [c.source for c in pupil.cells if c.cell_type == "code"]
    hidden = {c.source for c in solution_code(teacher)}
    assert code == [c.source for c in teacher.cells
                    if c.cell_type == "code" and c.source not in hidden]
    # The rest of the text is unchanged: the student copy is the teacher's minus solutions.
    assert squash(pupil_text) == squash(outside)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_notebook_has_no_solution_line(path, student):
    teacher = nbformat.read(path, as_version=4)
    pupil = nbformat.read(student / "book" / path.name, as_version=4)
    pupil_text = text(pupil)
    assert "solution-start" not in pupil_text and "solution-end" not in pupil_text
    solutions = SOLUTION.findall(text(teacher))
    assert len(solutions) == len(EXERCISE.findall(text(teacher)))
    allowed = meaningful(SOLUTION.sub("", text(teacher)).splitlines())
    leaked = meaningful("\n".join(solutions).splitlines()) - allowed
    leaked &= meaningful(pupil_text.splitlines())
    assert not leaked, f"solution lines in the student copy: {sorted(leaked)[:5]}"
    # Nor any output that only a solution prints.
    sol_cells = solution_code(teacher)
    others = [c for c in teacher.cells if c.cell_type == "code" and c not in sol_cells]
    only_solutions = (meaningful(output_text(sol_cells).splitlines())
                      - meaningful(output_text(others).splitlines()))
    shown = meaningful(output_text(pupil.cells).splitlines()) & only_solutions
    assert not shown, f"solution outputs in the student copy: {sorted(shown)[:5]}"


def test_student_references_and_includes_resolve(student):
    """What the Sphinx build needs: every cross-reference target and included file."""
    pages = sorted((student / "book").glob("*.md"))
    texts = {p: p.read_text() for p in pages}
    texts |= {p: text(nbformat.read(p, as_version=4), ["markdown"])
              for p in sorted((student / "book").glob("*.ipynb"))}
    defined = {next(g for g in m.groups() if g) for t in texts.values()
               for m in LABEL.finditer(t)}
    # Figures of code cells are named in their metadata (myst-nb), and Sphinx makes the
    # general index itself.
    defined |= {cell.metadata["mystnb"]["figure"]["name"]
                for p in sorted((student / "book").glob("*.ipynb"))
                for cell in nbformat.read(p, as_version=4).cells
                if "name" in cell.metadata.get("mystnb", {}).get("figure", {})}
    defined |= {"genindex", "modindex", "search"}
    missing = [(p.name, t) for p, s in texts.items() for t in ROLE.findall(s)
               if t not in defined]
    assert not missing, f"references to targets the student edition lacks: {sorted(missing)}"
    absent = [(p.name, f) for p, s in texts.items() for f in INCLUDE.findall(s)
              if not (p.parent / f).exists()]
    assert not absent, f"files that pages include but the student copy lacks: {absent}"


def test_reference_into_a_solution_points_at_its_exercise():
    tool = load_tool()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("See eq. {eq}`eq-sol` and {ref}`the trick <fig-sol>`."),
        nbformat.v4.new_markdown_cell("```{exercise} E\n:label: ex-a\n\nDo it.\n```"),
        nbformat.v4.new_markdown_cell(
            "```{solution-start} ex-a\n:class: dropdown\n```\n\n$$ x = 1 $$ (eq-sol)\n\n"
            "(fig-sol)=\nA figure."),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("Done.\n\n```{solution-end}\n```\n\n## References"),
    ])
    hidden = tool.solution_labels([nb])
    assert hidden == {"eq-sol": "ex-a", "fig-sol": "ex-a"}
    out = tool.student_notebook(nb, hidden)
    assert [c.source for c in out.cells] == [
        "See eq. the solution of {ref}`ex-a` and {ref}`the trick <ex-a>`.",
        "```{exercise} E\n:label: ex-a\n\nDo it.\n```",
        "## References",
    ]

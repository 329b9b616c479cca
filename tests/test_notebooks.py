"""The book's notebooks: in sync with their sources and following the chapter template.

The stored outputs themselves are checked by nbval (see the Makefile's test target).
"""

import re
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for p in (ROOT / "book" / "src").glob("*.md") if not p.name.startswith("_"))
CHAPTERS = [p for p in SOURCES if re.match(r"(ch\d\d[a-z]?|app)_", p.name)]
TEMPLATE = [
    "**Learning objectives.**",
    "**Prerequisites.**",
    "**Time to run.**",
    "## Summary",
    "## What's next",
    "## Exercises",
    "## References",
]


def test_notebooks_match_their_sources():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "execute_notebooks.py"), "--check"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("src", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_follows_the_template(src):
    text = src.read_text()
    positions = [text.find(marker) for marker in TEMPLATE]
    missing = [m for m, pos in zip(TEMPLATE, positions) if pos < 0]
    assert not missing, f"{src.name} lacks {missing}"
    assert positions == sorted(positions), f"{src.name}: template sections out of order"


@pytest.mark.parametrize("src", CHAPTERS, ids=lambda p: p.stem)
def test_every_exercise_has_a_hidden_solution(src):
    text = src.read_text()
    exercises = re.findall(r"```\{exercise\}[^\n]*\n:label: (\S+)", text)
    solutions = re.findall(r"```\{solution-start\} (\S+)\n:class: dropdown", text)
    assert exercises, f"{src.name} has no exercises"
    assert sorted(exercises) == sorted(solutions), (exercises, solutions)
    assert text.count("{solution-start}") == text.count("{solution-end}")


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_code_is_readable_and_seeded(src):
    nb = jupytext.read(src, fmt="md:myst")
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            assert len(line) <= 84, f"{src.name}: code line longer than 84 characters: {line!r}"
        assert not re.search(r"np\.random\.(seed|rand|randn|normal|uniform)\(", cell.source), (
            f"{src.name}: use an explicit rng (dalib.default_rng), not NumPy's global state"
        )

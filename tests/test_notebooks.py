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
    # A chapter with a sub-chapter (ch07) lists its references under an unnumbered rubric,
    # so that the sub-chapter's section number follows the chapter's last section.
    text = text.replace("```{rubric} References", "## References")
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


NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def _figure_problems(cell) -> list[str]:
    """What a figure-producing code cell lacks: a caption, a name to cite it by, alt text."""
    mystnb = cell.get("metadata", {}).get("mystnb", {})
    figure, image = mystnb.get("figure", {}), mystnb.get("image", {})
    wanted = {"caption": figure.get("caption"), "name": figure.get("name"),
              "alt text": image.get("alt")}
    return [key for key, value in wanted.items() if not str(value or "").strip()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_is_numbered_captioned_and_described(path):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    problems, names = [], []
    for i, cell in enumerate(nb.cells):
        images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        if cell.cell_type != "code" or not images:
            continue
        first_line = cell.source.splitlines()[0] if cell.source else ""
        if len(images) > 1:
            problems.append(f"cell {i} ({first_line!r}) shows {len(images)} figures; "
                            "make one figure per cell so each gets its own number")
        missing = _figure_problems(cell)
        if missing:
            problems.append(f"cell {i} ({first_line!r}) lacks {', '.join(missing)} "
                            "(mystnb: figure: caption/name, image: alt in its metadata)")
        else:
            names.append(cell.metadata["mystnb"]["figure"]["name"])
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
    assert all(re.fullmatch(r"fig-[a-z0-9-]+", n) for n in names), names
    assert len(names) == len(set(names)), f"{path.name}: repeated figure names {names}"


def test_the_figure_rule_catches_a_bare_figure():
    bare = {"cell_type": "code", "metadata": {}, "source": "plt.plot(x)"}
    assert _figure_problems(bare) == ["caption", "name", "alt text"]
    captioned = {"metadata": {"mystnb": {"figure": {"caption": "c", "name": "fig-x"},
                                         "image": {"alt": " "}}}}
    assert _figure_problems(captioned) == ["alt text"]


MARKDOWN_PAGES = sorted((ROOT / "book").glob("*.md")) + SOURCES


@pytest.mark.parametrize("src", MARKDOWN_PAGES, ids=lambda p: p.stem)
def test_figure_directives_have_name_alt_and_caption(src):
    text = src.read_text()
    for match in re.finditer(r"```\{figure\}[^\n]*\n((?::[^\n]*\n)*)(.*?)```", text, re.DOTALL):
        options, caption = match.group(1), match.group(2).strip()
        assert ":name: fig-" in options, f"{src.name}: figure without :name:"
        assert re.search(r":alt: \S", options), f"{src.name}: figure without :alt:"
        assert caption, f"{src.name}: figure without a caption"


def test_no_inline_math_starts_a_line_with_a_list_marker():
    """A line starting with "+ " or "- " inside an inline formula becomes a list item and
    the formula is never typeset."""
    for src in MARKDOWN_PAGES:
        inside_display = False
        for number, line in enumerate(src.read_text().splitlines(), 1):
            if line.startswith("$$"):
                inside_display = not inside_display
                continue
            if not inside_display and re.match(r"[+*-] [^$]*\$(?:[^$]*\$[^$]*\$)*[^$]*$", line):
                pytest.fail(f"{src.name}:{number}: a line with an odd number of $ starts "
                            f"with a list marker: {line!r}")


def test_weighted_norms_follow_the_notation_page():
    """book/notation.md: |v|_A^2 = v^T A^{-1} v, the subscript is a covariance."""
    inverse_subscript = re.compile(r"\|(?:\^2)?_\{?[A-Za-z]\w*\^\{-1\}")
    for src in MARKDOWN_PAGES:
        found = inverse_subscript.findall(src.read_text())
        assert not found, f"{src.name}: weighted norm with an inverse subscript {found}"


def test_prose_only_keeps_outputs_and_refuses_changed_code(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "tools"))
    import execute_notebooks as tool

    name = "ch02_kalman"
    book, src_dir = tmp_path / "book", tmp_path / "book" / "src"
    src_dir.mkdir(parents=True)
    src = (ROOT / "book" / "src" / f"{name}.md").read_text()
    stored = (ROOT / "book" / f"{name}.ipynb").read_text()
    cfg = tool.config()
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr(tool, "BOOK", book)
    monkeypatch.setattr(tool, "SRC", src_dir)
    (book / f"{name}.ipynb").write_text(stored)

    (src_dir / f"{name}.md").write_text(src)
    assert not tool.prose_only(name, cfg)  # nothing changed

    first_heading = next(line for line in src.splitlines() if line.startswith("# "))
    (src_dir / f"{name}.md").write_text(
        src.replace(first_heading, first_heading + " (edited)", 1))
    assert tool.prose_only(name, cfg)
    new = (book / f"{name}.ipynb").read_text()
    assert "(edited)" in new
    outputs = [c.get("outputs") for c in jupytext.reads(stored, "ipynb").cells
               if c.cell_type == "code"]
    assert outputs == [c.get("outputs") for c in jupytext.reads(new, "ipynb").cells
                       if c.cell_type == "code"]

    code_line = next(line for line in src.splitlines() if line.startswith("rng = "))
    (src_dir / f"{name}.md").write_text(src.replace(code_line, code_line + "  # x"))
    with pytest.raises(ValueError, match="code cell .* changed"):
        tool.prose_only(name, cfg)

"""Build the book's notebooks from their sources and execute them, reproducibly.

Each chapter is written as a MyST Markdown notebook in ``book/src/<name>.md``.  This script
turns it into ``book/<name>.ipynb`` with stored outputs:

1. prepends two hidden cells: the math macros of ``_config.yml`` (so Jupyter and Colab know
   them) and an install cell that fetches dalib when it is missing (Colab);
2. executes the notebook top to bottom in a fresh kernel with the current environment;
3. writes it without timestamps, with deterministic cell ids and a hash of its source, so
   re-running on unchanged inputs gives a byte-identical file.

Usage::

    python tools/execute_notebooks.py            # execute stale notebooks (source changed)
    python tools/execute_notebooks.py --all      # execute every notebook
    python tools/execute_notebooks.py ch01_da_problem   # just these
    python tools/execute_notebooks.py --check    # verify notebooks match their sources
    python tools/execute_notebooks.py --refresh-hidden   # rewrite only the two hidden
                                                         # cells from _config.yml
    python tools/execute_notebooks.py --prose-only ch05_4dvar   # take changed Markdown
                                       # cells, keep the stored outputs (code unchanged)
    python tools/execute_notebooks.py --student OUT   # copies without solutions, for the
                                                      # student edition
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
SRC = BOOK / "src"
KERNEL = "python3"
TIMEOUT = 600
# One BLAS thread: the matrices are small, so threads only add overhead, and timings and
# round-off then do not depend on the machine's load or core count.
EXECUTION_ENV = {
    "PYTHONHASHSEED": "0",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TQDM_DISABLE": "1",
}

# The distribution that provides the import name dalib (see pyproject.toml) and the extra
# with what the notebooks import; the URL comes from _config.yml (repository.url).
DISTRIBUTION = "dalib-book"
READER_EXTRA = "notebooks"
INSTALL_CELL = """\
# Runs only where dalib is missing (Colab, a fresh Binder): installs it from the repository.
try:
    import dalib
except ImportError:
    %pip install --quiet "{requirement}"
    import importlib

    importlib.invalidate_caches()
    try:
        import dalib
    except ImportError as err:
        raise ImportError(
            "dalib is missing and installing it failed (see pip's message above). Run\\n"
            '    %pip install "{requirement}"\\n'
            "in a new cell, restart the kernel and run the notebook again. Other ways to "
            "run the book: {url}#readme"
        ) from err
"""


def install_requirement(cfg: dict) -> str:
    """What the install cell installs: ``dalib-book[notebooks] @ git+<repository url>``."""
    return f"{DISTRIBUTION}[{READER_EXTRA}] @ git+{cfg['repository']['url']}"


def config() -> dict:
    with open(ROOT / "_config.yml") as f:
        return yaml.safe_load(f)


def macros_cell(cfg: dict) -> nbformat.NotebookNode:
    macros = cfg["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
    lines = [f"\\newcommand{{\\{name}}}{{{body}}}" for name, body in macros.items()]
    cell = nbformat.v4.new_markdown_cell("$$\n" + "\n".join(lines) + "\n$$")
    cell.metadata = {"tags": ["remove-cell"], "dalib_book": "macros"}
    return cell


def install_cell(cfg: dict) -> nbformat.NotebookNode:
    source = INSTALL_CELL.format(url=cfg["repository"]["url"], requirement=install_requirement(cfg))
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata = {
        "tags": ["remove-cell"],
        "dalib_book": "install",
        "jupyter": {"source_hidden": True},
    }
    return cell


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def assemble(src: Path, cfg: dict) -> nbformat.NotebookNode:
    """The unexecuted notebook for ``src``: hidden cells + the source's cells."""
    nb = jupytext.read(src, fmt="md:myst")
    nb.cells = [macros_cell(cfg), install_cell(cfg), *nb.cells]
    for cell in solution_cells(nb.cells):
        if cell.cell_type == "code":  # collapsed in Jupyter too, revealed on demand
            cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
    nb.metadata = {
        "kernelspec": {"name": KERNEL, "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "dalib_book": {"source": str(src.relative_to(ROOT)), "source_sha256": source_hash(src)},
    }
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, cell in enumerate(nb.cells):
        cell.id = f"{src.stem[:40]}-{i:03d}"
    return nb


# A line that opens a solution marker: ```{solution-start} label or ```{solution-end}
# (backtick or colon fences).  The marker directive ends at the next line that is its fence.
_MARKER = re.compile(
    r"^\s*(?P<fence>`{3,}|:{3,})\{solution-(?P<kind>start|end)\}\s*(?P<arg>\S*)")


def split_solutions(cells) -> tuple[list, list]:
    """Split ``cells`` into what lies outside the solutions and what lies inside them.

    The markers ``solution-start`` and ``solution-end`` are directives inside Markdown
    cells, and a Markdown cell often holds the end of one solution and the next exercise
    or heading.  So the split is made line by line: a Markdown cell keeps its lines outside
    solutions (if any are not blank), a code cell goes wholly to one side.

    Returns ``(kept, solutions)``: ``kept`` is a list of cells, new Markdown cells where a
    cell was cut; ``solutions`` is a list of ``(exercise_label, cell)`` with the marker
    directives, the solution Markdown (as new cells) and the solution code cells.
    """
    kept, solutions = [], []
    label, inside, closing, ends = None, False, None, False
    for cell in cells:
        if cell.cell_type != "markdown":
            if inside:
                solutions.append((label, cell))
            else:
                kept.append(cell)
            continue
        out, sol = [], []
        for line in cell.source.splitlines():
            if closing is not None:  # a line of a marker directive
                sol.append(line)
                if line.strip() == closing:
                    closing = None
                    if ends:
                        inside, ends = False, False
                        solutions.append((label, _markdown_like(cell, "\n".join(sol))))
                        sol = []
                continue
            marker = _MARKER.match(line)
            if marker:
                if marker["kind"] == "start":
                    if inside:
                        raise ValueError(f"nested solution-start: {line!r}")
                    inside, label = True, marker["arg"] or None
                elif not inside:
                    raise ValueError(f"solution-end without solution-start: {line!r}")
                closing, ends = marker["fence"], marker["kind"] == "end"
                sol.append(line)
            else:
                (sol if inside else out).append(line)
        if closing is not None:
            raise ValueError(f"unclosed solution marker in cell:\n{cell.source}")
        if sol:
            solutions.append((label, _markdown_like(cell, "\n".join(sol))))
        text = "\n".join(out).strip("\n")
        if text.strip():
            kept.append(cell if text == cell.source.strip("\n") else _markdown_like(cell, text))
    if inside:
        raise ValueError("solution-start without solution-end")
    return kept, solutions


def _markdown_like(cell, source: str) -> nbformat.NotebookNode:
    new = nbformat.v4.new_markdown_cell(source)
    new.metadata = copy.deepcopy(cell.metadata)
    if "id" in cell:
        new.id = cell.id
    return new


def solution_cells(cells) -> list:
    """The code cells of ``cells`` that belong to solutions."""
    return [c for _, c in split_solutions(cells)[1] if c.cell_type == "code"]


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop run-dependent metadata so unchanged inputs give identical files."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("execution", None)
    return nb


def execute(name: str, cfg: dict) -> float:
    from nbclient import NotebookClient

    src = SRC / f"{name}.md"
    nb = assemble(src, cfg)
    env_backup = dict(os.environ)
    os.environ.update(EXECUTION_ENV)
    try:
        start = time.perf_counter()
        client = NotebookClient(
            nb,
            timeout=TIMEOUT,
            kernel_name=KERNEL,
            resources={"metadata": {"path": str(BOOK)}},
            record_timing=False,
        )
        client.execute()
        elapsed = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    nbformat.write(clean(nb), BOOK / f"{name}.ipynb")
    return elapsed


def sources() -> list[str]:
    return sorted(p.stem for p in SRC.glob("*.md") if not p.name.startswith("_"))


def stale(name: str) -> bool:
    target = BOOK / f"{name}.ipynb"
    if not target.exists():
        return True
    nb = nbformat.read(target, as_version=4)
    meta = nb.metadata.get("dalib_book", {})
    has_outputs = any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    return meta.get("source_sha256") != source_hash(SRC / f"{name}.md") or not has_outputs


def _strip(cell) -> tuple:
    return (cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", [])))


def check(names: list[str], cfg: dict) -> list[str]:
    """Problems: notebooks missing, or whose cells differ from their sources."""
    problems = []
    for name in names:
        target = BOOK / f"{name}.ipynb"
        if not target.exists():
            problems.append(f"{name}: book/{name}.ipynb is missing; run make notebooks")
            continue
        stored = nbformat.read(target, as_version=4)
        fresh = assemble(SRC / f"{name}.md", cfg)
        if [_strip(c) for c in stored.cells] != [_strip(c) for c in fresh.cells]:
            problems.append(f"{name}: book/{name}.ipynb differs from book/src/{name}.md; "
                            "run make notebooks")
        elif not any(c.get("outputs") for c in stored.cells if c.cell_type == "code"):
            problems.append(f"{name}: book/{name}.ipynb has no stored outputs")
    orphans = sorted({p.stem for p in BOOK.glob("*.ipynb")} - set(sources()))
    problems += [f"{o}: book/{o}.ipynb has no source in book/src" for o in orphans]
    return problems


# Targets a solution may define: (label)= lines, :label:/:name: options, $$ ... $$ (label).
_LABEL = re.compile(r"^\s*\((?P<a>[^()\s]+)\)=\s*$|^\s*:(?:label|name):\s*(?P<b>\S+)"
                    r"|\$\$\s*\((?P<c>[^()\s]+)\)\s*$", re.MULTILINE)
_ROLE = re.compile(r"\{(?P<role>ref|numref|eq|prf:ref)\}`(?P<body>[^`]*)`")
# Copied: everything but these (a student build needs no tests, history, caches or
# environments; hidden folders such as .git and .venv go too).
_NOT_COPIED = (".*", "_build", "__pycache__", "*.egg-info", "tests")


def labels_in(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _LABEL.finditer(text)}


def unlink_solution_labels(text: str, hidden: dict[str, str | None]) -> str:
    """Rewrite references to targets that only a solution defines (``hidden`` maps such a
    label to its exercise's label): they point at the exercise instead."""
    def repl(m):
        titled = re.fullmatch(r"(?s)(?P<title>.*?)\s*<(?P<target>[^<>]+)>", m["body"])
        title, target = (titled["title"], titled["target"]) if titled else ("", m["body"])
        title, target = title.strip(), target.strip()
        if target not in hidden:
            return m[0]
        exercise = hidden[target]
        if exercise is None:
            return title or "its solution"
        return f"{{ref}}`{title} <{exercise}>`" if title else f"the solution of {{ref}}`{exercise}`"
    return _ROLE.sub(repl, text)


def student_notebook(nb: nbformat.NotebookNode, hidden: dict) -> nbformat.NotebookNode:
    """``nb`` without its solutions, references into them redirected to the exercises."""
    nb = copy.deepcopy(nb)
    nb.cells, _ = split_solutions(nb.cells)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = unlink_solution_labels(cell.source, hidden)
    return nb


def solution_labels(nbs) -> dict[str, str | None]:
    """Labels that only solutions define, mapped to their exercise's label."""
    inside, outside = {}, set()
    for nb in nbs:
        kept, solutions = split_solutions(nb.cells)
        for cell in kept:
            if cell.cell_type == "markdown":
                outside |= labels_in(cell.source)
        for exercise, cell in solutions:
            if cell.cell_type == "markdown":
                inside.update(dict.fromkeys(labels_in(cell.source), exercise))
    return {k: v for k, v in inside.items() if k not in outside}


def refresh_hidden(names: list[str], cfg: dict) -> list[str]:
    """Rewrite the two hidden cells of the stored notebooks from the current config.

    The macros and the install cell depend only on ``_config.yml`` and this script, never
    on an execution, so they are replaced without running the notebook; every other cell
    and output stays as stored.  Returns the names of the notebooks that changed.
    """
    fresh = {"macros": macros_cell(cfg), "install": install_cell(cfg)}
    changed = []
    for name in names:
        path = BOOK / f"{name}.ipynb"
        nb = nbformat.read(path, as_version=4)
        kinds = [c.metadata.get("dalib_book") for c in nb.cells[:2]]
        if kinds != ["macros", "install"]:
            raise ValueError(f"{path}: the first two cells are not the hidden cells ({kinds})")
        before = nbformat.writes(nb)
        for cell in nb.cells[:2]:
            new = fresh[cell.metadata["dalib_book"]]
            cell.source, cell.metadata = new.source, copy.deepcopy(new.metadata)
        if nbformat.writes(nb) != before:
            nbformat.write(nb, path)
            changed.append(name)
    return changed


def prose_only(name: str, cfg: dict) -> bool:
    """Rebuild ``book/<name>.ipynb`` from its source where only Markdown cells changed.

    Outputs come from code cells alone, so when every code cell of the source equals the
    stored one (source, tags and other metadata), the stored outputs are what an execution
    would give and are kept.  Raises ``ValueError`` naming the first code cell that changed
    (then execute the notebook).  Returns whether the file changed.
    """
    path = BOOK / f"{name}.ipynb"
    stored = nbformat.read(path, as_version=4)
    fresh = assemble(SRC / f"{name}.md", cfg)
    old_code = [c for c in stored.cells if c.cell_type == "code"]
    new_code = [c for c in fresh.cells if c.cell_type == "code"]
    if len(old_code) != len(new_code):
        raise ValueError(f"{name}: {len(new_code)} code cells in the source, "
                         f"{len(old_code)} stored; execute the notebook")
    for i, (old, new) in enumerate(zip(old_code, new_code)):
        if old.source != new.source or clean_meta(old) != clean_meta(new):
            raise ValueError(f"{name}: code cell {i} changed ({new.source[:60]!r}); "
                             "execute the notebook")
        new.outputs, new.execution_count = old.outputs, old.execution_count
    if not any(c.outputs for c in new_code):
        raise ValueError(f"{name}: no stored outputs; execute the notebook")
    source_meta = fresh.metadata["dalib_book"]
    fresh.metadata = copy.deepcopy(stored.metadata)  # the kernel's language_info stays
    fresh.metadata["dalib_book"] = source_meta
    before = nbformat.writes(stored)
    if nbformat.writes(fresh) == before:
        return False
    nbformat.write(fresh, path)
    return True


def clean_meta(cell) -> dict:
    meta = copy.deepcopy(dict(cell.metadata))
    meta.pop("execution", None)
    return meta


def student_copy(out: Path) -> None:
    """Copy the book to ``out`` with every solution (directive, text and code) removed.

    Only the solutions go: exercise statements, stubs, self-checks and everything after a
    solution stay, also where they share a Markdown cell with its end marker.  References
    to a label that only a solution defines point at the exercise instead.
    """
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT, out, ignore=shutil.ignore_patterns(*_NOT_COPIED))
    shutil.rmtree(out / "book" / "src", ignore_errors=True)
    paths = sorted((out / "book").glob("*.ipynb"))
    nbs = [nbformat.read(path, as_version=4) for path in paths]
    hidden = solution_labels(nbs)
    for path, nb in zip(paths, nbs, strict=True):
        nbformat.write(student_notebook(nb, hidden), path)
    for page in (out / "book").glob("*.md"):
        text = page.read_text()
        if (new := unlink_solution_labels(text, hidden)) != text:
            page.write_text(new)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: all stale ones)")
    parser.add_argument("--all", action="store_true", help="execute every notebook")
    parser.add_argument("--check", action="store_true", help="only verify notebooks match sources")
    parser.add_argument("--student", type=Path, help="write a student copy of the book here")
    parser.add_argument("--refresh-hidden", action="store_true",
                        help="rewrite the hidden macro and install cells of the stored "
                             "notebooks from _config.yml, without executing them")
    parser.add_argument("--prose-only", action="store_true",
                        help="take the Markdown cells of changed sources and keep the stored "
                             "outputs; refuses when a code cell changed")
    args = parser.parse_args(argv)
    cfg = config()
    if args.student:
        student_copy(args.student)
        print(f"student copy of the book written to {args.student}")
        return 0
    names = args.names or sources()
    if args.refresh_hidden:
        changed = refresh_hidden(names, cfg)
        print(f"hidden cells rewritten in {len(changed)} notebook(s): {' '.join(changed)}")
        return 0
    if args.prose_only:
        todo = args.names or [n for n in names if stale(n)]
        try:
            changed = [n for n in todo if prose_only(n, cfg)]
        except ValueError as err:
            print(err)
            return 1
        print(f"Markdown cells rewritten in {len(changed)} notebook(s): {' '.join(changed)}")
        return 0
    if args.check:
        problems = check(names, cfg)
        for p in problems:
            print(p)
        print("notebooks match their sources" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    todo = names if (args.all or args.names) else [n for n in names if stale(n)]
    if not todo:
        print("all notebooks are up to date")
    for name in todo:
        print(f"executing {name} ...", flush=True)
        elapsed = execute(name, cfg)
        print(f"  {name}: {elapsed:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

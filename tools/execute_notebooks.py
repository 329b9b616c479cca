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
    python tools/execute_notebooks.py --student OUT   # copies without solutions, for the
                                                      # student edition
"""

from __future__ import annotations

import argparse
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

INSTALL_CELL = """\
# Runs only where dalib is missing (Colab, a fresh Binder): installs it from the repository.
try:
    import dalib
except ImportError:
    %pip install --quiet "dalib[plot,jax] @ git+{url}"
"""


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
    cell = nbformat.v4.new_code_cell(INSTALL_CELL.format(url=cfg["repository"]["url"]))
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


_SOLUTION = re.compile(r"```\{solution-(start|end)\}")


def solution_cells(cells) -> list:
    """The cells of ``cells`` that belong to solutions, markers included."""
    found, inside = [], False
    for cell in cells:
        marker = _SOLUTION.search(cell.source) if cell.cell_type == "markdown" else None
        if marker and marker.group(1) == "start":
            inside = True
        if inside:
            found.append(cell)
        if marker and marker.group(1) == "end":
            inside = False
    return found


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
    # One BLAS thread: the book's matrices are small, and on a shared two-core machine
    # OpenBLAS threads spinning against each other make a 40-by-40 eigh 20 times slower.
    os.environ.update({"PYTHONHASHSEED": "0", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                       "DALIB_NOTEBOOK": "1", "TQDM_DISABLE": "1", "OPENBLAS_NUM_THREADS": "1",
                       "OMP_NUM_THREADS": "1"})
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


def student_copy(out: Path) -> None:
    """Copy the book to ``out`` with every solution (directive and code) removed."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT, out, ignore=shutil.ignore_patterns(
        ".git", ".venv", "_build", "__pycache__", ".pytest_cache", "*.egg-info", "benchmarks"))
    for path in (out / "book").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        drop = {id(c) for c in solution_cells(nb.cells)}
        nb.cells = [c for c in nb.cells if id(c) not in drop]
        nbformat.write(nb, path)
    shutil.rmtree(out / "book" / "src", ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: all stale ones)")
    parser.add_argument("--all", action="store_true", help="execute every notebook")
    parser.add_argument("--check", action="store_true", help="only verify notebooks match sources")
    parser.add_argument("--student", type=Path, help="write a student copy of the book here")
    args = parser.parse_args(argv)
    cfg = config()
    if args.student:
        student_copy(args.student)
        print(f"student copy of the book written to {args.student}")
        return 0
    names = args.names or sources()
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

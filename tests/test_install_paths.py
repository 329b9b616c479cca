"""Install paths: the right distribution, one repository URL, environments that run the book.

The import name is ``dalib``; the distribution is ``dalib-book`` ("dalib" on the package
index is an unrelated project).  The repository URL is held in ``_config.yml``
(``repository.url``); where a file cannot derive it, these tests say which line to update.
"""

import ast
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
# Text that readers copy commands from.
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "book").glob("*.md")),
        *sorted((ROOT / "book" / "src").glob("*.md"))]
CODE = sorted(p for d in ("dalib", "tools", "tests", "benchmarks")
              for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts)
# Import names whose distribution has another name (the rest: packages_distributions()).
KNOWN = {"jax": "jax", "array_api_strict": "array-api-strict"}


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "execute_notebooks", ROOT / "tools" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def texts():
    """(where, text) of every document, source file and stored notebook cell."""
    for path in DOCS + CODE:
        yield path.relative_to(ROOT), path.read_text()
    for path in NOTEBOOKS:
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            yield f"{path.relative_to(ROOT)} cell {i}", cell.source


def pip_requirements(text):
    """The requirements that ``pip install`` commands in ``text`` name."""
    for segment in re.findall(r"pip install([^`\n#]*)", text):
        for quoted, single, bare in re.findall(r'"([^"]+)"|\'([^\']+)\'|(\S+)', segment):
            token = quoted or single or bare
            if token.startswith("-"):
                continue
            try:
                yield Requirement(token)
            except InvalidRequirement:
                continue


def test_distribution_name_is_ours_and_import_name_is_dalib():
    assert PYPROJECT["project"]["name"] == "dalib-book" == load_tool().DISTRIBUTION
    assert PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"] == ["dalib*"]
    # Every extra that names the project itself uses the distribution name.
    for extra, deps in PYPROJECT["project"]["optional-dependencies"].items():
        for dep in map(Requirement, deps):
            assert canonicalize_name(dep.name) != "dalib", f"extra {extra!r}: {dep}"


def test_no_install_command_resolves_to_another_project():
    found, wrong = 0, []
    for where, text in texts():
        for req in pip_requirements(text):
            name = canonicalize_name(req.name)
            if name == "dalib":
                wrong.append(f"{where}: {req} installs the unrelated 'dalib' of the index")
            elif name == "dalib-book":
                found += 1
                if req.url != f"git+{URL}":
                    wrong.append(f"{where}: {req} must install from git+{URL} (no release yet)")
    assert not wrong, "\n".join(wrong)
    assert found >= 3  # README, intro and the install cells


def test_every_copy_of_the_repository_url_agrees_with_config():
    """A fork changes repository.url in _config.yml; this names every line still to update."""
    stale = []
    urls = PYPROJECT["project"]["urls"]
    stale += [f"pyproject.toml [project.urls] {k} = {v}" for k, v in urls.items() if v != URL]
    for where, text in texts():
        for url in re.findall(r"git\+(https?://[^\s\"'`)]+)", text):
            if url.rstrip(".,;") != URL:
                stale.append(f"{where}: {url}")
    binder = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert "." in binder, "binder/requirements.txt must install dalib from the repository"
    assert not stale, f"these copies of the repository URL differ from {URL}:\n" + "\n".join(
        stale) + "\n(after changing repository.url run tools/execute_notebooks.py --refresh-hidden)"


def test_readme_documents_the_one_line_of_a_fork():
    readme = (ROOT / "README.md").read_text()
    assert "repository.url" in readme and "--refresh-hidden" in readme


def run_install_cell(monkeypatch, install_works: bool):
    """Run the notebooks' install cell where dalib cannot be imported; pip is faked."""
    tool = load_tool()
    source = tool.install_cell(tool.config()).source
    calls = []

    class Shell:
        def run_line_magic(self, name, line):
            calls.append((name, line))
            if install_works:
                monkeypatch.delitem(sys.modules, "dalib")

    monkeypatch.setitem(sys.modules, "dalib", None)  # import dalib raises ImportError
    code = TransformerManager().transform_cell(source)
    exec(compile(code, "install-cell", "exec"), {"get_ipython": Shell})  # noqa: S102
    return calls, tool.install_requirement(tool.config())


def test_install_cell_installs_our_distribution(monkeypatch):
    calls, requirement = run_install_cell(monkeypatch, install_works=True)
    assert requirement == f"dalib-book[notebooks] @ git+{URL}"
    assert calls == [("pip", f'install --quiet "{requirement}"')]


def test_install_cell_fails_loudly_with_what_to_do(monkeypatch):
    with pytest.raises(ImportError) as err:
        run_install_cell(monkeypatch, install_works=False)
    message = str(err.value)
    assert "installing it failed" in message and "restart the kernel" in message
    assert 'pip install "dalib-book[notebooks] @ git+' + URL in message


def test_install_cell_does_nothing_where_dalib_is_installed():
    tool = load_tool()
    code = TransformerManager().transform_cell(tool.install_cell(tool.config()).source)
    exec(compile(code, "install-cell", "exec"), {"get_ipython": None})  # noqa: S102


def notebook_imports() -> dict[str, set[str]]:
    """Top-level modules imported by the code cells of the stored notebooks."""
    transform = TransformerManager().transform_cell
    found = {}
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            for node in ast.walk(ast.parse(transform(cell.source))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.partition(".")[0], set()).add(path.name)
    return {m: p for m, p in found.items() if m not in sys.stdlib_module_names}


def extra_requirements(extra: str) -> set[str]:
    """Distribution names that ``dalib-book[extra]`` installs directly (extras followed)."""
    names = {canonicalize_name(Requirement(d).name) for d in PYPROJECT["project"]["dependencies"]}
    for dep in map(Requirement, PYPROJECT["project"]["optional-dependencies"][extra]):
        if canonicalize_name(dep.name) == "dalib-book":
            for inner in dep.extras:
                names |= extra_requirements(inner)
        else:
            names.add(canonicalize_name(dep.name))
    return names


def providers(module: str) -> set[str]:
    dists = importlib.metadata.packages_distributions().get(module, [])
    return {canonicalize_name(d) for d in dists} | (
        {KNOWN[module]} if module in KNOWN else set())


def binder_requirements() -> dict[str, str]:
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and line[0] not in "#."]
    return {canonicalize_name(r.name): str(r.specifier) for r in reqs}


def test_notebooks_import_something():
    imports = notebook_imports()
    assert {"dalib", "numpy", "matplotlib"} <= set(imports)


@pytest.mark.parametrize("environment", ["binder", "colab"])
def test_reader_environments_provide_every_notebook_import(environment):
    tool = load_tool()
    if environment == "binder":
        # binder/requirements.txt ends with ".": dalib-book with its own dependencies.
        available = set(binder_requirements()) | {
            canonicalize_name(Requirement(d).name) for d in PYPROJECT["project"]["dependencies"]}
    else:
        requirement = Requirement(tool.install_requirement(tool.config()))
        available = set().union(*(extra_requirements(e) for e in requirement.extras))
    missing = {}
    for module, pages in notebook_imports().items():
        if module == "dalib":
            continue
        dists = providers(module)
        assert dists, f"no installed distribution provides {module!r}; add it to KNOWN"
        if not dists & available:
            missing[module] = sorted(pages)
    assert not missing, f"{environment} lacks what these notebooks import: {missing}"


def test_binder_pins_match_the_lock_file():
    lock = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            lock[canonicalize_name(name)] = f"=={version.strip()}"
    assert binder_requirements() == {n: lock[n] for n in binder_requirements()}


def test_readme_local_jupyter_command_works():
    readme = (ROOT / "README.md").read_text()
    assert ".venv/bin/python -m jupyter lab book/" in readme
    out = subprocess.run([sys.executable, "-m", "jupyter", "lab", "--version"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"\d+\.\d+\.\d+\s*", out.stdout), out.stdout

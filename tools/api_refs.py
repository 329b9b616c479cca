"""Sphinx extension for the API reference appendix (book/app_api.md).

dalib's docstrings are numpydoc-style and are rendered with ``sphinx.ext.napoleon``.  The
appendix documents every object under its public package (``dalib.da.etkf_analysis``), while
docstrings may name the defining module (``dalib.da.enkf.etkf_analysis``); such references
are resolved to the public name here, so that both spellings link.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.addnodes import pending_xref

PUBLIC = ("dalib", "dalib.da", "dalib.learning", "dalib.models", "dalib.observations",
          "dalib.metrics", "dalib.setups", "dalib.autodiff", "dalib.backend", "dalib.report",
          "dalib.plotting")


def _drop_module_docstrings(app, what, name, obj, options, lines):
    """Package docstrings describe the code layout; the appendix has its own prose."""
    if what == "module":
        lines[:] = []


def _public_target(env, target: str, reftype: str) -> str | None:
    domain = env.get_domain("py")
    if reftype == "mod":
        parent = target.rsplit(".", 1)[0]
        return parent if parent in domain.modules else None
    last = target.rsplit(".", 1)[-1]
    for package in PUBLIC:
        candidate = f"{package}.{last}"
        if candidate in domain.objects:
            return candidate
    return None


def _resolve_module_paths(app, env, node: pending_xref, contnode: nodes.Element):
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("dalib."):
        return None
    public = _public_target(env, target, node.get("reftype"))
    if public is None or public == target:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], public,
                               node, contnode)


def setup(app):
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.napoleon")
    app.connect("autodoc-process-docstring", _drop_module_docstrings)
    app.connect("missing-reference", _resolve_module_paths)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

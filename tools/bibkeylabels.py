"""Sphinx extension: bibliography labels that are the BibTeX keys.

Citation labels are global in Sphinx.  The "alpha" labels (BS13) of two different works
can coincide on two chapters' reference lists (Bocquet and Sakov 2013, Berry and Sauer
2013); the keys cannot.  The formatting is pybtex's "alpha" style otherwise.
"""

from pybtex.plugin import register_plugin
from pybtex.style.formatting.alpha import Style as AlphaStyle
from pybtex.style.labels import BaseLabelStyle


class KeyLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            yield entry.key


class KeyAlphaStyle(AlphaStyle):
    default_label_style = "key"


def setup(app):
    register_plugin("pybtex.style.labels", "key", KeyLabelStyle)
    register_plugin("pybtex.style.formatting", "alpha_key", KeyAlphaStyle)
    return {"parallel_read_safe": True}

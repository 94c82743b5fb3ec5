"""Sphinx configuration: the API reference is generated from the numpydoc docstrings."""

project = "wavephase"
author = "wavephase developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_custom_sections = [("Shapes", "params_style")]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
# Offline build: MathJax is not fetched, formulas stay as TeX source in the HTML.
mathjax_path = "mathjax-not-bundled.js"
html_theme = "alabaster"
exclude_patterns = ["_build"]
nitpicky = False


def _skip_inherited_sklearn(app, what, name, obj, skip, options):  # noqa: ANN001
    # scikit-learn's generated ``set_*_request`` methods carry docstrings that
    # cross-reference its own glossary, which this build cannot resolve.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):  # noqa: ANN001
    app.connect("autodoc-skip-member", _skip_inherited_sklearn)

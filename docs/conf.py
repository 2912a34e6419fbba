"""Sphinx configuration of the omnivi documentation."""

import os
from importlib.metadata import version as package_version

project = "omnivi"
author = "omnivi developers"
release = package_version("omnivi")

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
]
autosummary_generate = True
# Type hints go into the parameter descriptions, for the parameters the docstring documents.
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
nb_execution_mode = "off"  # notebooks keep the outputs of their full run
myst_heading_anchors = 3
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
    "mudata": ("https://mudata.readthedocs.io/en/latest/", None),
    "scvi": ("https://docs.scvi-tools.org/en/stable/", None),
    "torch": ("https://pytorch.org/docs/stable/", None),
}
if os.environ.get("OMNIVI_DOCS_OFFLINE"):
    # Without a network (CI, scripts/docs) the other projects' inventories cannot be fetched,
    # which Sphinx reports as a warning; their names then stay plain text.
    intersphinx_mapping = {}
html_theme = "sphinx_book_theme"
html_title = "omnivi"
# docs/tutorials links to ../tutorials: its notebooks are pages, its notes for maintainers
# and the notebooks of failed runs are not.
exclude_patterns = [
    "_build",
    "benchmarks/runs",
    "tutorials/README.md",
    "tutorials/*.failed.ipynb",
    "**/.ipynb_checkpoints",
]

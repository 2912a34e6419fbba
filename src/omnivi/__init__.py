"""omnivi: multimodal single-cell integration on scvi-tools."""

from importlib.metadata import PackageNotFoundError, version

from . import benchmark, data, model, module, nn, pl, pp, tl

try:
    __version__ = version("omnivi")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["benchmark", "data", "model", "module", "nn", "pl", "pp", "tl"]

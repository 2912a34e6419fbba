"""Benchmark: integration methods side by side on one data set, each at its own defaults.

:func:`benchmark` (the ``omnivi benchmark`` command) fits the classic baselines, scvi-tools'
models and omnivi's on a user's file, each in its own process, and scores every embedding
with scib-metrics. It needs the optional dependencies of ``pip install 'omnivi[benchmark]'``.
"""

from ._classic import concatenated_pca, harmony, rna_pca
from ._data import BenchmarkData, describe_data
from ._methods import METHODS, Method
from ._run import benchmark
from ._scoring import machine_info, scib_scores

__all__ = [
    "METHODS",
    "BenchmarkData",
    "Method",
    "benchmark",
    "concatenated_pca",
    "describe_data",
    "harmony",
    "machine_info",
    "rna_pca",
    "scib_scores",
]

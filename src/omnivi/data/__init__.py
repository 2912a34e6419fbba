"""Data: real data sets, simulated examples, input validation, training minibatches."""

from ._backed import RequestedOrderLoader, SpanReadLoader
from ._datasets import DATA_DIR_ENV, find_data_dir, read_dataset
from ._loading import SparseInputDataSplitter, SparseInputLoader
from ._mosaic import PaddedRows
from ._simulate import RARE_TYPE, simulate_cite_seq

__all__ = [
    "DATA_DIR_ENV",
    "RARE_TYPE",
    "PaddedRows",
    "RequestedOrderLoader",
    "SpanReadLoader",
    "SparseInputDataSplitter",
    "SparseInputLoader",
    "find_data_dir",
    "read_dataset",
    "simulate_cite_seq",
]

"""Data: locating real data sets, simulating examples, and validating user input."""

from ._datasets import DATA_DIR_ENV, find_data_dir, read_dataset
from ._simulate import RARE_TYPE, simulate_cite_seq

__all__ = ["DATA_DIR_ENV", "RARE_TYPE", "find_data_dir", "read_dataset", "simulate_cite_seq"]

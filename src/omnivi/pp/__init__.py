"""Preprocessing: normalisation, quality control and feature selection per modality.

Each function reads counts and writes its result to a new layer, ``.obs`` or ``.var``
column, as documented; the counts that omnivi's models train on stay as they were.
"""

from ._features import highly_variable_features
from ._normalize import binarize, clr, normalize_log1p, size_factors, tfidf
from ._qc import mad_outliers, qc_metrics

__all__ = [
    "binarize",
    "clr",
    "highly_variable_features",
    "mad_outliers",
    "normalize_log1p",
    "qc_metrics",
    "size_factors",
    "tfidf",
]

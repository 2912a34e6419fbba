"""Building blocks: modality encoders and decoders, fusion, classifier, dropout, sparse input."""

from ._classifier import LatentClassifier
from ._decoders import AccessibilityDecoder, ExpressionDecoder, ProteinDecoder
from ._encoders import FusionEncoder, ModalityEncoder
from ._masking import hide_one_modality
from ._sparse import binary_columns, count_accessible

__all__ = [
    "AccessibilityDecoder",
    "ExpressionDecoder",
    "FusionEncoder",
    "LatentClassifier",
    "ModalityEncoder",
    "ProteinDecoder",
    "binary_columns",
    "count_accessible",
    "hide_one_modality",
]

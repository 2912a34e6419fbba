"""Building blocks: per-modality encoders and decoders, their fusion, a classifier."""

from ._classifier import LatentClassifier
from ._decoders import AccessibilityDecoder, ExpressionDecoder, ProteinDecoder
from ._encoders import FusionEncoder, ModalityEncoder

__all__ = [
    "AccessibilityDecoder",
    "ExpressionDecoder",
    "FusionEncoder",
    "LatentClassifier",
    "ModalityEncoder",
    "ProteinDecoder",
]

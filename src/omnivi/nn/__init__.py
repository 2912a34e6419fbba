"""Building blocks: modality encoders and decoders, fusion, classifier, modality dropout."""

from ._classifier import LatentClassifier
from ._decoders import AccessibilityDecoder, ExpressionDecoder, ProteinDecoder
from ._encoders import FusionEncoder, ModalityEncoder
from ._masking import hide_one_modality

__all__ = [
    "AccessibilityDecoder",
    "ExpressionDecoder",
    "FusionEncoder",
    "LatentClassifier",
    "ModalityEncoder",
    "ProteinDecoder",
    "hide_one_modality",
]

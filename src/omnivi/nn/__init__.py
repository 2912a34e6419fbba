"""Building blocks: per-modality encoders and decoders, and their fusion."""

from ._decoders import AccessibilityDecoder, ExpressionDecoder, ProteinDecoder
from ._encoders import FusionEncoder, ModalityEncoder

__all__ = [
    "AccessibilityDecoder",
    "ExpressionDecoder",
    "FusionEncoder",
    "ModalityEncoder",
    "ProteinDecoder",
]

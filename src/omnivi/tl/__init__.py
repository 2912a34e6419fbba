"""Tools: metrics of embeddings."""

from ._metrics import batch_mixing_entropy, knn_label_accuracy, label_recall

__all__ = ["batch_mixing_entropy", "knn_label_accuracy", "label_recall"]

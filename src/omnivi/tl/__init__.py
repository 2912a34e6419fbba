"""Tools: metrics of embeddings, and their UMAP."""

from ._metrics import batch_mixing_entropy, knn_label_accuracy, label_recall
from ._umap import umap

__all__ = ["batch_mixing_entropy", "knn_label_accuracy", "label_recall", "umap"]

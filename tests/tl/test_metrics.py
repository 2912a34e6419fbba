import numpy as np
import pytest

from omnivi import tl


@pytest.fixture
def clusters():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 100)
    centres = {"a": (0, 0), "b": (20, 0), "c": (0, 20)}
    points = np.array([centres[label] for label in labels]) + rng.normal(size=(300, 2))
    return points, labels


def test_knn_accuracy_separated_vs_random(clusters):
    points, labels = clusters
    assert tl.knn_label_accuracy(points, labels) > 0.99
    noise = np.random.default_rng(1).normal(size=points.shape)
    assert tl.knn_label_accuracy(noise, labels) < 0.5


def test_label_recall(clusters):
    points, labels = clusters
    assert tl.label_recall(points, labels, "a") == 1.0
    noise = np.random.default_rng(1).normal(size=points.shape)
    assert tl.label_recall(noise, labels, "a") < 0.5
    with pytest.raises(ValueError, match="No cell has label"):
        tl.label_recall(points, labels, "z")


def test_batch_mixing_entropy(clusters):
    points, labels = clusters
    # batches equal to the separated clusters: no mixing
    assert tl.batch_mixing_entropy(points, labels) < 0.05
    # batches assigned at random within clusters: near-perfect mixing
    random_batches = np.random.default_rng(2).choice(["x", "y"], size=len(labels))
    assert tl.batch_mixing_entropy(points, random_batches) > 0.9
    with pytest.raises(ValueError, match="two batches"):
        tl.batch_mixing_entropy(points, np.zeros(len(labels)))

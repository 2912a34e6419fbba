"""Per-cell novelty statistics: how a query population relates to reference cells."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

MIN_MIXING_CELLS = 20


def mean_reference_distance(reference: np.ndarray, cells: np.ndarray, k: int) -> np.ndarray:
    """Mean distance of each cell to its ``k`` nearest reference cells."""
    k = min(k, len(reference))
    distances, _ = NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(cells)
    return distances.mean(axis=1)


def query_neighbour_fraction(reference: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Fraction of query cells among each query cell's ``k`` nearest other cells.

    Reference and query cells are pooled. Where the query holds cell types the reference has,
    the two mix and the fraction is near the query's share of the pool; cells of a type the
    reference lacks have mostly query cells around them, and the fraction nears 1.
    """
    n_reference, n_query = len(reference), len(query)
    k = min(k, n_reference + n_query - 1)
    pool = np.vstack([reference, query])
    _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(pool).kneighbors(query)
    itself = neighbours == (n_reference + np.arange(n_query))[:, None]
    dropped = np.where(itself.any(axis=1), itself.argmax(axis=1), k)  # self, else the farthest
    keep = np.ones_like(neighbours, dtype=bool)
    keep[np.arange(n_query), dropped] = False
    return (neighbours[keep].reshape(n_query, k) >= n_reference).mean(axis=1)


def mixing_threshold(
    reference: np.ndarray,
    groups: np.ndarray,
    n_query: int,
    k: int,
    false_positive_rate: float,
    max_groups: int = 10,
    seed: int = 0,
) -> float:
    """Threshold of :func:`query_neighbour_fraction` for a query of ``n_query`` cells.

    Each group of reference cells (a batch) in turn plays the query, against the other
    groups' cells as the reference, in a pool of the real one's proportions: as many of the
    group's cells as the query has (at most all of them), and reference cells in the same
    ratio to them as the reference to the query. These cells are all of known types, and
    differ from the other groups' as a new batch would; the threshold is the
    ``1 - false_positive_rate`` quantile of their fractions, so that about that rate of
    known-type cells is called novel.

    Parameters
    ----------
    reference
        Reference cells the query is compared with.
    groups
        Group (batch) of each reference cell; with a single group, random tenths are used.
    n_query
        Number of cells in the query.
    k
        Neighbours counted.
    false_positive_rate
        Target fraction of known-type cells called novel.
    max_groups
        Most groups that play the query (chosen at random).
    seed
        Seed of the subsampling.
    """
    rng = np.random.default_rng(seed)
    if len(np.unique(groups)) < 2:
        groups = rng.integers(10, size=len(reference))
    chosen = np.unique(groups)
    if len(chosen) > max_groups:
        chosen = rng.choice(chosen, max_groups, replace=False)
    fractions = []
    for group in chosen:
        inside, outside = np.flatnonzero(groups == group), np.flatnonzero(groups != group)
        n_pseudo_query = min(len(inside), n_query)
        n_pseudo_reference = round(n_pseudo_query * len(reference) / n_query)
        if n_pseudo_reference > len(outside):
            n_pseudo_reference = len(outside)
            n_pseudo_query = round(n_pseudo_reference * n_query / len(reference))
        if min(n_pseudo_query, n_pseudo_reference) < MIN_MIXING_CELLS:
            continue
        pseudo_query = reference[rng.choice(inside, n_pseudo_query, replace=False)]
        pseudo_reference = reference[rng.choice(outside, n_pseudo_reference, replace=False)]
        fractions.append(query_neighbour_fraction(pseudo_reference, pseudo_query, k))
    if not fractions:
        raise ValueError(
            f"The mixing score compares populations: it needs a query of at least "
            f"{MIN_MIXING_CELLS} cells and enough reference cells to calibrate it (query "
            f"{n_query}, reference {len(reference)}). Use method='distance', which scores "
            f"cells one at a time."
        )
    return float(np.quantile(np.concatenate(fractions), 1 - false_positive_rate))

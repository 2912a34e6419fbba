"""Per-cell novelty statistics: how a query population relates to reference cells."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

MIN_MIXING_CELLS = 20
MIN_PSEUDO_CELLS = 10
MIN_SCALE = 0.25


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


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    position = np.searchsorted(cumulative, q * cumulative[-1])
    return float(values[order][min(position, len(values) - 1)])


def _groups_playing_the_query(
    query_counts: np.ndarray, reference_counts: np.ndarray, n_groups: int
) -> int:
    """How many of ``n_groups`` groups should play the query so that most of it is copied.

    Taking ``m`` groups as the pseudo-query leaves ``n_groups - m`` as its reference; the
    scale at which a type's query and reference counts can both be drawn is about the smaller
    of ``m / n_groups * reference / query`` and ``(n_groups - m) / n_groups`` (at most 1).
    """
    candidates = np.arange(1, n_groups)
    share = candidates[:, None] / n_groups
    scales = np.minimum.reduce(
        [
            np.ones_like(share * query_counts),
            share * reference_counts / query_counts,
            np.broadcast_to(1 - share, (len(candidates), len(query_counts))),
        ]
    )
    return int(candidates[np.argmax(scales @ query_counts)])


def _pseudo_pool(
    rng: np.random.Generator,
    playing: np.ndarray,
    reference_types: np.ndarray,
    query_types: np.ndarray,
    query_counts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Draw reference cells that copy a query and its reference at a smaller scale.

    For each type of the query, cells of the groups ``playing`` the query and cells of the
    other groups are drawn in the ratio of the query's cells of that type to the
    reference's, at the largest scale the groups can supply (at most 1). Types the query
    lacks join the pseudo-reference at the query's mean scale.

    Returns
    -------
    Indices of the pseudo-query and of the pseudo-reference, and the mean scale (weighted
    by the query's counts).
    """
    pseudo_query, pseudo_reference, scales = [], [], []
    for cell_type, count in zip(query_types, query_counts, strict=True):
        of_type = reference_types == cell_type
        inside, outside = np.flatnonzero(playing & of_type), np.flatnonzero(~playing & of_type)
        scale = min(1.0, len(inside) / count, len(outside) / of_type.sum())
        scales.append(scale)
        pseudo_query.append(rng.choice(inside, int(scale * count), replace=False))
        pseudo_reference.append(rng.choice(outside, round(scale * of_type.sum()), replace=False))
    mean_scale = float(np.average(scales, weights=query_counts))
    for cell_type in np.setdiff1d(np.unique(reference_types), query_types):
        of_type = reference_types == cell_type
        outside = np.flatnonzero(~playing & of_type)
        n = min(len(outside), round(mean_scale * of_type.sum()))
        pseudo_reference.append(rng.choice(outside, n, replace=False))
    return np.concatenate(pseudo_query), np.concatenate(pseudo_reference), mean_scale


def mixing_threshold(
    reference: np.ndarray,
    reference_types: np.ndarray,
    groups: np.ndarray,
    query_types: np.ndarray,
    query_groups: np.ndarray,
    k: int,
    false_positive_rate: float,
    n_splits: int = 10,
    seed: int = 0,
) -> tuple[float, list[str]]:
    """Threshold of :func:`query_neighbour_fraction` for a query, from pseudo-queries like it.

    A query cell's score depends on how many query cells of its type there are against
    reference cells of its type, and on how far the query's batch differs from the
    reference. So reference groups (batches) in turn play the query, copying its
    composition: for each of its (predicted) types, their cells and the other groups' cells
    are drawn in the query's ratio to the reference (:func:`_pseudo_pool`), as many groups
    playing as make that scale largest. These cells are all of known types and differ from
    their pseudo-reference as a new batch would. The neighbours counted shrink with the
    scale, so that they reach as far as in the real pool. Each split gives the
    ``1 - false_positive_rate`` quantile of its pseudo-query's scores (its types weighted
    as in the query), raised by half of their coarser step so that it falls between two
    of them; the threshold is the largest over the splits, so that a query whose
    batch differs from the reference no more than the reference's groups differ from each
    other has at most that rate of known-type cells called novel. A query from batches the
    reference has is copied from random tenths of the reference instead, batch by batch.

    Parameters
    ----------
    reference
        Reference cells the query is compared with.
    reference_types
        Label code of each reference cell.
    groups
        Group (batch) code of each reference cell.
    query_types
        Predicted label code of each query cell.
    query_groups
        Group (batch) code of each query cell. Where all are groups of the reference (a
        query from batches seen in training), random tenths of the reference play the query
        and copy its batches as well as its types. With a single reference group, random
        tenths are used too, with a warning that the threshold knows no batch effect.
    k
        Neighbours counted for the query.
    false_positive_rate
        Most fraction of known-type cells to call novel.
    n_splits
        Pseudo-queries drawn.
    seed
        Seed of the draws.

    Returns
    -------
    The threshold, and the reasons (possibly none) why it may not hold for this query.
    """
    if len(query_types) < MIN_MIXING_CELLS:
        raise ValueError(
            f"The mixing score compares populations: it needs a query of at least "
            f"{MIN_MIXING_CELLS} cells (got {len(query_types)}). Use method='distance', which "
            f"scores cells one at a time."
        )
    rng = np.random.default_rng(seed)
    problems = []
    if np.isin(query_groups, groups).all():  # seen batches: copy (batch, type) pairs
        n_groups = int(max(groups.max(), query_groups.max())) + 1
        reference_types = reference_types.astype(np.int64) * n_groups + groups
        query_types = query_types.astype(np.int64) * n_groups + query_groups
        groups = None
    elif len(np.unique(groups)) < 2:
        groups = None
        problems.append(
            "the reference has one batch, so the threshold knows no batch effect, and a query "
            "from another batch may have more known cells called novel than the target rate"
        )
    if groups is None:
        groups = rng.integers(10, size=len(reference))
    names = np.unique(groups)
    types, query_counts = np.unique(query_types, return_counts=True)
    reference_counts = np.array([(reference_types == t).sum() for t in types])
    present = reference_counts > 0  # types the kept reference cells lack cannot be copied
    types, query_counts, reference_counts = (
        types[present],
        query_counts[present],
        reference_counts[present],
    )
    n_playing = _groups_playing_the_query(query_counts, reference_counts, len(names))
    thresholds, scales = [], []
    for _ in range(n_splits if len(types) else 0):
        playing = np.isin(groups, rng.choice(names, n_playing, replace=False))
        pseudo_query, pseudo_reference, scale = _pseudo_pool(
            rng, playing, reference_types, types, query_counts
        )
        if min(len(pseudo_query), len(pseudo_reference)) < MIN_PSEUDO_CELLS:
            continue
        k_pseudo = min(k, max(MIN_PSEUDO_CELLS // 2, round(k * scale)))
        scores = query_neighbour_fraction(
            reference[pseudo_reference], reference[pseudo_query], k_pseudo
        )
        drawn_types = reference_types[pseudo_query]
        drawn, n_drawn = np.unique(drawn_types, return_counts=True)
        weights = (query_counts[np.searchsorted(types, drawn)] / n_drawn)[
            np.searchsorted(drawn, drawn_types)
        ]
        quantile = _weighted_quantile(scores, weights, 1 - false_positive_rate)
        thresholds.append(min(1.0, quantile + 0.5 / k_pseudo))  # between steps of 1 / k_pseudo
        scales.append(scale)
    if not thresholds:
        raise ValueError(
            f"The mixing score's threshold is set on reference cells of the query's types, "
            f"but the reference's batches hold too few of them (query {len(query_types)} "
            f"cells, reference {len(reference)}). Use method='distance', which scores cells "
            f"one at a time."
        )
    if np.median(scales) < MIN_SCALE:
        problems.append(
            f"the reference's batches hold only {np.median(scales):.0%} as many cells of the "
            "query's types as the query and its reference need, so the pseudo-queries that "
            "set the threshold are smaller than the query"
        )
    threshold = max(thresholds)
    if threshold >= 1:
        problems.append(
            "even between the reference's own batches, cells of known types do not mix, so "
            "no cell can be called novel; method='distance' compares cells in the "
            "batch-corrected embedding"
        )
    return threshold, problems

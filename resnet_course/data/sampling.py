"""Stratified, seeded subsets: the same class proportions as the full set, reproducibly."""
import numpy as np


def stratified_indices(labels, size, seed=0):
    """Sorted indices of ``size`` items of ``labels`` with (as nearly as possible) the class
    proportions of the whole; the same ``labels``, ``size`` and ``seed`` give the same subset.

    Each class gets ``floor(size * share)`` items; the items left over go to the classes
    with the largest remainders (ties broken at random, seeded).
    """
    labels = np.asarray(labels).reshape(-1)
    if not 1 <= size <= len(labels):
        raise ValueError(f"a subset of {size} items cannot be taken from {len(labels)}; "
                         f"choose a size from 1 to {len(labels)}.")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / len(labels)
    quota = np.floor(exact).astype(int)
    leftover = size - quota.sum()
    # Largest remainder first; a random key breaks ties so no class is always favoured.
    order = np.lexsort((rng.random(len(classes)), -(exact - quota)))
    quota[order[:leftover]] += 1
    picks = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picks))

"""The three splits of a data set, and the NumPy-only stratified pick that draws them.

Examples
--------
>>> y = np.repeat(np.arange(3), [6, 3, 3])
>>> np.bincount(y[stratified_pick(y, 4, np.random.default_rng(0))]).tolist()
[2, 1, 1]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from course_utils.runtime.checks import check_scalar

__all__ = ["FingersSplits", "stratified_pick"]


@dataclasses.dataclass(frozen=True)
class FingersSplits:
    """Training, validation and test images with their labels.

    Images are uint8 ``(n, size, size)``, labels int64 class indices. The test
    split is the "vault": look at it once, at the very end.

    Examples
    --------
    >>> x = np.zeros((4, 8, 8), np.uint8); y = np.arange(4)
    >>> FingersSplits(x[:2], y[:2], x[2:3], y[2:3], x[3:], y[3:]).image_size
    8
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def image_size(self) -> int:
        """Side of the square images, in pixels."""
        return int(self.x_train.shape[1])


def stratified_pick(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` of the labels ``y``, drawn at random, stratified by class.

    Every class gets its share ``n * count / len(y)`` rounded down; the images left
    over go to the classes with the largest remainders (ties broken at random). Any
    ``0 <= n <= len(y)`` works, also fewer images than classes.

    Raises ``ValueError`` for an ``n`` outside ``0..len(y)``.

    >>> y = np.repeat(np.arange(3), [6, 3, 3])
    >>> np.bincount(y[stratified_pick(y, 4, np.random.default_rng(0))]).tolist()
    [2, 1, 1]
    """
    n = check_scalar(n, "n", int, min_val=0, max_val=len(y))
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * n / max(len(y), 1)
    take = np.floor(quota).astype(int)
    remainder = quota - take
    tie_break = rng.random(len(classes))
    order = np.lexsort((tie_break, -remainder))  # largest remainder first
    take[order[: n - int(take.sum())]] += 1
    picked = [rng.choice(np.flatnonzero(y == c), size=k, replace=False)
              for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


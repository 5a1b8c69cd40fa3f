"""The course's one seed scheme: every seed is derived from a run's seed here.

A run has one seed (``profile.seed``, or the one a student passes). Everything random
in it (the images of each split, each epoch's shuffling, each layer's initial
weights) gets its own seed, derived from that one and from *keys* that name the use,
with NumPy's :class:`numpy.random.SeedSequence`: ``SeedSequence([seed, *keys])``
hashes its input, so neighbouring seeds and neighbouring keys give unrelated
streams, and the same ``(seed, *keys)`` always gives the same numbers.

- :func:`make_rng`: a NumPy ``Generator`` for ``(seed, *keys)``;
  ``make_rng(seed)`` is ``numpy.random.default_rng(seed)``;
- :func:`derive_seed` / :func:`derive_seeds`: integer seeds for ``(seed, *keys)``
  (for ``tf.data``, Keras or a function that takes a seed);
- :func:`layer_seed`: the seed of the ``index``-th random layer of a Keras model
  built from ``seed``.

The keys in use, so a new use picks its own::

    fingers.make_fingers    (seed, 0) the hands; (seed, 1, first image) the pixel noise
    fingers.load_fingers    (seed, 42) the seeds of the train, validation, test images
    datasets.epoch_seed     (seed, epoch) shuffling and augmentation of one epoch
    instructor.pretrain     (seed, 4000, 0) lesson 04's source images, (seed, 4000, 1) their
                            validation images (``course pretrain``)
    transfer.compare_cuts   (seed, 4001) the labelled images each seed draws from the pool

:func:`layer_seed` is ``seed * 1000 + index`` (and consecutive seeds,
``spacing=1``, for the layers of the augmentation, whose seed is already one
epoch's): Keras hashes a layer's seed itself, and a seeded model keeps the
initial weights it had before this module existed.

Examples
--------
>>> int(make_rng(7).integers(100)) == int(make_rng(7).integers(100))
True
>>> derive_seed(0, 42) == derive_seeds(0, 42, count=3)[0]
True
>>> layer_seed(2, 1)
2001
"""

from __future__ import annotations

from typing import Final

import numpy as np

from course_utils.runtime.checks import check_scalar

__all__ = ["LAYER_SPACING", "derive_seed", "derive_seeds", "layer_seed", "make_rng"]

#: Seeds of the layers of one model: ``seed * LAYER_SPACING + index`` (see :func:`layer_seed`).
LAYER_SPACING: Final = 1000


def _entropy(seed: int, keys: tuple[int, ...]) -> list[int]:
    """``[seed, *keys]`` checked: whole numbers >= 0 (what ``SeedSequence`` takes)."""
    return [check_scalar(seed, "seed", int, min_val=0),
            *(check_scalar(key, "key", int, min_val=0) for key in keys)]


def make_rng(seed: int, *keys: int) -> np.random.Generator:
    """A NumPy random generator for ``(seed, *keys)``: ``default_rng(SeedSequence([seed, *keys]))``.

    Without keys it is ``numpy.random.default_rng(seed)``, number for number.

    Raises ``ValueError`` for a seed or key that is not a whole number >= 0.

    Examples
    --------
    >>> bool(make_rng(3).random() == np.random.default_rng(3).random())
    True
    >>> bool(make_rng(3, 1).random() == make_rng(3, 2).random())
    False
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(_entropy(seed, keys))))


def derive_seeds(seed: int, *keys: int, count: int, bits: int = 32) -> tuple[int, ...]:
    """``count`` independent integer seeds for ``(seed, *keys)``, each below ``2**bits``.

    The first ``count`` 32-bit words of ``SeedSequence([seed, *keys])``, shifted right
    to keep ``bits`` of them (``bits=30`` leaves room to add small offsets and stay
    below ``2**31``, what TensorFlow's int32 seeds hold).

    Examples
    --------
    >>> seeds = derive_seeds(0, 42, count=3)
    >>> len(set(seeds)), all(0 <= s < 2**32 for s in seeds)
    (3, True)
    >>> derive_seeds(0, 42, count=2, bits=30) == tuple(s >> 2 for s in seeds[:2])
    True
    """
    count = check_scalar(count, "count", int, min_val=1)
    bits = check_scalar(bits, "bits", int, min_val=1, max_val=32)
    words = np.random.SeedSequence(_entropy(seed, keys)).generate_state(count)
    return tuple(int(word) >> (32 - bits) for word in words)


def derive_seed(seed: int, *keys: int, bits: int = 32) -> int:
    """One integer seed for ``(seed, *keys)``: the first of :func:`derive_seeds`.

    Examples
    --------
    >>> derive_seed(42, 3) == derive_seed(42, 3) != derive_seed(42, 4)
    True
    >>> derive_seed(42, 3, bits=30) < 2**30
    True
    """
    return derive_seeds(seed, *keys, count=1, bits=bits)[0]


def layer_seed(seed: int | None, index: int, *, spacing: int = LAYER_SPACING) -> int | None:
    """The seed of the ``index``-th random layer of a model built from ``seed``.

    ``seed * spacing + index``: models built from different seeds share no layer seed
    as long as they have fewer than ``spacing`` random layers. ``None`` stays
    ``None`` (fresh random weights).

    Examples
    --------
    >>> [layer_seed(1, i) for i in (1, 2, 3)]
    [1001, 1002, 1003]
    >>> layer_seed(5, 2, spacing=1), layer_seed(None, 1)
    (7, None)
    """
    if seed is None:
        return None
    return int(seed) * spacing + int(index)

"""The one seed scheme: every seed derived from a run's seed with NumPy's SeedSequence."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import datasets
from course_utils.runtime import seeds


def test_make_rng_without_keys_is_numpys_default_rng():
    np.testing.assert_array_equal(seeds.make_rng(11).random(5), np.random.default_rng(11).random(5))
    assert seeds.make_rng(11, 1).random() != seeds.make_rng(11, 2).random()


def test_derived_seeds_keep_the_numbers_of_earlier_runs():
    """Pinned values: changing the scheme would change every seeded lesson's data."""
    assert seeds.derive_seeds(0, 42, count=3) == tuple(
        int(w) for w in np.random.SeedSequence([0, 42]).generate_state(3))
    assert [datasets.epoch_seed(0, e) for e in range(3)] == [742202927, 991231249, 785279135]
    assert seeds.derive_seed(0, 0, bits=30) == datasets.epoch_seed(0, 0)
    assert all(0 <= s < 2**30 for s in seeds.derive_seeds(5, 1, count=100, bits=30))


def test_layer_seeds_are_distinct_across_models_and_layers():
    assert [seeds.layer_seed(2, i) for i in (1, 2)] == [2001, 2002]
    assert seeds.layer_seed(None, 1) is None
    assert seeds.layer_seed(7, 3, spacing=1) == 10


@pytest.mark.parametrize("args", [(-1,), (1.5,), (True,), (0, -2)])
def test_seeds_and_keys_are_whole_numbers_at_least_zero(args):
    with pytest.raises(ValueError, match=r"^(seed|key): expected a whole number"):
        seeds.make_rng(*args)

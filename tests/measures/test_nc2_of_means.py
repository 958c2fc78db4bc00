"""NC2 on the host from class means: closed forms and a float64 SVD reference."""

import numpy as np

from keras_grok.measures import collapse


def test_orthogonal_equal_norm_means_give_nc2_one():
    means = 3.0 * np.eye(5, 8)
    assert abs(collapse.nc2_of_means(means) - 1.0) < 1e-12


def test_nc2_is_the_ratio_of_extreme_norms_of_orthogonal_means():
    means = np.diag([1.0, 10.0, 1e4]) @ np.eye(3, 6)
    np.testing.assert_allclose(collapse.nc2_of_means(means), 1e4, rtol=1e-9)


def test_nc2_matches_the_singular_values_of_random_means():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(97, 256)) * np.geomspace(1, 1e3, 256)
    singular = np.linalg.svd(means, compute_uv=False)
    np.testing.assert_allclose(
        collapse.nc2_of_means(means), singular[0] / singular[-1], rtol=1e-9
    )


def test_rank_deficient_means_give_inf_and_non_finite_give_nan():
    assert collapse.nc2_of_means(np.zeros((3, 4))) == float("inf")
    means = np.eye(3, 4)
    means[0, 0] = np.nan
    assert np.isnan(collapse.nc2_of_means(means))

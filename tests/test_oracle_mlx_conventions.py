"""The MLX conventions of the oracle (``oracle/conventions.py``) against closed forms.

``mlx-triplet-eps-in-sum``: ``d(a, b) = (sum |a_i - b_i|^p + eps)^(1/p)``, the distance
``mlx.nn.losses.triplet_loss`` documents. Framework-free (no MLX needed).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from mpmath import mpf

from oracle.conventions import convention_for
from oracle.core import working_precision

TERMS = convention_for("mlx-triplet-eps-in-sum").terms


def _value(*arrays, **kwargs):
    return TERMS(*(np.asarray(a, dtype=np.float64) for a in arrays), reduction="none", **kwargs).value[0]


def test_p2_identical_positive_is_sqrt_eps_apart() -> None:
    with working_precision(200):
        eps = mpf(1e-6)
        exact = 2 + mpmath.sqrt(eps) - mpmath.sqrt(4 + eps)
        got = _value([[1.0, 2.0]], [[1.0, 2.0]], [[3.0, 2.0]], margin=2.0)
        assert abs(got - exact) < mpf(2) ** -180


@pytest.mark.parametrize("p", [1.0, 3.0])
def test_other_p_uses_absolute_differences(p) -> None:
    """``|.|``: a signed sum (optax's) would give 1 + (1 + 0.5) - 2.5 = 0 only by accident here;
    with |d|^p the negative differences count positively."""
    with working_precision(200):
        eps = mpf(1e-6)
        d_ap = mpmath.power(mpmath.power(1, p) + mpmath.power(mpf(0.5), p) + eps, 1 / mpf(p))
        d_an = mpmath.power(mpmath.power(mpf(2.5), p) + eps, 1 / mpf(p))
        exact = max(mpf(0), 1 + d_ap - d_an)
        got = _value([[0.0, 0.0]], [[-1.0, 0.5]], [[-2.5, 0.0]], p=p)
        assert abs(got - exact) < mpf(2) ** -180


def test_swap_is_not_mlx_s() -> None:
    with pytest.raises(ValueError, match="swap"):
        _value([[0.0]], [[1.0]], [[2.0]], swap=True)

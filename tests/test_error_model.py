"""The error model admits the standard algorithms it claims to (suites/verdict.py).

A tolerance that a textbook-stable algorithm can exceed would flag correct
frameworks; these tests run such algorithms in float32 NumPy on their worst inputs
and check their error against the oracle's bound.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from oracle.core import to_mpf
from suites.cases import Case
from suites.checks import evaluate_oracle

U32 = 2.0**-24


def _pairwise_sum(values: list[np.float32]) -> np.float32:
    if len(values) == 1:
        return values[0]
    half = len(values) // 2
    return np.float32(_pairwise_sum(values[:half]) + _pairwise_sum(values[half:]))


def _sequential_sum(values: list[np.float32]) -> np.float32:
    total = np.float32(0)
    for v in values:
        total = np.float32(total + v)
    return total


def _softmax32(x: np.ndarray, summation) -> np.ndarray:
    """exp(x - max) rounded to float32, the row sum by ``summation``, then a division."""
    m = np.float32(x.max())
    e = [np.float32(math.exp(float(np.float32(v - m)))) for v in x]
    s = summation(e)
    return np.array([np.float32(v / s) for v in e], dtype=np.float32)


def _worst_normalized_error(x: np.ndarray, observed: np.ndarray) -> float:
    evaluation = evaluate_oracle(Case("softmax", {"input": x}, {"dim": 0}, "float32"))
    errors = [abs(to_mpf(float(o)) - e) / b for o, e, b in zip(observed, evaluation.exact, evaluation.bound)]
    return float(max(errors))


def _one_large(n: int) -> np.ndarray:
    """One large logit and ``n`` zeros: every addend of the row sum is the same small
    value, so each addition to the partial sum (near 1) rounds the same way."""
    return np.array([6.8515625] + [0.0] * n, dtype=np.float32)


@pytest.mark.parametrize("n", [3, 7, 12, 31, 63])
def test_softmax_with_a_pairwise_row_sum_is_within_the_bound(n):
    x = _one_large(n)
    assert _worst_normalized_error(x, _softmax32(x, _pairwise_sum)) <= 1.0


def test_pytorchs_short_row_with_a_sequential_sum_is_within_the_bound():
    # torch 2.13 CPU float32: softmax([0, 0, 0, 6.8515625] + [0] * 9) (its vectorized
    # kernel sums a row shorter than a vector sequentially) = 0.987466037273407 at the
    # large logit: 9.19 ULP, 1.12x the bound before the row sum's summation error was
    # part of it. A sequential float32 sum in this order gives the very same float.
    x = np.array([0, 0, 0, 6.8515625] + [0] * 9, dtype=np.float32)
    observed = _softmax32(x, _sequential_sum)
    assert float(observed[3]) == 0.987466037273407
    assert _worst_normalized_error(x, observed) <= 1.0

r"""Embedding losses, exactly: ``cosine_embedding_loss``, ``triplet_margin_loss`` and
``triplet_margin_with_distance_loss`` (their ``torch.nn`` docs' formulas).

Vectors are the last dimension: inputs are ``(D)`` (one pair/triplet, a 0-d
output) or ``(N, D)``; ``mean`` divides the sum of the ``N`` terms by ``N``.

**Cosine.** ``cos(a, b) = a . b / (||a|| ||b||)`` as the ``CosineEmbeddingLoss``
docs write it. The docs leave a zero vector undefined (0/0); PyTorch's value
there is 0 (its kernel adds ``EPSILON = 1e-12`` to each squared norm, so
``0 / sqrt(1e-12 * |b|^2 + ...) = 0``), and the oracle takes that value as the
tie-breaker. PyTorch adds that epsilon for *every* input, which changes the
result by about ``1e-12 / ||a||^2`` relative: that undocumented difference is
evaluated exactly by :func:`torch_cosine_embedding_loss_terms` (the
``torch-cosine-embedding-epsilon`` convention) rather than hidden in the spec.

**Distances.** ``pairwise_distance(a, b, p, eps) = ||a - b + eps||_p``: the eps is
added to every component of the difference (``torch.nn.PairwiseDistance`` docs,
and ``TripletMarginLoss``'s ``eps``), so identical vectors are ``eps D^{1/p}``
apart. ``triplet_margin_with_distance_loss`` takes a ``distance_function``
callable; a case names it by one of :data:`DISTANCE_FUNCTIONS` (the adapters
map the same names to their framework's code):

* ``None`` / ``"pairwise_distance"``: ``pairwise_distance(a, b)`` (p = 2, eps = 1e-6), the default;
* ``"l1"``: ``pairwise_distance(a, b, p=1)``;
* ``"cosine"``: ``1 - cosine_similarity(a, b)`` with the docs' eps = 1e-8:
  ``a . b / (max(||a||, eps) max(||b||, eps))`` (the example in the docs of
  ``TripletMarginWithDistanceLoss``).

**Kinks.** ``max(0, z)`` is differentiated as PyTorch's ``clamp_min`` backward does
(active at ``z = 0``), ``swap``'s ``min(d(a, n), d(p, n))`` as ``torch.minimum``'s
(half the gradient to each side at a tie), and a norm at a zero difference has
gradient 0 (PyTorch's norm backward masks it).

Error model: a term's error is bounded by the errors of the quantities the hinge
adds (``max(0, .)`` is 1-Lipschitz): ``condition`` holds ``|margin| + d_ap + d_an``
and, per distance, ``sum_i |dd/ddiff_i| (|a_i| + |b_i| + eps)`` (the roundings of
each difference); ``scale`` holds the summations' error, ``(ceil(log2 D) + 2) d``
per distance (the sum of ``D`` powers, then the root).
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
from mpmath import mpf

from .core import mp_array, to_mpf
from .margin import _hinge, _mean_denominator, _plus_minus_one, _scaled, _sum_error_factor
from .reduction import LossTerms, check_reduction, exact_sum, resolve_reduction

__all__ = [
    "DISTANCE_FUNCTIONS",
    "cosine_embedding_loss",
    "cosine_embedding_loss_grad",
    "cosine_embedding_loss_terms",
    "paddle_cosine_embedding_loss_terms",
    "pairwise_distance",
    "torch_cosine_embedding_loss_grad",
    "torch_cosine_embedding_loss_terms",
    "triplet_margin_loss",
    "triplet_margin_loss_grad",
    "triplet_margin_loss_terms",
    "triplet_margin_with_distance_loss",
    "triplet_margin_with_distance_loss_grad",
    "triplet_margin_with_distance_loss_terms",
]

#: aten/src/ATen/native/Loss.cpp, cosine_embedding_loss: ``EPSILON = 1e-12`` held as a float32
#: (9.999999960041972e-13), also in float64 computations. Measured, not assumed: for
#: input1=[[0.125]], input2=[[0.00038323946585021827]], y=1 (float64) torch returns
#: 3.4043281410545134e-06; 1 - cos with this epsilon is 3.40432814112e-06, with the double
#: 1e-12 it would be 3.40432815472e-06 (2e5 times further off than the error model allows).
TORCH_COSINE_EMBEDDING_EPSILON = float(np.float32(1e-12))
#: python/paddle/nn/functional/loss.py, cosine_embedding_loss: ``+ 10e-12`` on each squared norm,
#: a Python float added to the tensor, so rounded to the inputs' dtype (float32(1e-11) in float32).
PADDLE_COSINE_EMBEDDING_EPSILON = 10e-12
COSINE_SIMILARITY_EPS = 1e-8  # torch.nn.functional.cosine_similarity's default eps
PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance's default eps


def _vectors(name: str, a) -> tuple[np.ndarray, bool]:
    x = mp_array(a)
    if x.ndim == 1:
        return x.reshape(1, -1), False
    if x.ndim == 2:
        return x, True
    raise ValueError(f"{name} must be (D) or (N, D), got shape {x.shape}")


def _same(*named) -> None:
    (first, a), rest = named[0], named[1:]
    for name, b in rest:
        if np.shape(a) != np.shape(b):
            raise ValueError(f"{name} must have the shape of {first}: {first} {np.shape(a)}, {name} {np.shape(b)}")


def _terms(terms, cond, scale, batched: bool, reduction: str, n: int) -> LossTerms:
    shape = (n,) if batched else ()
    return LossTerms(terms.reshape(shape), cond.reshape(shape), scale.reshape(shape), reduction, _mean_denominator(reduction, n))


# ------------------------------------------------------------------ cosine_embedding_loss


def _cosine_parts(a: np.ndarray, b: np.ndarray, epsilon: mpf) -> tuple[mpf, mpf]:
    """``(cos, sum_i |a_i b_i| / sqrt(n_a n_b))`` with ``n = ||.||^2 + epsilon``; ``cos = 0``
    where a norm is zero and ``epsilon = 0`` (PyTorch's value, module docstring)."""
    dot = mpmath.fsum(x * y for x, y in zip(a, b))
    na = mpmath.fsum(x * x for x in a) + epsilon
    nb = mpmath.fsum(y * y for y in b) + epsilon
    if na == 0 or nb == 0:
        return mpf(0), mpf(0)
    root = mpmath.sqrt(na * nb)
    return dot / root, mpmath.fsum(abs(x * y) for x, y in zip(a, b)) / root


def _one_minus_cosine(a: np.ndarray, b: np.ndarray, epsilon: mpf, cos: mpf) -> mpf:
    r"""``1 - cos(a, b)`` without cancellation. For ``a . b > 0`` it is
    ``(n_a n_b - (a . b)^2) / (r (r + a . b))``, ``r = sqrt(n_a n_b)``, whose numerator is formed
    in exact rationals (0 exactly where the vectors are parallel and ``epsilon = 0``): at the
    working precision ``1 - cos`` of nearly parallel vectors rounds ``cos`` to 1 and gives 0
    at every precision of the Ziv loop, a wrong "decided" 0 (``a = [0, 1]``, ``b = [1.28e-103,
    1]``: exact 8.15e-207). Otherwise ``1 - cos`` has no cancellation (``cos <= 0``)."""
    square_a = sum((_fraction(x) ** 2 for x in a), Fraction(0)) + _fraction(epsilon)
    square_b = sum((_fraction(y) ** 2 for y in b), Fraction(0)) + _fraction(epsilon)
    dot = sum((_fraction(x) * _fraction(y) for x, y in zip(a, b)), Fraction(0))
    if dot <= 0 or not square_a or not square_b:
        return mpmath.fsub(1, cos, exact=True)  # exact: keeps a tiny cos
    numerator = square_a * square_b - dot * dot
    if not numerator:
        return mpf(0)
    root = mpmath.sqrt(_mpf_of(square_a) * _mpf_of(square_b))
    return _mpf_of(numerator) / (root * (root + _mpf_of(dot)))


def _mpf_of(q: Fraction) -> mpf:
    """An exact rational at the working precision (one rounding)."""
    return mpmath.fdiv(q.numerator, q.denominator)


def _cosine_embedding_terms(input1, input2, target, margin, size_average, reduce, reduction, epsilon: mpf) -> LossTerms:
    reduction = resolve_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    _same(("input1", input1), ("input2", input2))
    a, batched = _vectors("input1", input1)
    b, _ = _vectors("input2", input2)
    n, d = a.shape
    y = _plus_minus_one(target, "cosine_embedding_loss").reshape(-1)
    if y.size != n:
        raise ValueError(f"target must have one label per pair ({n}), got shape {np.shape(target)}")
    m = to_mpf(float(margin))
    terms, cond, scale = (np.empty(n, dtype=object) for _ in range(3))
    for r in range(n):
        cos, spread = _cosine_parts(a[r], b[r], epsilon)
        if y[r] == 1:
            terms[r], offset = _one_minus_cosine(a[r], b[r], epsilon, cos), mpf(1)
        else:
            terms[r], offset = _hinge(mpmath.fsub(cos, m, exact=True)), abs(m)
        # d cos / d a_i = b_i / root - cos a_i / n_a: sum_i |a_i ...| <= spread + |cos|, for a and for b.
        cond[r] = 2 * (spread + abs(cos)) + offset + abs(cos)
        scale[r] = (_sum_error_factor(d) + 2) * (spread + abs(cos))
    return _terms(terms, cond, scale, batched, reduction, n)


def cosine_embedding_loss_terms(
    input1, input2, target, margin: float = 0, size_average=None, reduce=None, reduction: str = "mean"
) -> LossTerms:
    r"""``t_n = 1 - cos(a_n, b_n)`` if ``y_n = 1``, ``max(0, cos(a_n, b_n) - margin)`` if ``y_n = -1``

    (``torch.nn.CosineEmbeddingLoss``), ``y`` in {1, -1}; a zero vector has ``cos = 0``.
    """
    return _cosine_embedding_terms(input1, input2, target, margin, size_average, reduce, reduction, mpf(0))


def torch_cosine_embedding_loss_terms(
    input1, input2, target, margin: float = 0, size_average=None, reduce=None, reduction: str = "mean"
) -> LossTerms:
    r"""PyTorch's implementation: ``cos = a . b / sqrt((||a||^2 + 1e-12)(||b||^2 + 1e-12))``.

    ``EPSILON = 1e-12`` (held as a float32: :data:`TORCH_COSINE_EMBEDDING_EPSILON`, exactly) in ``cosine_embedding_loss``,
    aten/src/ATen/native/Loss.cpp; undocumented (the docs' formula has none).
    """
    return _cosine_embedding_terms(
        input1, input2, target, margin, size_average, reduce, reduction, to_mpf(TORCH_COSINE_EMBEDDING_EPSILON)
    )


def paddle_cosine_embedding_loss_terms(
    input1, input2, target, margin: float = 0, size_average=None, reduce=None, reduction: str = "mean"
) -> LossTerms:
    r"""Paddle's implementation: ``cos = a . b / sqrt((||a||^2 + e)(||b||^2 + e))`` with
    ``e = 10e-12`` (the double 1e-11) rounded to the inputs' dtype, as Paddle adds the Python
    float to the tensor (python/paddle/nn/functional/loss.py; undocumented).
    """
    dtype = np.asarray(input1).dtype
    epsilon = float(np.asarray(PADDLE_COSINE_EMBEDDING_EPSILON, dtype=dtype)) if dtype.kind == "f" else PADDLE_COSINE_EMBEDDING_EPSILON
    return _cosine_embedding_terms(input1, input2, target, margin, size_average, reduce, reduction, to_mpf(epsilon))


def cosine_embedding_loss(input1, input2, target, margin: float = 0, size_average=None, reduce=None, reduction: str = "mean"):
    """Exact ``torch.nn.functional.cosine_embedding_loss`` (docs' formula, module docstring)."""
    return cosine_embedding_loss_terms(input1, input2, target, margin, size_average, reduce, reduction).value


def _cosine_grad_a(a: np.ndarray, b: np.ndarray, epsilon: mpf = mpf(0)) -> np.ndarray:
    """``d cos / d a = b / sqrt(n_a n_b) - cos a / n_a`` with ``n = ||.||^2 + epsilon``; 0 at a
    zero vector when ``epsilon = 0`` (cos is 0 there)."""
    na = mpmath.fsum(x * x for x in a) + epsilon
    nb = mpmath.fsum(y * y for y in b) + epsilon
    if na == 0 or nb == 0:
        return np.full(a.shape, mpf(0), dtype=object)
    root = mpmath.sqrt(na * nb)
    # b / root - cos a / n_a = (b n_a - (a.b) a) / (n_a root), the numerator in exact rationals:
    # it cancels to exactly 0 where a component's two parts are equal (b parallel to a on the
    # components that matter, e.g. a = [0, .125, -.375], b = [.875, .125, -.375] at index 1),
    # which a rounded difference never shows (the correct rounding of 0 would never be decided).
    square = sum((_fraction(x) ** 2 for x in a), Fraction(0)) + _fraction(epsilon)
    exact_dot = sum((_fraction(x) * _fraction(y) for x, y in zip(a, b)), Fraction(0))
    denominator = na * root
    out = []
    for x, y in zip(a, b):
        numerator = _fraction(y) * square - exact_dot * _fraction(x)
        out.append(mpf(numerator.numerator) / numerator.denominator / denominator if numerator else mpf(0))
    return np.array(out, dtype=object)


def cosine_embedding_loss_grad(
    input1, input2, target, margin: float = 0, size_average=None, reduce=None, reduction: str = "mean",
    *, wrt: str = "input1",
) -> np.ndarray:
    """Gradient w.r.t. ``input1`` (or ``input2``): ``-dcos`` for ``y = 1``; ``dcos`` for
    ``y = -1`` where ``cos - margin >= 0`` (``clamp_min``: active at the kink), else 0."""
    return _cosine_embedding_grad(input1, input2, target, margin, size_average, reduce, reduction, wrt, mpf(0))


def torch_cosine_embedding_loss_grad(
    input1, input2, target, margin: float = 0, size_average=None, reduce=None, reduction: str = "mean",
    *, wrt: str = "input1",
) -> np.ndarray:
    r"""The exact gradient of PyTorch's formula (:func:`torch_cosine_embedding_loss_terms`,
    ``n = ||.||^2 + EPSILON`` in the cosine): ``d cos / d a = b / sqrt(n_a n_b) - cos a / n_a``,
    signs and hinge as :func:`cosine_embedding_loss_grad` (the hinge's kink at the epsilon
    cosine). Finite at a zero vector: ``b / sqrt(EPSILON n_b)``."""
    return _cosine_embedding_grad(
        input1, input2, target, margin, size_average, reduce, reduction, wrt, to_mpf(TORCH_COSINE_EMBEDDING_EPSILON)
    )


def _paddle_cosine_epsilon(input1) -> mpf:
    """Paddle's ``1e-11`` rounded to the inputs' dtype (:func:`paddle_cosine_embedding_loss_terms`)."""
    dtype = np.asarray(input1).dtype
    epsilon = float(np.asarray(PADDLE_COSINE_EMBEDDING_EPSILON, dtype=dtype)) if dtype.kind == "f" else PADDLE_COSINE_EMBEDDING_EPSILON
    return to_mpf(epsilon)


def paddle_cosine_embedding_loss_grad(
    input1, input2, target, margin: float = 0, size_average=None, reduce=None, reduction: str = "mean",
    *, wrt: str = "input1",
) -> np.ndarray:
    r"""The exact gradient of Paddle's formula (:func:`paddle_cosine_embedding_loss_terms`,
    ``n = ||.||^2 + e`` with ``e = 1e-11`` in the inputs' dtype): as
    :func:`torch_cosine_embedding_loss_grad` with Paddle's epsilon."""
    return _cosine_embedding_grad(
        input1, input2, target, margin, size_average, reduce, reduction, wrt, _paddle_cosine_epsilon(input1)
    )


def _cosine_embedding_grad(input1, input2, target, margin, size_average, reduce, reduction, wrt: str, epsilon: mpf) -> np.ndarray:
    lt = _cosine_embedding_terms(input1, input2, target, margin, size_average, reduce, reduction, epsilon)
    a, _ = _vectors("input1", input1)
    b, _ = _vectors("input2", input2)
    if wrt not in ("input1", "input2"):
        raise ValueError(f"cosine_embedding_loss: no gradient w.r.t. {wrt!r}; the oracle differentiates input1, input2")
    if wrt == "input2":
        a, b = b, a
    y = mp_array(target).reshape(-1)
    m = to_mpf(float(margin))
    grad = np.empty(a.shape, dtype=object)
    for r in range(a.shape[0]):
        g = _cosine_grad_a(a[r], b[r], epsilon)
        cos, _ = _cosine_parts(a[r], b[r], epsilon)
        factor = mpf(-1) if y[r] == 1 else (mpf(1) if cos - m >= 0 else mpf(0))
        grad[r] = [factor * v for v in g]
    return _scaled(grad, lt).reshape(np.shape(input1))


# ------------------------------------------------------------------ distances


def pairwise_distance(a: np.ndarray, b: np.ndarray, p: float = 2, eps: float = PAIRWISE_EPS) -> tuple[mpf, mpf]:
    """``(||a - b + eps||_p, its condition)`` for two mpf vectors (module docstring).

    ``p = inf`` is the largest ``|diff_i|``; ``p`` must be positive.
    """
    e = to_mpf(float(eps))
    diff = _exact_differences(a, b, e)
    size = [abs(x) + abs(y) + abs(e) for x, y in zip(a, b)]
    if mpmath.isinf(p):
        d = max((abs(v) for v in diff), default=mpf(0))
        return d, max(size, default=mpf(0))
    q = to_mpf(p)
    d = _p_norm(diff, q)
    if d == 0:
        return d, mpmath.fsum(size)
    cond = mpmath.fsum((abs(v) / d) ** (q - 1) * s for v, s in zip(diff, size))
    return d, cond


def _exact_differences(a: np.ndarray, b: np.ndarray, e: mpf) -> list[mpf]:
    """``a_i - b_i + eps`` without rounding (floats: exact sums of dyadic rationals)."""
    return [mpmath.fadd(mpmath.fsub(x, y, exact=True), e, exact=True) for x, y in zip(a, b)]


def _p_norm(diff: list[mpf], q: mpf, plus: mpf = mpf(0)) -> mpf:
    """``(sum_i |v_i|^q + plus)^(1/q)`` (``plus``: MLX's eps, added to the sum of powers).
    For an integer ``q`` the powers and their sum are exact and the root is mpmath's
    correctly rounded ``root``, so a norm that is exactly representable (one nonzero
    component, a Pythagorean triple) comes out exact and an exact rounding midpoint of
    the loss is seen as one (Ziv's loop cannot decide a tie from two inexact evaluations:
    ``(|5.1015625|^3)^(1/3)`` is not 5.1015625 when ``1/3`` is rounded)."""
    if q == int(q) and q >= 1:
        k = int(q)
        powers = []
        for v in diff:
            power, base = mpf(1), (v if v >= 0 else mpmath.fneg(v, exact=True))  # abs() would round
            for _ in range(k):
                power = mpmath.fmul(power, base, exact=True)
            powers.append(power)
        total = exact_sum(powers + [plus])
        if k == 1:
            return total
        # At the precision of the exact sum (+64 bits), not the working one: a representable
        # root longer than the working precision (|a - p| = 2.4479053301574307 + 4.7e-61, one
        # component) must come out exact too, or a loss exactly at a midpoint looks below it.
        bits = int(total._mpf_[3]) if mpmath.isfinite(total) and total != 0 else 0
        with mpmath.workprec(max(mpmath.mp.prec, bits + 64)):
            return mpmath.root(total, k)
    return (mpmath.fsum(abs(v) ** q for v in diff) + plus) ** (1 / q)


def _pairwise_grad_a(a: np.ndarray, b: np.ndarray, p: float, eps: float) -> np.ndarray:
    """``d ||a - b + eps||_p / d a_i = sign(v_i) |v_i|^{p-1} / d^{p-1}``; 0 where ``d = 0``."""
    e = to_mpf(float(eps))
    diff = _exact_differences(a, b, e)
    q = to_mpf(p)
    d = _p_norm(diff, q)
    if d == 0:
        return np.full(len(diff), mpf(0), dtype=object)
    return np.array([mpmath.sign(v) * (abs(v) / d) ** (q - 1) for v in diff], dtype=object)


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> tuple[mpf, mpf]:
    e = to_mpf(COSINE_SIMILARITY_EPS)
    na = mpmath.sqrt(mpmath.fsum(x * x for x in a))
    nb = mpmath.sqrt(mpmath.fsum(y * y for y in b))
    denom = max(na, e) * max(nb, e)
    cos = mpmath.fsum(x * y for x, y in zip(a, b)) / denom
    spread = mpmath.fsum(abs(x * y) for x, y in zip(a, b)) / denom
    return mpmath.fsub(1, cos, exact=True), 2 * (spread + abs(cos)) + 1 + (_sum_error_factor(len(a)) + 2) * (spread + abs(cos))


#: Named distance functions a case may pass as ``distance_function`` (module docstring).
DISTANCE_FUNCTIONS = ("pairwise_distance", "l1", "cosine")


def _distance(name: str | None):
    if name is None or name == "pairwise_distance":
        return lambda a, b: pairwise_distance(a, b, 2, PAIRWISE_EPS)
    if name == "l1":
        return lambda a, b: pairwise_distance(a, b, 1, PAIRWISE_EPS)
    if name == "cosine":
        return _cosine_distance
    raise ValueError(f"unknown distance_function {name!r}: lossconf names {', '.join(DISTANCE_FUNCTIONS)} (or None)")


# ------------------------------------------------------------------ triplet losses


def _triplet_terms(anchor, positive, negative, margin, swap, reduction, distance) -> LossTerms:
    check_reduction(reduction)
    _same(("anchor", anchor), ("positive", positive), ("negative", negative))
    m = to_mpf(float(margin))
    if not m > 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    a, batched = _vectors("anchor", anchor)
    p, _ = _vectors("positive", positive)
    ng, _ = _vectors("negative", negative)
    n = a.shape[0]
    terms, cond, scale = (np.empty(n, dtype=object) for _ in range(3))
    for r in range(n):
        d_ap, c_ap = distance(a[r], p[r])
        d_an, c_an = distance(a[r], ng[r])
        if swap:
            d_pn, c_pn = distance(p[r], ng[r])
            if d_pn < d_an:
                d_an, c_an = d_pn, c_pn
        # Exact: a distance like 1 + 2.6e-286 (cosine of a tiny vector) keeps its tail.
        terms[r] = _hinge(mpmath.fsub(mpmath.fadd(m, d_ap, exact=True), d_an, exact=True))
        cond[r] = c_ap + c_an + abs(m) + d_ap + d_an
        scale[r] = (_sum_error_factor(a.shape[1]) + 2) * (d_ap + d_an)
    return _terms(terms, cond, scale, batched, reduction, n)


def triplet_margin_loss_terms(
    anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-06, swap: bool = False,
    size_average=None, reduce=None, reduction: str = "mean",
) -> LossTerms:
    r"""``t_n = max(0, margin + d(a_n, p_n) - d(a_n, n_n))``, ``d = pairwise_distance(., ., p, eps)``

    (``torch.nn.TripletMarginLoss``); with ``swap``, ``d(a, n)`` is replaced by
    ``min(d(a, n), d(p, n))`` (the distance swap of Balntas et al.). ``margin`` must
    be positive (PyTorch raises otherwise); ``p > 0``.
    """
    reduction = resolve_reduction(size_average, reduce, reduction)
    if not float(p) > 0:
        raise ValueError(f"p must be positive, got {p}")
    return _triplet_terms(
        anchor, positive, negative, margin, swap, reduction, lambda x, y: pairwise_distance(x, y, p, eps)
    )


def triplet_margin_loss(
    anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-06, swap: bool = False,
    size_average=None, reduce=None, reduction: str = "mean",
):
    """Exact ``torch.nn.functional.triplet_margin_loss`` (see :func:`triplet_margin_loss_terms`)."""
    return triplet_margin_loss_terms(anchor, positive, negative, margin, p, eps, swap, size_average, reduce, reduction).value


def triplet_margin_with_distance_loss_terms(
    anchor, positive, negative, *, distance_function: str | None = None, margin: float = 1.0, swap: bool = False,
    reduction: str = "mean",
) -> LossTerms:
    r"""``t_n = max(0, margin + d(a_n, p_n) - d(a_n, n_n))`` with a named ``d`` (module docstring)."""
    return _triplet_terms(
        anchor, positive, negative, margin, swap, reduction, _distance(distance_function)
    )


def triplet_margin_with_distance_loss(
    anchor, positive, negative, *, distance_function: str | None = None, margin: float = 1.0, swap: bool = False,
    reduction: str = "mean",
):
    """Exact ``torch.nn.functional.triplet_margin_with_distance_loss`` for a named distance."""
    return triplet_margin_with_distance_loss_terms(
        anchor, positive, negative, distance_function=distance_function, margin=margin, swap=swap, reduction=reduction
    ).value


#: The parameters a triplet loss is differentiated by.
TRIPLET_PARAMETERS = ("anchor", "positive", "negative")


def _triplet_shares(d_an: mpf, d_pn: mpf | None) -> tuple[mpf, mpf]:
    """How the negative distance ``min(d(a,n), d(p,n))`` splits its gradient between ``d(a,n)``
    and ``d(p,n)``: all to the smaller, half each at a tie (``torch.minimum``'s backward);
    without ``swap`` (``d_pn`` None) all to ``d(a,n)``."""
    if d_pn is None:
        return mpf(1), mpf(0)
    if d_an < d_pn:
        return mpf(1), mpf(0)
    if d_an == d_pn:
        return mpf(1) / 2, mpf(1) / 2
    return mpf(0), mpf(1)


def _triplet_terms_of(wrt: str, share_an: mpf, share_pn: mpf) -> list[tuple[mpf, str, bool]]:
    """``g_wrt = sum coefficient * dd(pair)/d(wrt)``: (coefficient, pair, wrt is the pair's
    second argument) from ``t = margin + d(a,p) - share_an d(a,n) - share_pn d(p,n)``."""
    if wrt == "anchor":
        return [(mpf(1), "ap", False), (-share_an, "an", False)]
    if wrt == "positive":
        return [(mpf(1), "ap", True), (-share_pn, "pn", False)]
    if wrt == "negative":
        return [(-share_an, "an", True), (-share_pn, "pn", True)]
    raise ValueError(f"no gradient w.r.t. {wrt!r}: a triplet loss is differentiated by {', '.join(TRIPLET_PARAMETERS)}")


def _triplet_grad(anchor, positive, negative, margin, swap, lt: LossTerms, distance, grad_first, grad_second, wrt: str) -> np.ndarray:
    """Gradient w.r.t. ``wrt`` (:func:`_triplet_terms_of`) where the hinge is active (``>= 0``);
    with ``swap`` the negative distance's gradient goes to the smaller of ``d(a,n)``,
    ``d(p,n)``, half to each at a tie. ``grad_first(x, y)``/``grad_second(x, y)``: ``d(x, y)``'s
    gradient w.r.t. ``x``/``y``."""
    _triplet_terms_of(wrt, mpf(1), mpf(0))  # an unknown wrt raises before any work
    a, _ = _vectors("anchor", anchor)
    p, _ = _vectors("positive", positive)
    ng, _ = _vectors("negative", negative)
    m = to_mpf(float(margin))
    grad = np.empty(a.shape, dtype=object)
    for r in range(a.shape[0]):
        pairs = {"ap": (a[r], p[r]), "an": (a[r], ng[r]), "pn": (p[r], ng[r])}
        d_ap, _ = distance(a[r], p[r])
        d_an, _ = distance(a[r], ng[r])
        d_pn = distance(p[r], ng[r])[0] if swap else None
        share_an, share_pn = _triplet_shares(d_an, d_pn)
        d_neg = min(d_an, d_pn) if swap else d_an
        total = np.full(a.shape[1], mpf(0), dtype=object)
        if m + d_ap - d_neg >= 0:
            for coefficient, pair, second in _triplet_terms_of(wrt, share_an, share_pn):
                if coefficient:
                    total = total + coefficient * (grad_second if second else grad_first)(*pairs[pair])
        grad[r] = total
    return _scaled(grad, lt).reshape(np.shape(anchor))


def triplet_margin_loss_grad(
    anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-06, swap: bool = False,
    size_average=None, reduce=None, reduction: str = "mean", *, wrt: str = "anchor",
) -> np.ndarray:
    """Gradient of the output's sum w.r.t. ``wrt`` (``anchor``, ``positive`` or ``negative``;
    module docstring for the kinks). ``d(x, y) = ||x - y + eps||_p``: ``dd/dy = -dd/dx``."""
    lt = triplet_margin_loss_terms(anchor, positive, negative, margin, p, eps, swap, size_average, reduce, reduction)
    return _triplet_grad(
        anchor, positive, negative, margin, swap, lt,
        lambda x, y: pairwise_distance(x, y, p, eps), lambda x, y: _pairwise_grad_a(x, y, p, eps),
        lambda x, y: -_pairwise_grad_a(x, y, p, eps), wrt,
    )


def _cosine_distance_grad_a(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    e = to_mpf(COSINE_SIMILARITY_EPS)
    na = mpmath.sqrt(mpmath.fsum(x * x for x in a))
    nb = mpmath.sqrt(mpmath.fsum(y * y for y in b))
    dot = mpmath.fsum(x * y for x, y in zip(a, b))
    fa, fb = max(na, e), max(nb, e)
    # d/da of -dot / (fa fb): the max is differentiated on its norm side when na > eps.
    if na > e:
        # y / (na fb) - dot x / (na^3 fb) = (y |a|^2 - dot x) / (na^3 fb), the numerator in exact
        # rationals: it cancels to exactly 0 where b is parallel to a (a = b, as a triplet
        # with swap meets), which the rounded difference of the two parts never shows.
        square = sum((_fraction(x) ** 2 for x in a), Fraction(0))
        exact_dot = sum((_fraction(x) * _fraction(y) for x, y in zip(a, b)), Fraction(0))
        denominator = na * na * na * fb
        out = []
        for x, y in zip(a, b):
            numerator = _fraction(y) * square - exact_dot * _fraction(x)
            out.append(-(mpf(numerator.numerator) / numerator.denominator) / denominator if numerator else mpf(0))
        return np.array(out, dtype=object)
    return np.array([-(y / (fa * fb)) for y in b], dtype=object)


def _fraction(x: mpf) -> Fraction:
    """An mpf (a float of the case) as an exact rational."""
    sign, man, exp, _ = mpf(x)._mpf_
    if not man:
        return Fraction(0)
    return (-1 if sign else 1) * Fraction(int(man)) * (Fraction(2) ** int(exp))


def triplet_margin_with_distance_loss_grad(
    anchor, positive, negative, *, distance_function: str | None = None, margin: float = 1.0, swap: bool = False,
    reduction: str = "mean", wrt: str = "anchor",
) -> np.ndarray:
    """Gradient of the output's sum w.r.t. ``wrt`` for a named distance (the cosine distance is
    symmetric: ``dd(x, y)/dy = dd(y, x)/dy``)."""
    lt = triplet_margin_with_distance_loss_terms(
        anchor, positive, negative, distance_function=distance_function, margin=margin, swap=swap, reduction=reduction
    )
    if distance_function == "cosine":
        grad_first = _cosine_distance_grad_a
        grad_second = lambda x, y: _cosine_distance_grad_a(y, x)  # noqa: E731
    else:
        order = 1 if distance_function == "l1" else 2
        grad_first = lambda x, y: _pairwise_grad_a(x, y, order, PAIRWISE_EPS)  # noqa: E731
        grad_second = lambda x, y: -_pairwise_grad_a(x, y, order, PAIRWISE_EPS)  # noqa: E731
    return _triplet_grad(
        anchor, positive, negative, margin, swap, lt, _distance(distance_function), grad_first, grad_second, wrt
    )



def optax_triplet_margin_loss_terms(
    anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-06, swap: bool = False,
    size_average=None, reduce=None, reduction: str = "mean",
) -> LossTerms:
    r"""``optax.losses.triplet_margin_loss``'s distance (its source), for ``p = 2``:

    .. math:: d(a, b) = \Big(\sum_i (a_i - b_i)^2 + \epsilon\Big)^{1/2}

    -- the eps is added to the sum of powers, not to each difference as in
    ``torch.nn.PairwiseDistance`` (optax/losses/_self_supervised.py; the docs say only
    "a small epsilon value to ensure numerical stability"). Only ``p = 2``
    (optax raises each difference to the power without ``abs``, so an odd ``p`` is
    another formula altogether); ``swap`` is not optax's (the adapter composes it).
    """
    if float(p) != 2 or swap:
        raise ValueError("the optax triplet convention covers p = 2 without swap only")
    e = to_mpf(float(eps))

    def distance(x: np.ndarray, y: np.ndarray) -> tuple[mpf, mpf]:
        diff = [u - v for u, v in zip(x, y)]
        d = mpmath.sqrt(mpmath.fsum(v * v for v in diff) + e)
        if d == 0:
            return d, mpmath.fsum(abs(u) + abs(v) for u, v in zip(x, y))
        return d, mpmath.fsum(abs(v) / d * (abs(u) + abs(w)) for v, u, w in zip(diff, x, y)) + abs(e) / d

    reduction = resolve_reduction(size_average, reduce, reduction)
    return _triplet_terms(anchor, positive, negative, margin, False, reduction, distance)


def _mlx_differences(x: np.ndarray, y: np.ndarray) -> list[mpf]:
    """``a_i - b_i`` without rounding (no eps: MLX adds it to the sum of powers)."""
    return [mpmath.fsub(u, v, exact=True) for u, v in zip(x, y)]


def mlx_distance(x: np.ndarray, y: np.ndarray, p: float, eps: float) -> tuple[mpf, mpf]:
    r"""``(d, its condition)`` for ``d(a, b) = (\sum_i |a_i - b_i|^p + \epsilon)^{1/p}``
    (``mlx.nn.losses.triplet_loss``'s distance). The condition is the forward model's:
    ``sum_i |dd/d(delta_i)| (|a_i| + |b_i|) + eps |dd/d eps|`` with
    ``|dd/d(delta_i)| = (|delta_i| / d)^(p-1)`` and ``dd/d eps = d^(1-p) / p``."""
    e, q = to_mpf(float(eps)), to_mpf(float(p))
    diff = _mlx_differences(x, y)
    d = _p_norm(diff, q, e)  # exact powers and sum for an integer p, then one rounded root
    if d == 0:
        return d, mpmath.fsum(abs(u) + abs(v) for u, v in zip(x, y))
    grads = [mpmath.power(abs(v) / d, q - 1) if v else mpf(0) for v in diff]
    return d, mpmath.fsum(g * (abs(u) + abs(w)) for g, u, w in zip(grads, x, y)) + abs(e) * mpmath.power(d, 1 - q) / q


def _mlx_distance_grad_a(x: np.ndarray, y: np.ndarray, p: float, eps: float) -> np.ndarray:
    r"""``dd/da_i = sign(delta_i) |delta_i|^{p-1} / d^{p-1}`` for :func:`mlx_distance`
    (``delta = a - b``); 0 where ``d = 0`` (``eps = 0``, ``a = b``: no direction; the spec's
    subgradient) and ``sign(0) = 0`` for ``p = 1`` (``mx.abs``'s derivative at 0)."""
    q = to_mpf(float(p))
    diff = _mlx_differences(x, y)
    d, _ = mlx_distance(x, y, p, eps)
    if d == 0:
        return np.full(len(diff), mpf(0), dtype=object)
    return np.array([mpmath.sign(v) * (abs(v) / d) ** (q - 1) if v else mpf(0) for v in diff], dtype=object)


def _check_mlx_triplet(p: float, swap: bool) -> None:
    if swap:
        raise ValueError("the MLX triplet convention has no swap")
    if not float(p) > 0:
        raise ValueError(f"p must be positive, got {p}")


def mlx_triplet_loss_terms(
    anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-06, swap: bool = False,
    size_average=None, reduce=None, reduction: str = "mean",
) -> LossTerms:
    r"""``mlx.nn.losses.triplet_loss``'s distance (its docs and source), for any ``p > 0``:

    .. math:: d(a, b) = \Big(\sum_i |a_i - b_i|^p + \epsilon\Big)^{1/p}

    -- "eps: small positive constant added to the p-norm sum before taking the 1 / p
    power" (MLX's docstring), where ``torch.nn.PairwiseDistance`` adds eps to each
    difference (``||a - b + eps||_p``). Unlike optax's (above) it takes ``abs``, so
    every ``p`` is a norm. No ``swap`` (MLX has none).
    """
    _check_mlx_triplet(p, swap)
    reduction = resolve_reduction(size_average, reduce, reduction)
    return _triplet_terms(anchor, positive, negative, margin, False, reduction, lambda x, y: mlx_distance(x, y, p, eps))


def mlx_triplet_loss_grad(
    anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-06, swap: bool = False,
    size_average=None, reduce=None, reduction: str = "mean", *, wrt: str = "anchor",
) -> np.ndarray:
    r"""Gradient of :func:`mlx_triplet_loss_terms`'s output sum w.r.t. ``wrt`` (``anchor``,
    ``positive``, ``negative``): the spec's hinge and reduction (:func:`_triplet_grad`) over
    MLX's distance, ``dd/da_i = sign(delta_i) (|delta_i| / d)^{p-1}`` (:func:`_mlx_distance_grad_a`)
    and ``dd/db = -dd/da``. With ``eps > 0`` it is smooth at ``a = b`` (0 there, where the spec's
    ``||a - b + eps||`` has the direction of ``eps``: +1 per component in one dimension)."""
    _check_mlx_triplet(p, swap)
    lt = mlx_triplet_loss_terms(anchor, positive, negative, margin, p, eps, swap, size_average, reduce, reduction)
    return _triplet_grad(
        anchor, positive, negative, margin, False, lt,
        lambda x, y: mlx_distance(x, y, p, eps), lambda x, y: _mlx_distance_grad_a(x, y, p, eps),
        lambda x, y: -_mlx_distance_grad_a(x, y, p, eps), wrt,
    )

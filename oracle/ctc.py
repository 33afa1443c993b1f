r"""``ctc_loss``, exactly: the Connectionist Temporal Classification loss.

``ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
zero_infinity=False)`` follows ``torch.nn.functional.ctc_loss`` / ``torch.nn.CTCLoss``.
``log_probs`` is ``(T, N, C)`` (or ``(T, C)`` unbatched) of log-probabilities ``x``;
sequence ``n`` uses its first ``T_n = input_lengths[n]`` frames and the target
``l = targets[n, :S_n]`` (padded ``(N, S)`` form) or the ``n``-th run of ``S_n`` labels
of a 1-d concatenated ``targets`` (``(sum S_n)`` form). With ``B`` the map that merges
repeated labels and then removes blanks,

.. math::
    \ell_n = -\log \sum_{\pi \in B^{-1}(l),\ |\pi| = T_n} \prod_{t < T_n} e^{x_{t, n, \pi_t}}

evaluated by the forward algorithm (Graves et al., 2006) over the extended label
``l' = (blank, l_1, blank, l_2, ..., l_S, blank)``:
``alpha_0(0) = y_0(blank)``, ``alpha_0(1) = y_0(l_1)``, and
``alpha_t(s) = y_t(l'_s) [alpha_{t-1}(s) + alpha_{t-1}(s-1) + alpha_{t-1}(s-2)]``, the last
term only when ``l'_s`` is not blank and differs from ``l'_{s-2}``; ``P = alpha_{T-1}(2S) +
alpha_{T-1}(2S - 1)``. Float implementations run this recursion in log space because
``y_t`` products underflow; mpmath's numbers have an unbounded exponent, so the oracle runs
it on ``y = e^x`` directly -- the same sums, with no log-sum-exp rounding at all -- and
takes ``-log P`` once. (Positive terms only: no cancellation; Ziv's loop in
``oracle.core`` decides the rounding. The one trap of probability space -- ``P = 1 +
delta`` with a tiny ``delta``, whose digits ``-log P`` needs -- is covered by working
``-(lowest set bit exponent of any log-probability)`` bits above the caller's precision.)

Exactness: where exactly one alignment has nonzero probability (a target as long as the
frames once repeats have their blanks, or classes masked by ``-inf``), ``P = e^{s}`` with ``s``
the sum of that path's log-probabilities, and the loss is ``-s``, a sum of floats, which can be
exactly halfway between two floats of the dtype. ``-log(exp(s))`` at any working precision
misses ``-s`` by a rounding error of either sign, so Ziv's loop could neither decide such a tie
nor see it (its two evaluations fall on either side: undecided; or on the same side: the
wrong neighbour). The oracle therefore finds the single path (a count of paths, capped at 2,
along the forward recursion) and returns ``-s`` summed exactly; its occupations are exactly 0
and 1. With two or more paths ``-log P`` is transcendental (Lindemann-Weierstrass: a sum of
two or more exponentials of rationals is not the exponential of a rational), never a tie.

Conventions: an impossible alignment (``P = 0``: a target longer than ``T_n`` once repeats
need a blank between them) gives ``+inf``, or 0 with ``zero_infinity``; an empty target
(``S_n = 0``) is the all-blank path, ``-sum_t x_{t, blank}``; ``T_n = 0`` with an empty
target gives 0. Reductions: ``none`` (``(N)``, or 0-d unbatched), ``sum``, and ``mean`` =
``(1/N) sum_n ell_n / max(S_n, 1)`` -- each loss over its own target length, clamped to 1
as PyTorch does, then the batch mean.

Rejected: ``blank`` outside ``[0, C)``; a target label equal to ``blank`` or outside
``[0, C)`` (the docs: "targets cannot be blank"); a negative length; an input length
above ``T``; a padded target length above ``S`` or concatenated lengths that do not add
up to the targets' size; lengths of the wrong count.

Error model: ``condition`` is ``sum_t sum_c |x_{t,c} dl/dx_{t,c}|`` (the posterior
occupation ``gamma_t(c)`` times ``|x|``); ``scale`` is ``sum_t max_c |x_{t,c}|`` over the
used frames -- the log-space algorithm adds one log-probability per frame along every
path, so its absolute error grows with that sum.
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mpf

from .core import format_of, mp_array
from .reduction import LossTerms, check_reduction, exact_sum

__all__ = ["ctc_loss", "ctc_loss_grad", "ctc_loss_of_logits_terms", "ctc_loss_terms", "warp_ctc_floored_softmax_terms"]


def _ints(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _sequences(log_probs, targets, input_lengths, target_lengths, blank: int):
    """``(x (T, N, C) exact, [(T_n, labels_n)], batched)`` after every check in the docstring."""
    x = np.asarray(log_probs)
    batched = x.ndim == 3
    if x.ndim not in (2, 3):
        raise ValueError(f"log_probs must be (T, N, C) or (T, C), got shape {x.shape}")
    if not batched:
        x = x[:, None, :]
    t_max, n, c = x.shape
    if not 0 <= blank < c:
        raise ValueError(f"blank={blank} must be a class index in [0, {c})")
    il = _ints(input_lengths, "input_lengths").reshape(-1)
    tl = _ints(target_lengths, "target_lengths").reshape(-1)
    if il.size != n or tl.size != n:
        raise ValueError(f"input_lengths and target_lengths need {n} entries, got {il.size} and {tl.size}")
    if (il < 0).any() or (tl < 0).any():
        raise ValueError("input_lengths and target_lengths must be non-negative")
    if (il > t_max).any():
        raise ValueError(f"input_lengths must each be <= T = {t_max}, got {il.max()}")
    tg = _ints(targets, "targets")
    labels = []
    if tg.ndim == 2 and batched:
        if tg.shape[0] != n:
            raise ValueError(f"padded targets need {n} rows, got shape {tg.shape}")
        if (tl > tg.shape[1]).any():
            raise ValueError(f"target_lengths must each be <= S = {tg.shape[1]} (the padded targets' width)")
        labels = [tg[i, : tl[i]] for i in range(n)]
    elif tg.ndim == 1:
        if not batched:
            if tl[0] > tg.size:
                raise ValueError(f"target_length {tl[0]} exceeds the {tg.size} targets given")
            labels = [tg[: tl[0]]]
        else:
            if tl.sum() != tg.size:
                raise ValueError(f"concatenated targets hold {tg.size} labels, target_lengths sum to {tl.sum()}")
            ends = np.cumsum(tl)
            labels = [tg[e - k: e] for e, k in zip(ends, tl)]
    else:
        raise ValueError(f"targets must be (N, S) padded or 1-d concatenated, got shape {tg.shape}")
    for seq in labels:
        if ((seq < 0) | (seq >= c)).any() or (seq == blank).any():
            raise ValueError(f"target labels must be classes in [0, {c}) other than blank={blank}, got {seq.tolist()}")
    return mp_array(x), list(zip(il.tolist(), labels)), batched


def _guard_bits(xi: np.ndarray, steps: int) -> int:
    """Extra bits for one sequence: ``P`` can be ``1 + delta`` with ``delta`` as small as the
    lowest set bit of a log-probability (a path's sum of floats is a multiple of it), and
    ``-log P = -log1p(delta)`` needs ``delta``'s own digits: keep ``-min lsb exponent`` bits
    more than the caller's precision (binary64 subnormals: at most 1138)."""
    lowest = 0
    for v in xi[:steps].reshape(-1):
        if mpmath.isfinite(v) and v != 0:
            lowest = min(lowest, int(v._mpf_[2]))
    return 64 - lowest


def _forward_backward(y: np.ndarray, steps: int, label: np.ndarray, blank: int):
    """``(P, alpha, beta)`` over the extended label; ``y`` is ``(T, C)`` of ``e^x``."""
    ext = [blank]
    for v in label.tolist():
        ext += [v, blank]
    m = len(ext)
    if steps == 0:
        return (mpf(1) if len(label) == 0 else mpf(0)), None, None, ext
    zero = mpf(0)
    alpha = [[zero] * m for _ in range(steps)]
    alpha[0][0] = y[0, blank]
    if m > 1:
        alpha[0][1] = y[0, ext[1]]
    for t in range(1, steps):
        prev = alpha[t - 1]
        for s in range(m):
            total = prev[s] + (prev[s - 1] if s >= 1 else zero)
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                total += prev[s - 2]
            alpha[t][s] = total * y[t, ext[s]] if total else zero
    beta = [[zero] * m for _ in range(steps)]
    beta[steps - 1][m - 1] = y[steps - 1, ext[m - 1]]
    if m > 1:
        beta[steps - 1][m - 2] = y[steps - 1, ext[m - 2]]
    for t in range(steps - 2, -1, -1):
        nxt = beta[t + 1]
        for s in range(m):
            total = nxt[s] + (nxt[s + 1] if s + 1 < m else zero)
            if s + 2 < m and ext[s] != blank and ext[s] != ext[s + 2]:
                total += nxt[s + 2]
            beta[t][s] = total * y[t, ext[s]] if total else zero
    p = alpha[steps - 1][m - 1] + (alpha[steps - 1][m - 2] if m > 1 else zero)
    return p, alpha, beta, ext


def _single_path(y: np.ndarray, steps: int, ext: list[int], blank: int) -> list[int] | None:
    """The classes of the one alignment with nonzero probability, frame by frame, or None
    when there are none or several (module docstring: exactness).

    The forward recursion over path *counts* (capped at 2) instead of probabilities, with a
    back-pointer per state that one path reaches."""
    m = len(ext)
    if steps == 0:
        return None
    count = [[0] * m for _ in range(steps)]
    back = [[-1] * m for _ in range(steps)]
    count[0][0] = 1 if y[0, ext[0]] else 0
    if m > 1:
        count[0][1] = 1 if y[0, ext[1]] else 0
    for t in range(1, steps):
        for s in range(m):
            if not y[t, ext[s]]:
                continue
            sources = [s, s - 1] + ([s - 2] if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] else [])
            live = [q for q in sources if q >= 0 and count[t - 1][q]]
            count[t][s] = min(2, sum(count[t - 1][q] for q in live))
            if count[t][s] == 1:
                back[t][s] = live[0]
    finals = [s for s in (m - 1, m - 2) if s >= 0 and count[steps - 1][s]]
    if sum(count[steps - 1][s] for s in finals) != 1:
        return None
    s, path = finals[0], []
    for t in range(steps - 1, -1, -1):
        path.append(ext[s])
        s = back[t][s]
    return path[::-1]


def _occupation(p, alpha, beta, ext, y, steps: int, n_classes: int, path: list[int] | None = None) -> np.ndarray:
    """``gamma_t(c) = P^-1 sum_{s: l'_s = c} alpha_t(s) beta_t(s) / y_t(c)``: ``-dl/dx_{t,c}``;
    exactly 1 on the frames' classes of a single ``path`` and 0 elsewhere."""
    gamma = np.full((steps, n_classes), mpf(0), dtype=object)
    if path is not None:
        for t, c in enumerate(path):
            gamma[t, c] = mpf(1)
        return gamma
    for t in range(steps):
        for s, c in enumerate(ext):
            if alpha[t][s] and beta[t][s]:
                gamma[t, c] += alpha[t][s] * beta[t][s] / y[t, c]
    return gamma / p


def ctc_loss_terms(
    log_probs, targets, input_lengths, target_lengths, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False,
) -> LossTerms:
    """The per-sequence decomposition of :func:`ctc_loss` (module docstring).

    For ``mean`` the terms are ``ell_n / max(S_n, 1)`` and the denominator ``N``.
    """
    check_reduction(reduction)
    x, sequences, batched = _sequences(log_probs, targets, input_lengths, target_lengths, int(blank))
    n = len(sequences)
    terms = np.empty(n, dtype=object)
    cond = np.empty(n, dtype=object)
    scale = np.empty(n, dtype=object)
    for i, (steps, label) in enumerate(sequences):
        xi = x[:, i, :]
        with mpmath.workprec(mpmath.mp.prec + _guard_bits(xi, steps)):
            y = np.vectorize(mpmath.exp, otypes=[object])(xi) if xi.size else xi
            p, alpha, beta, ext = _forward_backward(y, steps, label, int(blank))
            path = _single_path(y, steps, ext, int(blank)) if p != 0 else None
            if path is not None:
                # one alignment: the loss is minus the exact sum of its log-probabilities
                loss = -exact_sum([xi[t, c] for t, c in enumerate(path)])
            else:
                loss = -mpmath.log(p) if p != 0 else None
            gamma = _occupation(p, alpha, beta, ext, y, steps, xi.shape[1], path) if steps and p != 0 else np.zeros((0, 0), dtype=object)
        used = [abs(v) for row in xi[:steps] for v in row if mpmath.isfinite(v)]
        frame_max = [max((abs(v) for v in row if mpmath.isfinite(v)), default=mpf(0)) for row in xi[:steps]]
        scale[i] = mpmath.fsum(frame_max) if used else mpf(0)
        if loss is None:
            terms[i] = mpf(0) if zero_infinity else mpmath.inf
            cond[i], scale[i] = mpf(0), mpf(0)
            continue
        terms[i] = loss
        cond[i] = mpmath.fsum(abs(gamma[t, c] * xi[t, c]) for t in range(steps) for c in range(xi.shape[1])
                              if gamma[t, c] and mpmath.isfinite(xi[t, c]))
        if reduction == "mean":
            length = mpf(max(len(label), 1))
            terms[i], cond[i], scale[i] = terms[i] / length, cond[i] / length, scale[i] / length
    if not batched:
        terms, cond, scale = terms.reshape(()), cond.reshape(()), scale.reshape(())
    return LossTerms(
        terms=terms, condition=cond, scale=scale, reduction=reduction,
        denominator=mpf(n) if reduction == "mean" else None,
    )


def ctc_loss(
    log_probs, targets, input_lengths, target_lengths, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False,
):
    r"""Exact ``torch.nn.functional.ctc_loss`` (module docstring)."""
    return ctc_loss_terms(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity).value


def ctc_loss_grad(
    log_probs, targets, input_lengths, target_lengths, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False, wrt: str = "log_probs",
) -> np.ndarray:
    r"""Exact gradient of the output's sum w.r.t. ``log_probs`` taken as independent inputs:
    ``-gamma_t(c)`` (posterior occupation), scaled by ``1/(N max(S_n, 1))`` for ``mean``;
    0 beyond ``T_n`` and for an infinite loss zeroed by ``zero_infinity``.

    (PyTorch's backward instead returns ``e^x - gamma``: the gradient through a
    ``log_softmax`` it assumes produced ``log_probs``. That is a property of its
    implementation, not of the documented function of ``log_probs``.)
    """
    if wrt != "log_probs":
        raise ValueError(f"ctc_loss has no differentiable parameter {wrt!r}: only log_probs")
    check_reduction(reduction)
    x, sequences, batched = _sequences(log_probs, targets, input_lengths, target_lengths, int(blank))
    grad = np.full(x.shape, mpf(0), dtype=object)
    n = len(sequences)
    for i, (steps, label) in enumerate(sequences):
        xi = x[:, i, :]
        with mpmath.workprec(mpmath.mp.prec + _guard_bits(xi, steps)):
            y = np.vectorize(mpmath.exp, otypes=[object])(xi)
            p, alpha, beta, ext = _forward_backward(y, steps, label, int(blank))
            if p == 0:
                if not zero_infinity:
                    grad[:steps, i, :] = mpmath.nan
                continue
            if not steps:
                continue
            g = -_occupation(p, alpha, beta, ext, y, steps, xi.shape[1], _single_path(y, steps, ext, int(blank)))
        if reduction == "mean":
            g = g / (mpf(max(len(label), 1)) * n)
        grad[:steps, i, :] = g
    return grad if batched else grad[:, 0, :]


def _log_softmax_rows(log_probs, floor: mpf | None = None) -> np.ndarray:
    """``log_softmax`` over the class axis, exactly; with ``floor``, each value raised to at
    least ``floor`` (a probability floor ``e^floor``)."""
    x = mp_array(log_probs)
    normalized = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape[:-1]):
        row = x[idx]
        finite = [v for v in row if v != -mpmath.inf]
        top = max(finite) if finite else mpf(0)
        lse = top + mpmath.log(mpmath.fsum(mpmath.exp(v - top) for v in finite)) if finite else -mpmath.inf
        values = [v - lse for v in row]
        if floor is not None and finite:
            values = [max(v, floor) for v in values]
        normalized[idx] = np.array(values, dtype=object)
    return normalized


def ctc_loss_of_logits_terms(
    log_probs, targets, input_lengths, target_lengths, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False,
) -> LossTerms:
    r"""CTC of ``log_softmax(log_probs)`` over the class axis: the formula of
    ``tf.nn.ctc_loss`` and ``optax.losses.ctc_loss``, which take logits and normalize them
    (the spec takes ``log_probs`` as given). Used as the ``ctc-of-logits`` convention."""
    normalized = _log_softmax_rows(log_probs)
    return ctc_loss_terms(normalized, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)


def warp_ctc_floored_softmax_terms(
    log_probs, targets, input_lengths, target_lengths, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False,
) -> LossTerms:
    r"""CTC of ``log(max(softmax(x), tiny))``: warp-ctc's formula as PaddlePaddle ships it
    (``F.ctc_loss``), with ``tiny`` the smallest normal number of the input's dtype
    (``std::numeric_limits<ProbT>::min()``, FLT_MIN or DBL_MIN).

    .. math:: \ell_n = \mathrm{CTC}_n\big(\log \max(\mathrm{softmax}(x_t), \mathrm{tiny})\big)

    warp-ctc's CPU softmax (``CpuCTC::softmax``) normalizes each frame and then raises every
    probability below ``tiny`` to ``tiny`` before the forward-backward pass takes its log, so a
    class whose probability underflows costs ``-log(tiny)`` (87.3 in float32, 708.4 in
    float64) instead of its true, larger ``-log p``; the floored probabilities are not
    renormalized. Where no probability is below ``tiny`` this is ``ctc-of-logits``. Used as
    the ``warp-ctc-floored-softmax`` convention (Paddle's entry
    ``ctc-loss-floors-probabilities-at-smallest-normal``); confirmed on Paddle 3.3.1 to the
    last bit in float64 (``tests/test_adapter_paddle.py``)."""
    dtype = np.asarray(log_probs).dtype
    floor = mpmath.log(mpf(format_of(dtype).smallest_normal))
    normalized = _log_softmax_rows(log_probs, floor)
    return ctc_loss_terms(normalized, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)

"""The spec's functions as methods: ``torch.nn.functional``'s names, parameters, defaults.

Every built-in adapter (torch, tensorflow, jax) inherits these signatures from
:class:`SpecFunctions` and implements one hook, ``_forward(fn_name, arguments)``,
which receives every argument by parameter name. Framework-free (NumPy only), so
the signatures are written once; an adapter overrides a method only where its
body differs (a loss it cannot express raises ``NotImplementedError``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._spec import SPEC_FUNCTIONS as POSITIONAL

__all__ = ["SpecFunctions"]

#: (adapter class, method name) -> its signature: a memo of a pure function of the class.
_SIGNATURES: dict[tuple[type, str], inspect.Signature] = {}


class SpecFunctions:
    """The spec's functions; subclasses provide ``_forward(fn_name, arguments)``."""

    def _forward(self, fn_name: str, arguments: dict[str, object]) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement {fn_name}")

    def _bind(
        self, fn_name: str, args: Mapping[str, object], kwargs: Mapping[str, Any]
    ) -> dict[str, object]:
        """All of a call's arguments by parameter name (``args`` are positional, in order)."""
        if fn_name not in POSITIONAL:
            raise ValueError(
                f"{fn_name!r} is not a spec function; expected one of {', '.join(POSITIONAL)}"
            )
        bound = self._signature(fn_name).bind(*args.values(), **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def _signature(self, fn_name: str) -> inspect.Signature:
        """The signature of method ``fn_name`` (without ``self``), computed once per class:
        ``inspect.signature`` on every call and repro was ~3% of a gate run's CPU."""
        key = (type(self), fn_name)
        signature = _SIGNATURES.get(key)
        if signature is None:
            signature = _SIGNATURES[key] = inspect.signature(getattr(self, fn_name))
        return signature

    # -- the spec: torch.nn.functional's names, parameters and defaults ----------

    def cross_entropy(
        self,
        input: np.ndarray,
        target: np.ndarray,
        weight: np.ndarray | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> np.ndarray:
        """Cross entropy of logits against class indices or class probabilities."""
        return self._forward("cross_entropy", {
            "input": input, "target": target, "weight": weight,
            "size_average": size_average, "ignore_index": ignore_index, "reduce": reduce,
            "reduction": reduction, "label_smoothing": label_smoothing,
        })  # fmt: skip

    def nll_loss(
        self,
        input: np.ndarray,
        target: np.ndarray,
        weight: np.ndarray | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> np.ndarray:
        """Negative log-likelihood of log-probabilities at class indices."""
        return self._forward("nll_loss", {
            "input": input, "target": target, "weight": weight,
            "size_average": size_average, "ignore_index": ignore_index, "reduce": reduce,
            "reduction": reduction,
        })  # fmt: skip

    def binary_cross_entropy(
        self,
        input: np.ndarray,
        target: np.ndarray,
        weight: np.ndarray | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> np.ndarray:
        """Binary cross entropy of probabilities against targets in [0, 1]."""
        return self._forward("binary_cross_entropy", {
            "input": input, "target": target, "weight": weight,
            "size_average": size_average, "reduce": reduce, "reduction": reduction,
        })  # fmt: skip

    def binary_cross_entropy_with_logits(
        self,
        input: np.ndarray,
        target: np.ndarray,
        weight: np.ndarray | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        pos_weight: np.ndarray | None = None,
    ) -> np.ndarray:
        """Binary cross entropy of logits against targets in [0, 1]."""
        return self._forward("binary_cross_entropy_with_logits", {
            "input": input, "target": target, "weight": weight,
            "size_average": size_average, "reduce": reduce, "reduction": reduction,
            "pos_weight": pos_weight,
        })  # fmt: skip

    def kl_div(
        self,
        input: np.ndarray,
        target: np.ndarray,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        log_target: bool = False,
    ) -> np.ndarray:
        """Kullback-Leibler divergence of log-probabilities ``input`` from ``target``."""
        return self._forward("kl_div", {
            "input": input, "target": target, "size_average": size_average,
            "reduce": reduce, "reduction": reduction, "log_target": log_target,
        })  # fmt: skip

    def softmax(self, input: np.ndarray, dim: int) -> np.ndarray:
        """Softmax along ``dim``."""
        return self._forward("softmax", {"input": input, "dim": dim})

    def log_softmax(self, input: np.ndarray, dim: int) -> np.ndarray:
        """Log-softmax along ``dim``."""
        return self._forward("log_softmax", {"input": input, "dim": dim})

    def sigmoid(self, input: np.ndarray) -> np.ndarray:
        """The logistic function, elementwise."""
        return self._forward("sigmoid", {"input": input})

    # -- margin, ranking and embedding losses (issue 5) ----------------------------

    def margin_ranking_loss(
        self,
        input1: np.ndarray,
        input2: np.ndarray,
        target: np.ndarray,
        margin: float = 0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> np.ndarray:
        """``max(0, -y (x1 - x2) + margin)``."""
        return self._forward("margin_ranking_loss", {
            "input1": input1, "input2": input2, "target": target, "margin": margin,
            "size_average": size_average, "reduce": reduce, "reduction": reduction,
        })  # fmt: skip

    def hinge_embedding_loss(
        self,
        input: np.ndarray,
        target: np.ndarray,
        margin: float = 1.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> np.ndarray:
        """``x`` for ``y = 1``, ``max(0, margin - x)`` for ``y = -1``."""
        return self._forward("hinge_embedding_loss", {
            "input": input, "target": target, "margin": margin,
            "size_average": size_average, "reduce": reduce, "reduction": reduction,
        })  # fmt: skip

    def soft_margin_loss(
        self,
        input: np.ndarray,
        target: np.ndarray,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> np.ndarray:
        """``log(1 + exp(-y x))``."""
        return self._forward("soft_margin_loss", {
            "input": input, "target": target,
            "size_average": size_average, "reduce": reduce, "reduction": reduction,
        })  # fmt: skip

    def multilabel_soft_margin_loss(
        self,
        input: np.ndarray,
        target: np.ndarray,
        weight: np.ndarray | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> np.ndarray:
        """Per-sample mean over classes of weighted binary logistic losses."""
        return self._forward("multilabel_soft_margin_loss", {
            "input": input, "target": target, "weight": weight,
            "size_average": size_average, "reduce": reduce, "reduction": reduction,
        })  # fmt: skip

    def multi_margin_loss(
        self,
        input: np.ndarray,
        target: np.ndarray,
        p: int = 1,
        margin: float = 1.0,
        weight: np.ndarray | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> np.ndarray:
        """Multi-class hinge loss against class indices."""
        return self._forward("multi_margin_loss", {
            "input": input, "target": target, "p": p, "margin": margin, "weight": weight,
            "size_average": size_average, "reduce": reduce, "reduction": reduction,
        })  # fmt: skip

    def multilabel_margin_loss(
        self,
        input: np.ndarray,
        target: np.ndarray,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> np.ndarray:
        """Multi-label hinge loss; ``target`` lists classes up to a -1."""
        return self._forward("multilabel_margin_loss", {
            "input": input, "target": target,
            "size_average": size_average, "reduce": reduce, "reduction": reduction,
        })  # fmt: skip

    def cosine_embedding_loss(
        self,
        input1: np.ndarray,
        input2: np.ndarray,
        target: np.ndarray,
        margin: float = 0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> np.ndarray:
        """``1 - cos`` for ``y = 1``, ``max(0, cos - margin)`` for ``y = -1``."""
        return self._forward("cosine_embedding_loss", {
            "input1": input1, "input2": input2, "target": target, "margin": margin,
            "size_average": size_average, "reduce": reduce, "reduction": reduction,
        })  # fmt: skip

    def triplet_margin_loss(
        self,
        anchor: np.ndarray,
        positive: np.ndarray,
        negative: np.ndarray,
        margin: float = 1.0,
        p: float = 2,
        eps: float = 1e-06,
        swap: bool = False,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> np.ndarray:
        """``max(0, margin + d(a, p) - d(a, n))`` with ``pairwise_distance``."""
        return self._forward("triplet_margin_loss", {
            "anchor": anchor, "positive": positive, "negative": negative, "margin": margin,
            "p": p, "eps": eps, "swap": swap,
            "size_average": size_average, "reduce": reduce, "reduction": reduction,
        })  # fmt: skip

    def triplet_margin_with_distance_loss(
        self,
        anchor: np.ndarray,
        positive: np.ndarray,
        negative: np.ndarray,
        *,
        distance_function: str | None = None,
        margin: float = 1.0,
        swap: bool = False,
        reduction: str = "mean",
    ) -> np.ndarray:
        """Triplet loss with a distance named in the adapter's distance table (None: the default)."""
        return self._forward("triplet_margin_with_distance_loss", {
            "anchor": anchor, "positive": positive, "negative": negative,
            "distance_function": distance_function, "margin": margin, "swap": swap,
            "reduction": reduction,
        })  # fmt: skip

    # -- regression and distribution losses (issue 4) ---------------------------

    def l1_loss(
        self,
        input: np.ndarray,
        target: np.ndarray,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        weight: np.ndarray | None = None,
    ) -> np.ndarray:
        """Mean absolute error ``|input - target|``."""
        return self._forward("l1_loss", {
            "input": input, "target": target, "size_average": size_average,
            "reduce": reduce, "reduction": reduction, "weight": weight,
        })  # fmt: skip

    def mse_loss(
        self,
        input: np.ndarray,
        target: np.ndarray,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        weight: np.ndarray | None = None,
    ) -> np.ndarray:
        """Mean squared error ``(input - target)^2``."""
        return self._forward("mse_loss", {
            "input": input, "target": target, "size_average": size_average,
            "reduce": reduce, "reduction": reduction, "weight": weight,
        })  # fmt: skip

    def huber_loss(
        self,
        input: np.ndarray,
        target: np.ndarray,
        reduction: str = "mean",
        delta: float = 1.0,
        weight: np.ndarray | None = None,
    ) -> np.ndarray:
        """Huber loss with threshold ``delta``."""
        return self._forward("huber_loss", {
            "input": input, "target": target, "reduction": reduction, "delta": delta, "weight": weight,
        })  # fmt: skip

    def smooth_l1_loss(
        self,
        input: np.ndarray,
        target: np.ndarray,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        beta: float = 1.0,
    ) -> np.ndarray:
        """Smooth L1 loss with threshold ``beta`` (``beta = 0``: L1)."""
        return self._forward("smooth_l1_loss", {
            "input": input, "target": target, "size_average": size_average,
            "reduce": reduce, "reduction": reduction, "beta": beta,
        })  # fmt: skip

    def poisson_nll_loss(
        self,
        input: np.ndarray,
        target: np.ndarray,
        log_input: bool = True,
        full: bool = False,
        size_average: bool | None = None,
        eps: float = 1e-8,
        reduce: bool | None = None,
        reduction: str = "mean",
    ) -> np.ndarray:
        """Poisson negative log-likelihood of a (log-)rate ``input``."""
        return self._forward("poisson_nll_loss", {
            "input": input, "target": target, "log_input": log_input, "full": full,
            "size_average": size_average, "eps": eps, "reduce": reduce, "reduction": reduction,
        })  # fmt: skip

    def gaussian_nll_loss(
        self,
        input: np.ndarray,
        target: np.ndarray,
        var: np.ndarray | float,
        full: bool = False,
        eps: float = 1e-6,
        reduction: str = "mean",
    ) -> np.ndarray:
        """Gaussian negative log-likelihood with variance ``var`` (array or float)."""
        return self._forward("gaussian_nll_loss", {
            "input": input, "target": target, "var": var, "full": full, "eps": eps,
            "reduction": reduction,
        })  # fmt: skip

    def ctc_loss(
        self,
        log_probs: np.ndarray,
        targets: np.ndarray,
        input_lengths: np.ndarray,
        target_lengths: np.ndarray,
        blank: int = 0,
        reduction: str = "mean",
        zero_infinity: bool = False,
    ) -> np.ndarray:
        """Connectionist Temporal Classification loss of ``(T, N, C)`` log-probabilities."""
        return self._forward("ctc_loss", {
            "log_probs": log_probs, "targets": targets, "input_lengths": input_lengths,
            "target_lengths": target_lengths, "blank": blank, "reduction": reduction,
            "zero_infinity": zero_infinity,
        })  # fmt: skip

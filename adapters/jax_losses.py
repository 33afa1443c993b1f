"""The ``jax`` adapter: the spec's calls through ``optax.losses`` and ``jax.nn``, jitted.

Each spec function is the code a JAX user writes (``adapters/_jax_programs.py``
holds it as source text): the ``optax.losses`` function for the loss, or the
``jax.nn`` activation, and, where optax has no such option, the usual idiom
around it (optax returns per-example losses, so reductions are ``jnp.mean`` /
``jnp.sum``; ``ignore_index`` is a ``jnp.where`` mask; class weights scale the
labels). ``OPTION_TABLE`` says which is which. Every call runs under
``jax.jit``, on the chosen JAX device.

Choices where optax offers two APIs: class-probability targets go through
``optax.losses.safe_softmax_cross_entropy``, which follows the spec's 0 log 0 = 0
for a zero label on a ``-inf`` logit (plain ``softmax_cross_entropy`` returns NaN
there, google-deepmind/optax#896); class indices through
``softmax_cross_entropy_with_integer_labels``, and with label smoothing through
``softmax_cross_entropy`` of ``optax.smooth_labels(one_hot)``, whose smoothed labels
are never 0, so that a zero class weight on a ``-inf`` logit stays 0 * inf = NaN
as in the spec. ``adapters/expectations/jax.toml`` records where JAX still differs.

Dtypes. float16, bfloat16 and float32 run in JAX's default 32-bit mode, as a
JAX user runs them. float64 needs JAX's 64-bit mode; the adapter enables it
only around a float64 call, with the thread-local ``jax.enable_x64(True)``
context manager, never process-wide: a JAX program in the same process keeps
its own setting. ``jax.jit`` keys its cache on that mode, so a function traced
in one mode is never reused in the other. Arrays cross into JAX exactly (JAX's
bfloat16 *is* ``ml_dtypes.bfloat16``); class indices go in as int32, JAX's
default integer. Results come back as NumPy arrays in the dtype JAX returns
(0-d for reductions), unconverted: a JAX dtype change would be visible.

Legacy ``size_average``/``reduce``: optax has no equivalent, so anything but
None raises NotImplementedError (unsupported).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _jax_executables as executables
from . import _jax_programs as programs
from ._repro import is_bfloat16, is_floating, reshape_suffix, values_literal
from ._spec_methods import SpecFunctions
from .errors import AdapterError, AdapterUnavailableError

LEGACY_REDUCTION_PARAMETERS = ("size_average", "reduce")

_INT32 = np.iinfo(np.int32)

#: Compiled programs kept per adapter (values and gradients): each holds jax.jit's
#: executables (~2 MB apiece) for every shape it ran on; a forgotten program frees them.
_MAX_PROGRAMS = 128


#: Device names the adapter understands: JAX platforms, ``cuda`` meaning ``gpu``.
_PLATFORMS = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}


def resolve_device(device: str) -> jax.Device:
    """The JAX device ``device`` names: a platform (``cpu``, ``gpu``/``cuda``, ``tpu``),
    optionally with an index (``gpu:1``). AdapterUnavailableError (the suite skips)
    when this JAX has no such device; AdapterError for a name that is not a device."""
    name, _, index = str(device).partition(":")
    if name not in _PLATFORMS or (index and not index.isdigit()):
        raise AdapterError(
            f"adapter 'jax': {device!r} is not a JAX device; use cpu, gpu (or cuda) or tpu, "
            "optionally with an index such as gpu:1"
        )
    try:
        found = jax.devices(_PLATFORMS[name])
    except RuntimeError as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AdapterUnavailableError(f"adapter 'jax' cannot run on device {device!r}: {reason}") from None
    if int(index or 0) >= len(found):
        raise AdapterUnavailableError(
            f"adapter 'jax' cannot run on device {device!r}: JAX sees {len(found)} {name} device(s)"
        )
    return found[int(index or 0)]


def array_source(array: np.ndarray) -> str:
    """A JAX expression rebuilding ``array`` exactly (values, dtype, shape)."""
    array = np.asarray(array)
    values = values_literal(array)
    if is_bfloat16(array.dtype):
        # literals parse as float64; float32 holds every bfloat16 value exactly
        expr = f"jnp.array({values}, dtype=jnp.float32).astype(jnp.bfloat16)"
    elif array.dtype.kind in "iu":
        expr = f"jnp.array({values}, dtype=jnp.int32)"
    else:
        expr = f"jnp.array({values}, dtype=jnp.{array.dtype.name})"
    return expr + reshape_suffix(array.shape)


def _needs_x64(arrays: Mapping[str, np.ndarray]) -> bool:
    return any(a.dtype == np.float64 for a in arrays.values())


def _host_array(name: str, value: object) -> np.ndarray:
    """The NumPy array JAX receives: floats unchanged, class indices as int32."""
    array = np.asarray(value)
    if array.dtype.kind in "iu":
        if array.size and (array.min() < _INT32.min or array.max() > _INT32.max):
            raise ValueError(f"{name}: class indices beyond int32, JAX's default integer type")
        return array.astype(np.int32)
    if not is_floating(array.dtype):
        raise TypeError(f"{name}: expected a floating or integer array, got dtype {array.dtype}")
    return array


def _padded_targets(arguments: Mapping[str, object]) -> np.ndarray:
    """CTC targets as ``(N, S)`` (S >= 1): concatenated ones split by ``target_lengths`` and
    padded on the host, as a JAX user does before jitting (the padding is masked)."""
    targets = np.asarray(arguments["targets"])
    lengths = np.asarray(arguments["target_lengths"]).reshape(-1)
    if np.ndim(arguments["log_probs"]) == 3 and targets.ndim == 1:
        if lengths.sum() != targets.size or (lengths < 0).any():
            raise ValueError(f"concatenated targets hold {targets.size} labels, target_lengths sum to {lengths.sum()}")
        rows = np.split(targets, np.cumsum(lengths)[:-1])
        width = max(1, int(lengths.max(initial=0)))
        targets = np.array([np.pad(r, (0, width - r.size)) for r in rows], dtype=targets.dtype)
    targets = targets.reshape(lengths.size, -1)
    if targets.shape[1] == 0:
        targets = np.zeros((lengths.size, 1), dtype=targets.dtype)
    return targets


class JaxLosses(SpecFunctions):
    """The spec's functions, each a jitted JAX program built on optax / jax.nn."""

    name: ClassVar[str] = "jax"
    version: ClassVar[str] = f"{jax.__version__} (optax {optax.__version__})"

    def __init__(self, *, device: str = "cpu") -> None:
        self.device = resolve_device(device)
        self._compiled: dict[str, Callable[..., jax.Array]] = {}
        self._executables = executables.ExecutableCache(self.device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={str(self.device)!r})"

    # -- the spec's methods come from SpecFunctions (adapters/_spec_methods.py); these
    # -- override the losses optax has no form of ----------------------------------

    def l1_loss(self, input, target, size_average=None, reduce=None, reduction="mean", weight=None) -> np.ndarray:
        """Unsupported: optax has no absolute-error loss."""
        raise NotImplementedError("l1_loss: optax has no absolute-error (L1) loss")

    def smooth_l1_loss(self, input, target, size_average=None, reduce=None, reduction="mean", beta=1.0) -> np.ndarray:
        """``optax.losses.huber_loss(delta=beta) / beta``; ``beta = 0`` (L1) unsupported."""
        if beta == 0:
            raise NotImplementedError("smooth_l1_loss with beta=0 is L1: optax has no absolute-error loss")
        return self._forward("smooth_l1_loss", locals())

    def poisson_nll_loss(
        self, input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None, reduction="mean"
    ) -> np.ndarray:
        """Unsupported: optax has no Poisson NLL loss."""
        raise NotImplementedError("poisson_nll_loss: optax has no Poisson negative log-likelihood loss")

    def gaussian_nll_loss(self, input, target, var, full=False, eps=1e-6, reduction="mean") -> np.ndarray:
        """Unsupported: optax has no Gaussian NLL loss."""
        raise NotImplementedError("gaussian_nll_loss: optax has no Gaussian negative log-likelihood loss")

    # -- gradients and repro snippets --------------------------------------------

    def grad(
        self,
        fn_name: str,
        args: Mapping[str, object],
        kwargs: Mapping[str, Any],
        wrt: str = "input",
    ) -> np.ndarray:
        """Gradient of ``fn_name(*args, **kwargs).sum()`` w.r.t. ``wrt``, by ``jax.grad``.

        ``jax.jit(jax.grad(lambda *a: jnp.sum(loss_fn(*a)), argnums=...))`` of the same
        program as the value, as a JAX user jits a training step: one XLA compilation per
        shape. (``jax.grad`` of the jitted value outside ``jit`` compiled two -- the
        linearized and the transposed program -- and ran the sum eagerly: twice the
        compile time, measured in benchmarks/profile_run.py.) In the case's dtype, 64-bit
        mode scoped as for the value; returned in ``wrt``'s dtype.
        """
        program, arrays = self._plan(fn_name, self._bind(fn_name, args, kwargs))
        if wrt not in arrays:
            raise ValueError(f"{fn_name}: no array argument {wrt!r} to differentiate")
        if not is_floating(arrays[wrt].dtype):
            raise ValueError(f"{fn_name}: argument {wrt!r} is not a floating array")
        position = program.params.index(wrt)
        x64 = _needs_x64(arrays)
        with jax.enable_x64(x64):
            return np.array(self._run(
                f"{program.source()}# grad {position}\n", lambda: self._jitted_grad(program, position), arrays, x64
            ))

    def repro(self, fn_name: str, args: Mapping[str, object], kwargs: Mapping[str, Any]) -> str:
        """The JAX program that ran, with every array written exactly; prints the output.

        A float64 case starts by enabling JAX's 64-bit mode, which a script
        needs before it creates float64 arrays.
        """
        try:
            program, arrays = self._plan(fn_name, self._bind(fn_name, args, kwargs))
        except (NotImplementedError, ValueError, TypeError) as error:
            return f"# the jax adapter refuses this call before running JAX: {error}\n"
        lines = list(programs.IMPORTS)
        if _needs_x64(arrays):
            lines.append('jax.config.update("jax_enable_x64", True)  # float64 needs 64-bit mode')
        lines.append("")
        lines += [f"{name} = {array_source(array)}" for name, array in arrays.items()]
        lines += ["", program.source(decorator="@jax.jit").rstrip("\n"), ""]
        lines.append(f"out = loss_fn({', '.join(program.params)})")
        lines.append("print(out.dtype, out.tolist())")
        return "\n".join(lines) + "\n"

    # -- internals -------------------------------------------------------------------

    def _forward(self, fn_name: str, arguments: dict[str, object]) -> np.ndarray:
        arguments = {k: v for k, v in arguments.items() if k != "self"}
        program, arrays = self._plan(fn_name, arguments)
        x64 = _needs_x64(arrays)
        with jax.enable_x64(x64):
            result = self._run(program.source(), lambda: self._jitted(program), arrays, x64)
            # convert inside the scope: the array's dtype belongs to the mode it ran in
            return np.array(result)

    def _run(
        self, source: str, jitted: Callable[[], Callable[..., jax.Array]], arrays: Mapping[str, np.ndarray], x64: bool
    ) -> jax.Array:
        """``jitted()(*arrays)``, inside the caller's 64-bit mode scope. With an executable
        cache (``LOSSCONF_JAX_EXECUTABLES``, adapters/_jax_executables.py) the executable
        that call would compile is looked up by ``source`` (the function's text), the
        arguments' shapes and dtypes and the mode, and loaded without tracing; on a miss
        it is ``jitted().lower(*values).compile()`` -- what ``jax.jit`` runs -- and stored."""
        values = self._device_arrays(arrays)
        directory = executables.cache_directory()
        if directory is None:
            return jitted()(*values)
        key = executables.describe(source, values, x64=x64, device=self.device)
        executable = self._executables.get(key, lambda: jitted().lower(*values).compile(), directory, values)
        try:
            # block: dispatch is asynchronous, and a kernel the runtime cannot find otherwise
            # raises only when the caller converts the result, outside this handler
            return jax.block_until_ready(executable(*values))
        except jax.errors.JaxRuntimeError:
            # An executable that cannot run here (XLA:CPU "NOT_FOUND: Function
            # add_convert_fusion not found": a deserialized executable whose fused kernel the
            # runtime does not find) came from a cache: this one's disk entry, or JAX's
            # persistent cache (DIR/jax), which jitted().lower().compile() consults on a miss
            # here. Dropped (never stored), and the program compiled afresh with JAX's cache
            # off -- so the only error left is one the uncached run raises too.
            self._executables.discard(key, directory)
            fresh = executables.compile_uncached(lambda: jitted().lower(*values).compile())
            self._executables.remember(key, fresh)
            return fresh(*values)

    def _device_arrays(self, arrays: Mapping[str, np.ndarray]) -> list[jax.Array]:
        return [jax.device_put(array, self.device) for array in arrays.values()]

    def _jitted(self, program: programs.Program) -> Callable[..., jax.Array]:
        """``jax.jit`` of the program's source, compiled once per distinct text."""
        source = program.source()
        if source not in self._compiled:
            namespace: dict[str, Any] = {"jax": jax, "jnp": jnp, "optax": optax}
            exec(compile(source, "<lossconf jax program>", "exec"), namespace)
            self._remember(source, jax.jit(namespace["loss_fn"]))
        return self._compiled[source]

    def _jitted_grad(self, program: programs.Program, position: int) -> Callable[..., jax.Array]:
        """``jax.jit(jax.grad(sum of the program, argnums=position))``, once per program and position."""
        key = f"{program.source()}# grad {position}\n"
        if key not in self._compiled:
            function = self._jitted(program)

            def total(*values: jax.Array) -> jax.Array:
                return jnp.sum(function(*values))

            self._remember(key, jax.jit(jax.grad(total, argnums=position)))
        return self._compiled[key]

    def _remember(self, key: str, function: Callable[..., jax.Array]) -> None:
        if len(self._compiled) >= _MAX_PROGRAMS:
            # each distinct label_smoothing is its own program: forget the oldest
            del self._compiled[next(iter(self._compiled))]
        self._compiled[key] = function

    @staticmethod
    def _plan(
        fn_name: str, arguments: Mapping[str, object]
    ) -> tuple[programs.Program, dict[str, np.ndarray]]:
        """The JAX program for this call's static options, and its array arguments."""
        for legacy in LEGACY_REDUCTION_PARAMETERS:
            if arguments.get(legacy) is not None:
                raise NotImplementedError(
                    f"{legacy}={arguments[legacy]!r}: optax has no legacy size_average/reduce "
                    "arguments (use reduction)"
                )
        reduction = arguments.get("reduction")
        if fn_name in _MARGIN_PROGRAMS:
            program = _MARGIN_PROGRAMS[fn_name](arguments)
            arrays = {name: _host_array(name, arguments[name]) for name in program.params}
            return program, arrays
        ndim = np.ndim(arguments["input"] if "input" in arguments else arguments["log_probs"])
        if fn_name == "cross_entropy":
            target = np.asarray(arguments["target"])
            program = programs.cross_entropy(
                ndim=ndim,
                index_target=target.dtype.kind in "iu",
                weighted=arguments["weight"] is not None,
                ignore_index=int(arguments["ignore_index"]),  # type: ignore[call-overload]
                reduction=reduction,  # type: ignore[arg-type]
                label_smoothing=float(arguments["label_smoothing"]),  # type: ignore[arg-type]
            )
        elif fn_name == "nll_loss":
            program = programs.nll_loss(
                ndim=ndim,
                weighted=arguments["weight"] is not None,
                ignore_index=int(arguments["ignore_index"]),  # type: ignore[call-overload]
                reduction=reduction,  # type: ignore[arg-type]
            )
        elif fn_name == "binary_cross_entropy":
            program = programs.binary_cross_entropy(
                weighted=arguments["weight"] is not None, reduction=reduction  # type: ignore[arg-type]
            )
        elif fn_name == "binary_cross_entropy_with_logits":
            program = programs.binary_cross_entropy_with_logits(
                weighted=arguments["weight"] is not None,
                pos_weighted=arguments["pos_weight"] is not None,
                reduction=reduction,  # type: ignore[arg-type]
            )
        elif fn_name == "kl_div":
            program = programs.kl_div(
                input_shape=np.shape(arguments["input"]),
                reduction=reduction,  # type: ignore[arg-type]
                log_target=bool(arguments["log_target"]),
            )
        elif fn_name in ("softmax", "log_softmax"):
            program = programs.activation(fn_name, dim=int(arguments["dim"]))  # type: ignore[call-overload]
        elif fn_name == "sigmoid":
            program = programs.activation("sigmoid")
        elif fn_name == "mse_loss":
            program = programs.mse_loss(weighted=arguments["weight"] is not None, reduction=reduction)  # type: ignore[arg-type]
        elif fn_name == "huber_loss":
            program = programs.huber_loss(
                weighted=arguments["weight"] is not None, reduction=reduction,  # type: ignore[arg-type]
                delta=float(arguments["delta"]),  # type: ignore[arg-type]
            )
        elif fn_name == "ctc_loss":
            program = programs.ctc_loss(
                unbatched=ndim == 2, blank=int(arguments["blank"]),  # type: ignore[call-overload]
                reduction=reduction, zero_infinity=bool(arguments["zero_infinity"]),  # type: ignore[arg-type]
            )
            arguments = dict(arguments, targets=_padded_targets(arguments))
        elif fn_name == "smooth_l1_loss":
            if arguments["beta"] == 0:  # also for grad(), which plans without the method's check
                raise NotImplementedError("smooth_l1_loss with beta=0 is L1: optax has no absolute-error loss")
            program = programs.smooth_l1_loss(reduction=reduction, beta=float(arguments["beta"]))  # type: ignore[arg-type]
        elif fn_name in SPEC_OPTIONS:
            # a spec function whose method raises NotImplementedError (optax lacks it);
            # reached only through grad(), which plans without calling the method
            raise NotImplementedError(f"{fn_name}: optax has no such loss (unsupported)")
        else:
            raise ValueError(f"{fn_name!r} is not a spec function")
        arrays = {name: _host_array(name, arguments[name]) for name in program.params}
        return program, arrays


#: Margin, ranking and embedding losses (issue 5): each call's static options -> program.
_MARGIN_PROGRAMS: dict[str, Callable[[Mapping[str, Any]], programs.Program]] = {
    "margin_ranking_loss": lambda a: programs.margin_ranking_loss(margin=float(a["margin"]), reduction=a["reduction"]),
    "hinge_embedding_loss": lambda a: programs.hinge_embedding_loss(margin=float(a["margin"]), reduction=a["reduction"]),
    "soft_margin_loss": lambda a: programs.soft_margin_loss(reduction=a["reduction"]),
    "multilabel_soft_margin_loss": lambda a: programs.multilabel_soft_margin_loss(
        weighted=a["weight"] is not None, reduction=a["reduction"]
    ),
    "multi_margin_loss": lambda a: programs.multi_margin_loss(
        p=a["p"], margin=float(a["margin"]), weighted=a["weight"] is not None, reduction=a["reduction"]
    ),
    "multilabel_margin_loss": lambda a: programs.multilabel_margin_loss(reduction=a["reduction"]),
    "cosine_embedding_loss": lambda a: programs.cosine_embedding_loss(margin=float(a["margin"]), reduction=a["reduction"]),
    "triplet_margin_loss": lambda a: programs.triplet_margin_loss(
        margin=float(a["margin"]), p=float(a["p"]), eps=float(a["eps"]), swap=bool(a["swap"]), reduction=a["reduction"]
    ),
    "triplet_margin_with_distance_loss": lambda a: programs.triplet_margin_with_distance_loss(
        distance_function=a["distance_function"], margin=float(a["margin"]), swap=bool(a["swap"]), reduction=a["reduction"]
    ),
}
from .options import SPEC_OPTIONS  # noqa: E402  (the option names, for unsupported losses)

_OPTAX = "optax.losses."
_MEAN = ("composed", "jnp.mean(loss) of optax's per-example losses")
_SUM = ("composed", "jnp.sum(loss)")
_LEGACY = ("unsupported", "optax has no size_average/reduce: NotImplementedError")

#: How each spec option reaches JAX (docs/options.md; format in adapters/options.py).
OPTION_TABLE: dict[str, dict[str, tuple[str, str]]] = {
    "cross_entropy": {
        "(function)": ("native", _OPTAX + "softmax_cross_entropy_with_integer_labels / safe_softmax_cross_entropy"),
        "class-index target": ("native", _OPTAX + "softmax_cross_entropy_with_integer_labels(logits, labels)"),
        "probability target": ("native", _OPTAX + "safe_softmax_cross_entropy(logits, labels) (0 log 0 = 0)"),
        "(N, C, d1..dK) input": ("composed", "jnp.moveaxis(input, 1, -1): optax wants classes last"),
        "weight": ("composed", "weight[labels] * loss; with smoothing or probabilities, labels * weight"),
        "ignore_index": ("composed", "jnp.where(target != ignore_index, loss, 0), labels made safe the same way"),
        "label_smoothing": ("native", "optax.smooth_labels(jax.nn.one_hot(labels, C), alpha) + softmax_cross_entropy"),
        "reduction='none'": ("native", "optax returns per-example losses"),
        "reduction='mean'": ("composed", "jnp.mean(loss, where=keep); weighted: jnp.sum(loss) / jnp.sum(w_y); probabilities: jnp.mean(loss)"),
        "reduction='sum'": _SUM,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "nll_loss": {
        "(function)": ("composed", "-jnp.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]: optax has no NLL"),
        "class-index target": ("composed", "jnp.take_along_axis"),
        "(N, C, d1..dK) input": ("composed", "jnp.moveaxis(input, 1, -1)"),
        "weight": ("composed", "weight[labels] * loss"),
        "ignore_index": ("composed", "jnp.where(target != ignore_index, loss, 0)"),
        "reduction='none'": ("composed", "the masked per-example losses"),
        "reduction='mean'": ("composed", "jnp.mean(loss, where=keep); weighted: jnp.sum(loss) / jnp.sum(w_y)"),
        "reduction='sum'": _SUM,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "binary_cross_entropy": {
        "(function)": ("composed", "-(y * max(jnp.log(p), -100) + (1 - y) * max(jnp.log1p(-p), -100)): optax has no BCE on probabilities"),
        "weight": ("composed", "weight * loss"),
        "reduction='none'": ("composed", "the elementwise losses"),
        "reduction='mean'": ("composed", "jnp.mean(loss)"),
        "reduction='sum'": _SUM,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "binary_cross_entropy_with_logits": {
        "(function)": ("native", _OPTAX + "sigmoid_binary_cross_entropy(logits, labels)"),
        "weight": ("composed", "weight * loss"),
        "pos_weight": ("composed", "-(pos_weight * y * jax.nn.log_sigmoid(x) + (1 - y) * jax.nn.log_sigmoid(-x)): optax's formula, positive term scaled"),
        "reduction='none'": ("native", "optax returns elementwise losses"),
        "reduction='mean'": _MEAN,
        "reduction='sum'": _SUM,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "kl_div": {
        "(function)": ("native", _OPTAX + "kl_divergence(log_predictions, targets, axis=...)"),
        "log_target": ("native", _OPTAX + "kl_divergence_with_log_targets"),
        "reduction='none'": ("native", "axis=(): pointwise terms"),
        "reduction='mean'": ("composed", "jnp.mean of the pointwise terms (axis=())"),
        "reduction='sum'": ("native", "axis=None"),
        "reduction='batchmean'": ("composed", "kl_divergence(..., axis=None) / input.shape[0]"),
        "size_average/reduce (legacy)": _LEGACY,
    },
    "softmax": {"(function)": ("native", "jax.nn.softmax"), "dim": ("native", "axis=dim")},
    "log_softmax": {"(function)": ("native", "jax.nn.log_softmax"), "dim": ("native", "axis=dim")},
    "sigmoid": {"(function)": ("native", "jax.nn.sigmoid")},
    # regression and distribution losses (issue 4)
    "l1_loss": {o: ("unsupported", "optax has no absolute-error loss: NotImplementedError") for o in ("(function)", *SPEC_OPTIONS["l1_loss"])},
    "mse_loss": {
        "(function)": ("native", _OPTAX + "squared_error(predictions, targets) (not l2_loss, which is half of it)"),
        "weight": ("composed", "weight * loss; mean jnp.sum(loss) / jnp.sum(weight), as PyTorch"),
        "reduction='none'": ("native", "optax returns elementwise losses"),
        "reduction='mean'": _MEAN,
        "reduction='sum'": _SUM,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "huber_loss": {
        "(function)": ("native", _OPTAX + "huber_loss(predictions, targets, delta=delta)"),
        "delta": ("native", "delta=..."),
        "weight": ("composed", "weight * loss; mean over all elements, as PyTorch"),
        "reduction='none'": ("native", "optax returns elementwise losses"),
        "reduction='mean'": _MEAN,
        "reduction='sum'": _SUM,
    },
    "smooth_l1_loss": {
        "(function)": ("composed", _OPTAX + "huber_loss(predictions, targets, delta=beta) / beta"),
        "beta": ("composed", "huber_loss(delta=beta) / beta"),
        "beta=0": ("unsupported", "L1: optax has no absolute-error loss"),
        "reduction='none'": ("native", "optax returns elementwise losses"),
        "reduction='mean'": _MEAN,
        "reduction='sum'": _SUM,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "ctc_loss": {
        "(function)": ("native", _OPTAX + "ctc_loss(logits, logit_paddings, labels, label_paddings, blank_id=blank)"),
        "padded (N, S) targets": ("native", "labels with label_paddings = arange(S) >= target_lengths"),
        "concatenated targets": ("composed", "split by target_lengths and padded on the host"),
        "unbatched (T, C)": ("composed", "a batch axis of 1"),
        "blank": ("native", "blank_id=blank"),
        "zero_infinity": ("composed", "jnp.where(jnp.isinf(loss), 0, loss)"),
        "reduction='none'": ("native", "per-sequence losses"),
        "reduction='mean'": ("composed", "jnp.mean(loss / max(target_lengths, 1))"),
        "reduction='sum'": _SUM,
    },
    "poisson_nll_loss": {o: ("unsupported", "optax has no Poisson NLL loss: NotImplementedError") for o in ("(function)", *SPEC_OPTIONS["poisson_nll_loss"])},
    "gaussian_nll_loss": {o: ("unsupported", "optax has no Gaussian NLL loss: NotImplementedError") for o in ("(function)", *SPEC_OPTIONS["gaussian_nll_loss"])},
}


#: Margin, ranking and embedding losses (issue 5).
_REDUCTIONS_COMPOSED = {"reduction='none'": ("native", "per-sample losses"), "reduction='mean'": _MEAN, "reduction='sum'": _SUM}
OPTION_TABLE.update({
    "margin_ranking_loss": {
        "(function)": ("native", _OPTAX + "hinge_loss(input1 - input2, target) at margin=1; jnp otherwise"),
        "margin": ("composed", "jnp.maximum(-target * (input1 - input2) + margin, 0)"),
        **_REDUCTIONS_COMPOSED,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "hinge_embedding_loss": {
        "(function)": ("composed", "jnp.where(target == 1, input, jnp.maximum(margin - input, 0))"),
        "margin": ("composed", "a literal"),
        **_REDUCTIONS_COMPOSED,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "soft_margin_loss": {
        "(function)": ("composed", "jax.nn.softplus(-target * input)"),
        **_REDUCTIONS_COMPOSED,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "multilabel_soft_margin_loss": {
        "(function)": ("native", _OPTAX + "sigmoid_binary_cross_entropy per class, jnp.mean(axis=-1)"),
        "(C) input": ("native", "the same on a rank-1 input"),
        "weight": ("composed", "terms * weight before the class mean"),
        **_REDUCTIONS_COMPOSED,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "multi_margin_loss": {
        "(function)": (
            "composed",
            "jnp.maximum(margin - x_y + x, 0) ** p over the other classes / C (optax's "
            "multiclass_hinge_loss is the Crammer-Singer max: another loss)",
        ),
        "(C) input": ("composed", "the same on a rank-1 input"),
        "p=1": ("composed", "jnp.maximum(z, 0)"),
        "p=2": ("composed", "jnp.maximum(z, 0) ** 2"),
        "margin": ("composed", "a literal in z"),
        "weight": ("composed", "h * weight[target]"),
        **_REDUCTIONS_COMPOSED,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "multilabel_margin_loss": {
        "(function)": ("composed", "pairwise jnp.maximum(1 - x_j + x_i, 0) masked to listed j, non-target i, / C"),
        "(C) input": ("composed", "the same on a rank-1 input"),
        "-1 terminated target": ("composed", "jnp.cumprod(target >= 0) marks the entries before the first -1"),
        **_REDUCTIONS_COMPOSED,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "cosine_embedding_loss": {
        "(function)": ("native", _OPTAX + "cosine_similarity(input1, input2) (epsilon=0, its default); jnp.where branches"),
        "(D) input": ("native", "axis=-1"),
        "margin": ("composed", "jnp.maximum(cos - margin, 0)"),
        "zero vector": ("native", "epsilon=0: 0/0 (see expectations)"),
        **_REDUCTIONS_COMPOSED,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "triplet_margin_loss": {
        "(function)": ("native", _OPTAX + "triplet_margin_loss(anchor, positive, negative, norm_degree=p, margin=, eps=)"),
        "(D) input": ("native", "axis=-1"),
        "margin": ("native", "margin="),
        "p": ("native", "norm_degree=p"),
        "eps": ("native", "eps= (optax adds it to the sum of powers, see expectations)"),
        "swap": ("composed", "jnp.linalg.norm(a - b + eps, ord=p, axis=-1) distances, jnp.minimum(d_an, d_pn)"),
        **_REDUCTIONS_COMPOSED,
        "size_average/reduce (legacy)": _LEGACY,
    },
    "triplet_margin_with_distance_loss": {
        "(function)": ("composed", "as triplet_margin_loss with a named distance"),
        "(D) input": ("composed", "axis=-1"),
        "distance_function=None": ("composed", "jnp.linalg.norm(a - b + 1e-06, axis=-1)"),
        "distance_function='l1'": ("composed", "jnp.linalg.norm(a - b + 1e-06, ord=1, axis=-1)"),
        "distance_function='cosine'": ("native", _OPTAX + "cosine_distance(a, b, epsilon=1e-16)"),
        "margin": ("composed", "a literal"),
        "swap": ("composed", "jnp.minimum(d_an, d_pn)"),
        **_REDUCTIONS_COMPOSED,
    },
})


def create(*, device: str = "cpu") -> JaxLosses:
    """The ``jax`` adapter on ``device`` (AdapterUnavailableError if JAX has no such device)."""
    return JaxLosses(device=device)

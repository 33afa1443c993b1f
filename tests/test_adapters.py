"""Tests of ``adapters/``: loading, exact conversion, the torch adapters' contract.

What must hold for the conformance verdicts to mean anything: an adapter is
found (or refused with an actionable message), arrays cross into the framework
and back bit for bit, outputs keep the input's dtype and the spec's shape,
repro snippets rebuild the very same call, and the ``torch-nn`` adapter's
legacy ``size_average``/``reduce`` arguments select the reduction PyTorch
documents for them.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from adapters import (
    BUILTIN_ADAPTERS,
    SPEC_FUNCTIONS,
    Adapter,
    AdapterError,
    AdapterUnavailableError,
    UnknownAdapterError,
    load_adapter,
)

BF16 = np.dtype(ml_dtypes.bfloat16)
FLOAT_DTYPES = [np.dtype(np.float16), BF16, np.dtype(np.float32), np.dtype(np.float64)]
DTYPE_IDS = [d.name for d in FLOAT_DTYPES]
TORCH_ADAPTERS = ["torch", "torch-nn"]


def ignore_legacy_warnings(test: Callable) -> Callable:
    """Silence torch's warnings about the deprecated arguments and kl_div's 'mean'."""
    for message in [
        "ignore:size_average and reduce args will be deprecated",
        "ignore::DeprecationWarning",
        "ignore:reduction. 'mean' divides the total loss",
    ]:
        test = pytest.mark.filterwarnings(message)(test)
    return test


# -- helpers -----------------------------------------------------------------------


def assert_same_array(actual: np.ndarray, expected: np.ndarray) -> None:
    """Same type, dtype, shape, and bit-identical values (NaN matches any NaN)."""
    __tracebackhide__ = True
    assert isinstance(actual, np.ndarray), f"expected an ndarray, got {type(actual).__name__}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    if actual.dtype.kind in "biu":
        assert np.array_equal(actual, expected), f"{actual!r} != {expected!r}"
        return
    with np.errstate(invalid="ignore"):  # signaling NaNs among all bit patterns
        nan_actual, nan_expected = np.isnan(actual), np.isnan(expected)
    assert np.array_equal(nan_actual, nan_expected), f"NaNs differ: {actual!r} vs {expected!r}"
    bits = np.dtype(f"u{actual.dtype.itemsize}")
    differ = (actual.view(bits) != expected.view(bits)) & ~nan_actual
    assert not differ.any(), f"values differ bitwise: {actual!r} vs {expected!r}"


def cast(values: Any, dtype: np.dtype) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(dtype)


def devices() -> list[Any]:
    """cpu always; cuda as a skipped parameter unless PyTorch sees a GPU."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_cuda = pytest.mark.skipif(not has_cuda, reason="CUDA not available")
    return ["cpu", pytest.param("cuda", marks=skip_cuda)]


@pytest.fixture
def torch() -> Any:
    return pytest.importorskip("torch")


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Write an importable module (dotted names make packages) under ``tmp_path``."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(name: str, source: str) -> str:
        *packages, leaf = name.split(".")
        folder = tmp_path
        for package in packages:
            folder = folder / package
            folder.mkdir(exist_ok=True)
            (folder / "__init__.py").touch()
        (folder / f"{leaf}.py").write_text(source)
        written.append(name)
        importlib.invalidate_caches()
        return name

    yield write
    roots = {name.split(".")[0] for name in written}
    for name in [n for n in sys.modules if n.split(".")[0] in roots]:
        del sys.modules[name]


NUMPY_SIGMOID = textwrap.dedent("""
    import numpy as np

    def sigmoid(input):
        return (1.0 / (1.0 + np.exp(-input.astype(np.float64)))).astype(input.dtype)
""")


# -- loading: names, import paths, errors ---------------------------------------------


def test_builtin_adapters_are_named() -> None:
    assert BUILTIN_ADAPTERS == {
        "torch": "adapters.torch_functional",
        "torch-nn": "adapters.torch_modules",
        "tensorflow": "adapters.tensorflow_losses",
        "jax": "adapters.jax_losses",
        "mlx": "adapters.mlx_losses",
        "torch-compile": "adapters.torch_compile",
        "torch-compile-dynamic": "adapters.torch_compile_dynamic",
        "paddle": "adapters.paddle_losses",
        "onnxruntime": "adapters.onnxruntime_losses",
    }


def test_importing_adapters_imports_no_framework() -> None:
    code = "import sys, adapters; assert 'torch' not in sys.modules, 'torch was imported'"
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


@pytest.mark.parametrize("spec", ["tensorflw", "Torch", "", "not a path", "a:b:c", "pkg.:x"])
def test_unknown_adapter_lists_the_builtins_and_the_path_form(spec: str) -> None:
    with pytest.raises(UnknownAdapterError) as info:
        load_adapter(spec)
    message = str(info.value)
    assert "'torch'" in message or "torch," in message
    assert "torch-nn" in message
    assert "package.module:attr" in message
    assert "\n" not in message


def test_unknown_adapter_suggests_a_close_builtin_name() -> None:
    with pytest.raises(UnknownAdapterError, match="did you mean 'torch'"):
        load_adapter("Torch")


@pytest.mark.parametrize("spec", ["lossconf_no_such_module", "lossconf_no_such_module.losses:impl"])
def test_nonexistent_module_is_unknown(spec: str) -> None:
    with pytest.raises(UnknownAdapterError, match="no module 'lossconf_no_such_module'"):
        load_adapter(spec)


def test_nonexistent_submodule_of_existing_package_is_unknown(write_module: Callable) -> None:
    write_module("lossconf_ext_pkg.present", NUMPY_SIGMOID)
    with pytest.raises(UnknownAdapterError, match=r"no module 'lossconf_ext_pkg\.absent'"):
        load_adapter("lossconf_ext_pkg.absent")


@pytest.mark.parametrize(
    ("source", "original"),
    [
        ("raise ImportError('libfancy.so: cannot open shared object file')", "libfancy.so"),
        ("import lossconf_missing_dependency", "No module named 'lossconf_missing_dependency'"),
        ("1 / 0", "ZeroDivisionError: division by zero"),
        ("def broken(:\n    pass", "SyntaxError"),
    ],
)
def test_module_failing_to_import_reports_the_original_error(
    write_module: Callable, source: str, original: str
) -> None:
    write_module("lossconf_ext_broken", source)
    with pytest.raises(UnknownAdapterError) as info:
        load_adapter("lossconf_ext_broken")
    assert original in str(info.value)
    assert "exists but failed to import" in str(info.value)


def test_module_form_without_name_uses_the_spec(write_module: Callable) -> None:
    spec = write_module("lossconf_ext_plain", NUMPY_SIGMOID)
    adapter = load_adapter(spec)
    assert isinstance(adapter, Adapter)
    assert (adapter.name, adapter.version, adapter.spec, adapter.module) == (spec, None, spec, spec)
    assert not adapter.builtin
    assert adapter.function("cross_entropy") is None
    assert adapter.function("_private") is None
    x = np.array([0.0, 1.0], dtype=np.float32)
    assert_same_array(adapter.function("sigmoid")(x), np.array([0.5, 0.7310586], np.float32))
    assert not adapter.supports_grad
    with pytest.raises(NotImplementedError):
        adapter.grad("sigmoid", {"input": x}, {})


def test_module_attr_form_takes_the_attribute(write_module: Callable) -> None:
    write_module(
        "lossconf_ext_pkg.losses",
        NUMPY_SIGMOID
        + textwrap.dedent("""
    class _Impl:
        name = "mine"
        version = "1.2"
        sigmoid = staticmethod(sigmoid)

    impl = _Impl()
    """),
    )
    adapter = load_adapter("lossconf_ext_pkg.losses:impl")
    assert (adapter.name, adapter.version) == ("mine", "1.2")
    assert (adapter.spec, adapter.module) == (
        "lossconf_ext_pkg.losses:impl",
        "lossconf_ext_pkg.losses",
    )
    assert adapter.function("sigmoid") is not None
    with pytest.raises(UnknownAdapterError, match="has no attribute 'nope'"):
        load_adapter("lossconf_ext_pkg.losses:nope")


def test_external_factory_receives_the_device(write_module: Callable) -> None:
    write_module(
        "lossconf_ext_factory",
        NUMPY_SIGMOID
        + textwrap.dedent("""
    class _Impl:
        def __init__(self, device):
            self.name = f"numpy@{device}"
            self.sigmoid = sigmoid

    def create(*, device="cpu"):
        return _Impl(device)
    """),
    )
    assert load_adapter("lossconf_ext_factory", device="tpu").name == "numpy@tpu"


def test_external_without_factory_refuses_other_devices(write_module: Callable) -> None:
    write_module("lossconf_ext_plain", NUMPY_SIGMOID)
    with pytest.raises(AdapterError, match="create"):
        load_adapter("lossconf_ext_plain", device="cuda")


def test_external_without_spec_functions_is_refused(write_module: Callable) -> None:
    write_module("lossconf_ext_empty", "def helper():\n    pass\n")
    with pytest.raises(UnknownAdapterError, match="none of the spec's functions"):
        load_adapter("lossconf_ext_empty")


@pytest.mark.parametrize("form", ["module", "attr"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
def test_generic_repro_of_external_adapter_reproduces_the_value(
    write_module: Callable, form: str, dtype: np.dtype
) -> None:
    write_module(
        "lossconf_ext_repro", NUMPY_SIGMOID + "\nclass impl:\n    sigmoid = staticmethod(sigmoid)\n"
    )
    adapter = load_adapter("lossconf_ext_repro" + (":impl" if form == "attr" else ""))
    x = cast([-1.5, 0.0, -0.0, 1e-30, float("inf"), float("nan"), 3.25], dtype).reshape(7, 1)
    snippet = adapter.repro("sigmoid", {"input": x}, {})
    assert "import numpy as np" in snippet
    assert ("from lossconf_ext_repro import sigmoid" in snippet) == (form == "module")
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "<repro>", "exec"), namespace)
    assert_same_array(namespace["out"], adapter.function("sigmoid")(x))


def test_onnxruntime_adapter_reports_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(AdapterUnavailableError) as info:
        load_adapter("onnxruntime")
    assert str(info.value) == (
        "adapter 'onnxruntime' needs ONNX Runtime and onnx: pip install 'lossconf[onnxruntime]'"
    )


def test_adapter_reports_missing_framework(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    for name in TORCH_ADAPTERS:
        with pytest.raises(AdapterUnavailableError) as info:
            load_adapter(name)
        assert str(info.value) == f"adapter {name!r} needs PyTorch: pip install 'lossconf[torch]'"


@pytest.mark.parametrize("name", TORCH_ADAPTERS)
def test_cuda_without_cuda_is_unavailable(torch: Any, name: str) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(AdapterUnavailableError, match="CUDA is not available") as info:
        load_adapter(name, device="cuda")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", TORCH_ADAPTERS)
def test_malformed_device_is_an_adapter_error(torch: Any, name: str) -> None:
    with pytest.raises(AdapterError, match="not a PyTorch device"):
        load_adapter(name, device="gpu-please")


@pytest.mark.parametrize("name", TORCH_ADAPTERS)
def test_builtin_identification(torch: Any, name: str) -> None:
    adapter = load_adapter(name)
    assert (adapter.name, adapter.spec, adapter.module) == (name, name, BUILTIN_ADAPTERS[name])
    assert adapter.version == str(torch.__version__)
    assert adapter.builtin
    assert adapter.supports_grad
    assert all(adapter.function(fn) is not None for fn in SPEC_FUNCTIONS)
    assert adapter.function("not_a_spec_function") is None


# -- exact conversion ---------------------------------------------------------------


def _special_values(dtype: np.dtype) -> np.ndarray:
    info = ml_dtypes.finfo(dtype) if dtype == BF16 else np.finfo(dtype)
    values = [
        0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), float("nan"),
        info.max, -info.max, info.tiny, -info.tiny,
        info.smallest_subnormal, -info.smallest_subnormal, info.eps, 1 / 3,
    ]  # fmt: skip
    return np.asarray(values, dtype=np.float64).astype(dtype)


def _conversion_inputs(dtype: np.dtype) -> np.ndarray:
    """Every bit pattern of the 16-bit types; specials plus random bits for the others."""
    if dtype.itemsize == 2:
        return np.arange(2**16, dtype=np.uint16).view(dtype)
    bits = np.dtype(f"u{dtype.itemsize}")
    random = np.random.default_rng(0).integers(0, np.iinfo(bits).max, 4096, dtype=bits)
    return np.concatenate([_special_values(dtype), random.view(dtype)])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
def test_conversion_round_trip_is_exact(torch: Any, dtype: np.dtype) -> None:
    from adapters._convert import to_numpy, to_tensor

    array = _conversion_inputs(dtype)
    tensor = to_tensor(array)
    assert (
        tensor.dtype
        == {
            "float16": torch.float16,
            "bfloat16": torch.bfloat16,
            "float32": torch.float32,
            "float64": torch.float64,
        }[dtype.name]
    )
    # torch holds the same bits (NaN payloads aside), and they come back unchanged
    int_type = {2: torch.int16, 4: torch.int32, 8: torch.int64}[dtype.itemsize]
    with np.errstate(invalid="ignore"):
        nan = np.isnan(array)
    torch_bits = tensor.view(int_type).numpy().view(f"u{dtype.itemsize}")
    assert np.array_equal(torch_bits[~nan], array.view(f"u{dtype.itemsize}")[~nan])
    assert np.array_equal(torch.isnan(tensor).numpy(), nan)
    assert_same_array(to_numpy(tensor), array)


@pytest.mark.parametrize("dtype", [*FLOAT_DTYPES, np.dtype(np.int64)], ids=[*DTYPE_IDS, "int64"])
def test_conversion_keeps_shape_and_layout_independent(torch: Any, dtype: np.dtype) -> None:
    from adapters._convert import to_numpy, to_tensor

    base = np.arange(24).reshape(2, 3, 4).astype(dtype)
    for array in [base, base.transpose(2, 0, 1), base[:, ::-1, ::2], base[0, 0, 0, ...], base[:0]]:
        readonly = array.copy()
        readonly.flags.writeable = False
        assert_same_array(to_numpy(to_tensor(readonly)), np.array(array, order="C"))
    int64_extremes = np.array([np.iinfo(np.int64).min, -100, 0, np.iinfo(np.int64).max])
    assert_same_array(to_numpy(to_tensor(int64_extremes)), int64_extremes)
    swapped = np.array([1.5, -2.0], dtype=">f4")
    assert_same_array(to_numpy(to_tensor(swapped)), np.array([1.5, -2.0], dtype=np.float32))
    zero_d = to_numpy(to_tensor(np.array(2.5, dtype=np.float32)))
    assert isinstance(zero_d, np.ndarray) and zero_d.shape == ()


def test_conversion_copies(torch: Any) -> None:
    from adapters._convert import to_numpy, to_tensor

    array = np.array([1.0, 2.0], dtype=np.float32)
    tensor = to_tensor(array)
    tensor += 1
    assert array.tolist() == [1.0, 2.0]
    back = to_numpy(tensor)
    tensor += 1
    assert back.tolist() == [2.0, 3.0]


# -- the torch adapters: signature, dtype and shape -------------------------------------


@pytest.mark.parametrize("name", TORCH_ADAPTERS)
@pytest.mark.parametrize("fn_name", list(SPEC_FUNCTIONS))
def test_signature_matches_torch_functional(torch: Any, name: str, fn_name: str) -> None:
    import torch.nn.functional as F

    ours = inspect.signature(load_adapter(name).function(fn_name)).parameters
    if fn_name == "sigmoid":
        assert list(ours) == ["input"]
        return
    theirs = inspect.signature(getattr(F, fn_name)).parameters
    assert list(ours) == list(theirs)[: len(ours)]
    for param_name, parameter in ours.items():
        if parameter.default is not inspect.Parameter.empty:
            assert parameter.default == theirs[param_name].default, param_name
    assert [p for p in theirs if p not in ours] in ([], ["_stacklevel", "dtype"])


def _shape_cases(dtype: np.dtype) -> list[tuple[str, dict[str, Any], dict[str, Any], tuple]]:
    """(function, positional args, options, expected output shape)."""
    rng = np.random.default_rng(1)

    def logits(*shape: int) -> np.ndarray:
        return cast(rng.standard_normal(shape), dtype)

    def probabilities(*shape: int) -> np.ndarray:
        return cast(rng.uniform(0.05, 0.95, shape), dtype)

    def classes(*shape: int, count: int = 5) -> np.ndarray:
        return rng.integers(0, count, shape).astype(np.int64)

    log_probs = cast(np.log(rng.dirichlet(np.ones(5), 4)), dtype)
    soft_targets = cast(rng.dirichlet(np.ones(5), 4), dtype)
    return [
        ("cross_entropy", {"input": logits(4, 5), "target": classes(4)}, {"reduction": "none"}, (4,)),
        ("cross_entropy", {"input": logits(4, 5), "target": classes(4)}, {}, ()),
        ("cross_entropy", {"input": logits(2, 5, 3, 2), "target": classes(2, 3, 2)},
         {"reduction": "none"}, (2, 3, 2)),
        ("cross_entropy", {"input": logits(2, 5, 3, 2), "target": classes(2, 3, 2)},
         {"reduction": "sum", "ignore_index": 1}, ()),
        ("cross_entropy", {"input": logits(4, 5), "target": soft_targets},
         {"reduction": "none", "label_smoothing": 0.25}, (4,)),
        ("cross_entropy", {"input": logits(4, 5), "target": classes(4)},
         {"weight": probabilities(5), "label_smoothing": 0.1}, ()),
        ("cross_entropy", {"input": logits(5), "target": np.array(2)}, {"reduction": "none"}, ()),
        ("nll_loss", {"input": log_probs, "target": classes(4)}, {"reduction": "none"}, (4,)),
        ("nll_loss", {"input": logits(3, 5, 7), "target": classes(3, 7)},
         {"reduction": "none", "weight": probabilities(5)}, (3, 7)),
        ("binary_cross_entropy", {"input": probabilities(3, 4), "target": probabilities(3, 4)},
         {"reduction": "none"}, (3, 4)),
        ("binary_cross_entropy", {"input": probabilities(3, 4), "target": probabilities(3, 4)},
         {"weight": probabilities(4)}, ()),
        ("binary_cross_entropy_with_logits", {"input": logits(3, 4), "target": probabilities(3, 4)},
         {"reduction": "none", "pos_weight": probabilities(4)}, (3, 4)),
        ("binary_cross_entropy_with_logits", {"input": logits(3, 4), "target": probabilities(3, 4)},
         {"reduction": "sum", "weight": probabilities(3, 4)}, ()),
        ("kl_div", {"input": log_probs, "target": soft_targets}, {"reduction": "batchmean"}, ()),
        ("kl_div", {"input": log_probs, "target": cast(np.log(soft_targets.astype(np.float64)), dtype)},
         {"reduction": "none", "log_target": True}, (4, 5)),
        ("softmax", {"input": logits(2, 3, 4)}, {"dim": 1}, (2, 3, 4)),
        ("log_softmax", {"input": logits(2, 3, 4)}, {"dim": -1}, (2, 3, 4)),
        ("sigmoid", {"input": logits(5)}, {}, (5,)),
        ("sigmoid", {"input": logits()}, {}, ()),
    ]  # fmt: skip


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", TORCH_ADAPTERS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
def test_output_has_input_dtype_and_spec_shape(
    torch: Any, device: str, name: str, dtype: np.dtype
) -> None:
    adapter = load_adapter(name, device=device)
    for fn_name, args, kwargs, shape in _shape_cases(dtype):
        before = {k: v.copy() for k, v in args.items()}
        out = adapter.function(fn_name)(*args.values(), **kwargs)
        assert isinstance(out, np.ndarray), (fn_name, kwargs, type(out))
        assert out.dtype == dtype, (fn_name, kwargs, out.dtype)
        assert out.shape == shape, (fn_name, kwargs, out.shape)
        assert np.isfinite(out.astype(np.float64)).all(), (fn_name, kwargs, out)
        for key, value in args.items():
            assert_same_array(value, before[key])  # inputs are never written to


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
def test_both_torch_adapters_agree(torch: Any, dtype: np.dtype) -> None:
    functional, modules = load_adapter("torch"), load_adapter("torch-nn")
    for fn_name, args, kwargs, _ in _shape_cases(dtype):
        assert_same_array(
            modules.function(fn_name)(*args.values(), **kwargs),
            functional.function(fn_name)(*args.values(), **kwargs),
        )


@pytest.mark.parametrize("name", TORCH_ADAPTERS)
def test_torch_errors_pass_through(torch: Any, name: str) -> None:
    """Invalid input raises torch's own exception, unchanged, for the suite to judge."""
    adapter = load_adapter(name)
    logits = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(IndexError, match="out of bounds"):
        adapter.function("cross_entropy")(logits, np.array([0, 1, 4]))
    with pytest.raises(IndexError, match="out of bounds"):
        adapter.function("nll_loss")(logits, np.array([0, -1, 2]), reduction="none")
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        adapter.function("binary_cross_entropy")(
            np.array([1.5], np.float32), np.array([1.0], np.float32)
        )
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        adapter.function("cross_entropy")(logits, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(RuntimeError, match="Found dtype Float but expected Half"):
        adapter.function("binary_cross_entropy")(
            np.array([0.5], np.float16), np.array([1.0], np.float32)
        )


@pytest.mark.parametrize("name", TORCH_ADAPTERS)
def test_no_global_torch_state_changes(torch: Any, name: str) -> None:
    state = lambda: (torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_num_threads())  # noqa: E731
    before = state()
    adapter = load_adapter(name)
    x = np.array([[0.5, -1.0]], dtype=np.float16)
    adapter.function("cross_entropy")(x, np.array([1]))
    adapter.grad("cross_entropy", {"input": x, "target": np.array([1])}, {})
    assert state() == before


# -- repro snippets ----------------------------------------------------------------------


def _repro_cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    f16 = np.finfo(np.float16)
    bf16 = ml_dtypes.finfo(BF16)
    specials_bf16 = cast(
        [0.0, -0.0, float(bf16.smallest_subnormal), -3.5, float("inf"), 1e30], BF16
    )
    return [
        ("cross_entropy", {"input": specials_bf16.reshape(2, 3), "target": np.array([0, 2])},
         {"reduction": "none"}),
        ("cross_entropy", {"input": cast([[1e-7, 2.0, -3.0], [0.1, 0.2, 0.3]], np.float16),
                           "target": np.array([2, -100])},
         {"weight": cast([0.5, 1.0, 2.0], np.float16), "label_smoothing": 0.125}),
        ("cross_entropy", {"input": cast(np.linspace(-30, 30, 120).reshape(2, 3, 4, 5), np.float64),
                           "target": np.zeros((2, 4, 5), np.int64)}, {"reduction": "sum"}),
        ("nll_loss", {"input": cast([[-0.1, -2.3], [float("-inf"), -0.0]], np.float32),
                      "target": np.array([1, 1])}, {"ignore_index": 0}),
        ("binary_cross_entropy", {"input": cast([0.0, 1.0, float(f16.smallest_subnormal), 0.5], np.float16),
                                  "target": cast([0.0, 1.0, 1.0, 0.25], np.float16)}, {"reduction": "none"}),
        ("binary_cross_entropy_with_logits", {"input": cast([[-1e4, 0.0], [50.0, float("nan")]], BF16),
                                              "target": cast([[0.0, 1.0], [1.0, 0.5]], BF16)},
         {"pos_weight": cast([3.0, 0.5], BF16), "reduction": "none"}),
        ("kl_div", {"input": cast([-1.0, -0.5, float("-inf")], np.float32),
                    "target": cast([-2.0, float("-inf"), -0.1], np.float32)},
         {"reduction": "sum", "log_target": True}),
        ("softmax", {"input": cast([[1e4, -1e4, 0.0], [5e-324, -0.0, 1.0]], np.float64)}, {"dim": -1}),
        ("log_softmax", {"input": cast(np.arange(40.0).reshape(2, 20), np.float16)}, {"dim": 0}),
        ("sigmoid", {"input": cast(-1.25, np.float32)}, {}),
    ]  # fmt: skip


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", TORCH_ADAPTERS)
def test_repro_snippet_reproduces_the_value(torch: Any, device: str, name: str) -> None:
    from adapters._convert import to_numpy

    adapter = load_adapter(name, device=device)
    for fn_name, args, kwargs in _repro_cases():
        snippet = adapter.repro(fn_name, args, kwargs)
        assert "import torch" in snippet and "lossconf" not in snippet and "adapters" not in snippet
        assert ("device=" in snippet) == (device != "cpu")
        namespace: dict[str, Any] = {}
        exec(compile(snippet, f"<repro of {fn_name}>", "exec"), namespace)
        expected = adapter.function(fn_name)(*args.values(), **kwargs)
        assert_same_array(to_numpy(namespace["out"]), expected)


@pytest.mark.parametrize("name", TORCH_ADAPTERS)
def test_repro_snippet_is_short_and_explicit(torch: Any, name: str) -> None:
    adapter = load_adapter(name)
    x = cast([[float("nan"), float("inf"), -0.0]], BF16)
    snippet = adapter.repro(
        "cross_entropy", {"input": x, "target": np.array([0])}, {"reduction": "sum"}
    )
    assert (
        "torch.tensor([float('nan'), float('inf'), -0.0], dtype=torch.float32).to(torch.bfloat16)"
        in snippet
    )
    assert "dtype=torch.int64" in snippet
    assert "reduction='sum'" in snippet
    assert "ignore_index" not in snippet and "size_average" not in snippet  # defaults left out
    call = "F.cross_entropy(" if name == "torch" else "torch.nn.CrossEntropyLoss("
    assert call in snippet


def test_repro_names_a_non_cpu_device(torch: Any) -> None:
    from adapters.torch_functional import create

    adapter = create()
    adapter.device = torch.device("cuda", 1)  # repro only writes the device down
    x = np.array([1.0], dtype=BF16)
    snippet = adapter.repro("sigmoid", {"input": x}, {})
    assert "dtype=torch.float32, device='cuda:1').to(torch.bfloat16)" in snippet


@ignore_legacy_warnings
@pytest.mark.parametrize("name", TORCH_ADAPTERS)
def test_repro_keeps_legacy_arguments(torch: Any, name: str) -> None:
    from adapters._convert import to_numpy

    adapter = load_adapter(name)
    args = {"input": cast([[0.25, -1.0], [2.0, 0.0]], np.float32), "target": np.array([0, 1])}
    kwargs = {"size_average": False, "reduce": None, "reduction": "none"}
    snippet = adapter.repro("nll_loss", args, kwargs)
    assert "size_average=False" in snippet and "reduce=" not in snippet
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    assert_same_array(
        to_numpy(namespace["out"]), adapter.function("nll_loss")(*args.values(), **kwargs)
    )


# -- gradients -------------------------------------------------------------------------


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", TORCH_ADAPTERS)
def test_grad_matches_closed_forms(torch: Any, device: str, name: str) -> None:
    adapter = load_adapter(name, device=device)
    x = np.array([[-3.0, 0.0, 1.5], [20.0, -0.5, 2.0]])
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(adapter.grad("sigmoid", {"input": x}, {}), s * (1 - s), rtol=1e-14)

    target = np.array([2, 0])
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    expected = (p - np.eye(3)[target]) / 2
    np.testing.assert_allclose(
        adapter.grad("cross_entropy", {"input": x, "target": target}, {}), expected, rtol=1e-13
    )

    y = np.array([[0.0, 1.0, 0.5], [1.0, 0.25, 0.0]])
    got = adapter.grad(
        "binary_cross_entropy_with_logits",
        {"input": x, "target": y},
        {"reduction": "sum"},
        wrt="target",
    )
    np.testing.assert_allclose(got, -x, rtol=1e-15)  # d/dy of y·softplus(-x) + (1-y)·softplus(x)


@pytest.mark.parametrize("name", TORCH_ADAPTERS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=DTYPE_IDS)
def test_grad_has_the_argument_dtype(torch: Any, name: str, dtype: np.dtype) -> None:
    adapter = load_adapter(name)
    x = cast([[0.5, -1.0, 2.0]], dtype)
    grad = adapter.grad("log_softmax", {"input": x}, {"dim": 1})
    assert grad.dtype == dtype and grad.shape == x.shape
    target = cast([[0.25, 0.5, 0.25]], dtype)
    grad_target = adapter.grad(
        "kl_div", {"input": x, "target": target}, {"reduction": "batchmean"}, wrt="target"
    )
    assert grad_target.dtype == dtype and grad_target.shape == (1, 3)


@pytest.mark.parametrize("name", TORCH_ADAPTERS)
def test_grad_refuses_what_cannot_be_differentiated(torch: Any, name: str) -> None:
    adapter = load_adapter(name)
    args = {"input": np.zeros((2, 3)), "target": np.array([0, 1])}
    with pytest.raises(ValueError, match="not a floating array"):
        adapter.grad("cross_entropy", args, {}, wrt="target")
    with pytest.raises(ValueError, match="no array argument 'weight'"):
        adapter.grad("cross_entropy", args, {}, wrt="weight")
    with pytest.raises(ValueError, match="not a spec function"):
        adapter.grad("not_a_spec_function", args, {})
    # torch defines no derivative for the class weights: unsupported, not an error
    with pytest.raises(NotImplementedError, match="not differentiable"):
        adapter.grad("cross_entropy", args, {"weight": np.ones(3)}, wrt="weight")


# -- the legacy size_average/reduce arguments ------------------------------------------

#: "the reduction argument": when both legacy arguments are None, ``reduction`` decides.
REDUCTION_ARGUMENT = object()

#: PyTorch's documented rule for the deprecated arguments (nn.*Loss docs of
#: ``size_average`` and ``reduce``): given either, they override ``reduction``;
#: ``reduce=False`` means 'none'; otherwise ``size_average=False`` means 'sum';
#: otherwise 'mean'. A None among them counts as True (their documented default).
LEGACY_REDUCTION_RULE: list[tuple[bool | None, bool | None, object]] = [
    # size_average, reduce, the reduction used
    (None, None, REDUCTION_ARGUMENT),
    (None, True, "mean"),
    (None, False, "none"),
    (True, None, "mean"),
    (True, True, "mean"),
    (True, False, "none"),
    (False, None, "sum"),
    (False, True, "sum"),
    (False, False, "none"),
]


def _legacy_cases() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """One call per loss module, with inputs on which 'mean', 'sum' and 'none' all differ."""
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((3, 4))
    probs = rng.uniform(0.1, 0.9, (3, 4))
    return {
        "cross_entropy": ({"input": logits, "target": np.array([0, 3, 1])},
                          {"weight": np.array([0.5, 1.0, 2.0, 1.5])}),
        "nll_loss": ({"input": np.log(probs), "target": np.array([2, 2, 0])}, {}),
        "binary_cross_entropy": ({"input": probs, "target": probs[::-1].copy()},
                                 {"weight": np.array([1.0, 2.0, 0.5, 1.0])}),
        "binary_cross_entropy_with_logits": ({"input": logits, "target": probs},
                                             {"pos_weight": np.array([2.0, 1.0, 0.5, 3.0])}),
        "kl_div": ({"input": np.log(probs), "target": probs[::-1].copy()}, {}),
    }  # fmt: skip


def test_legacy_rule_table_covers_every_combination() -> None:
    combos = {(sa, r) for sa, r, _ in LEGACY_REDUCTION_RULE}
    assert combos == {(sa, r) for sa in (None, True, False) for r in (None, True, False)}


def test_torch_legacy_helper_agrees_with_the_documented_rule(torch: Any) -> None:
    from torch.nn import _reduction

    for size_average, reduce, reduction in LEGACY_REDUCTION_RULE:
        if reduction is not REDUCTION_ARGUMENT:
            got = _reduction.legacy_get_string(size_average, reduce, emit_warning=False)
            assert got == reduction, (size_average, reduce)


@ignore_legacy_warnings
@pytest.mark.parametrize("name", TORCH_ADAPTERS)
@pytest.mark.parametrize("fn_name", list(_legacy_cases()))
@pytest.mark.parametrize(("size_average", "reduce", "documented"), LEGACY_REDUCTION_RULE)
@pytest.mark.parametrize("reduction_argument", ["mean", "sum", "none"])
def test_legacy_arguments_select_the_documented_reduction(
    torch: Any,
    name: str,
    fn_name: str,
    size_average: bool | None,
    reduce: bool | None,
    documented: object,
    reduction_argument: str,
) -> None:
    adapter = load_adapter(name)
    function = adapter.function(fn_name)
    args, options = _legacy_cases()[fn_name]
    expected_reduction = reduction_argument if documented is REDUCTION_ARGUMENT else documented

    results = {r: function(*args.values(), **options, reduction=r) for r in ("mean", "sum", "none")}
    assert results["none"].shape != () and not np.array_equal(results["mean"], results["sum"])

    got = function(
        *args.values(), **options,
        size_average=size_average, reduce=reduce, reduction=reduction_argument,
    )  # fmt: skip
    assert_same_array(got, results[expected_reduction])

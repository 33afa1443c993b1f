"""Tests of ``oracle/core.py``: exact conversion, IEEE rounding, ULPs, precision policy.

Every expectation here is computed without the code under test: bit patterns are
decoded by hand into :class:`fractions.Fraction`, rounding is checked against
NumPy's own casts and against the small integer-arithmetic rounding below
(:func:`round_fraction`), and constants come from ``math``/``float.hex`` or
from python-flint's ``arb`` balls.

The helpers :func:`decode_bits`, :func:`round_fraction`, :func:`mpf_to_fraction`
and :func:`same_float` are also used by ``tests/test_oracle_arb.py``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mpmath import mpf

import oracle
from oracle import (
    FORMATS,
    OracleUndecided,
    correctly_rounded,
    format_of,
    round_to_format,
    to_mpf,
    ulp,
    ulp_distance,
    working_precision,
)

BF16 = np.dtype(ml_dtypes.bfloat16)

# (p, emin, emax, exponent bits) from IEEE 754-2008 Table 3.5 and bfloat16's
# definition (float32's exponent, 8 significand bits): written out, not read
# from the oracle.
FORMAT_PARAMS: dict[str, tuple[int, int, int, int]] = {
    "float64": (53, -1022, 1023, 11),
    "float32": (24, -126, 127, 8),
    "float16": (11, -14, 15, 5),
    "bfloat16": (8, -126, 127, 8),
}
NUMPY_DTYPES = {
    "float64": np.dtype(np.float64),
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "bfloat16": BF16,
}
UINT_OF = {"float64": np.uint64, "float32": np.uint32, "float16": np.uint16, "bfloat16": np.uint16}
NAMES = list(FORMAT_PARAMS)


# --------------------------------------------------------------------------- helpers


def pow2(e: int) -> Fraction:
    return Fraction(2**e) if e >= 0 else Fraction(1, 2**-e)


def decode_bits(bits: int, name: str) -> Fraction | float:
    """The value of an IEEE bit pattern: a Fraction, or ``inf``/``-inf``/``nan`` as floats."""
    p, emin, emax, ebits = FORMAT_PARAMS[name]
    width = 1 + ebits + p - 1
    sign = -1 if (bits >> (width - 1)) & 1 else 1
    field = (bits >> (p - 1)) & ((1 << ebits) - 1)
    frac = bits & ((1 << (p - 1)) - 1)
    if field == (1 << ebits) - 1:
        return math.nan if frac else sign * math.inf
    if field == 0:  # zero and subnormals: frac * 2**(emin - p + 1)
        return sign * frac * pow2(emin - p + 1)
    return sign * ((1 << (p - 1)) + frac) * pow2(field - emax - (p - 1))


def max_finite(name: str) -> Fraction:
    p, _, emax, _ = FORMAT_PARAMS[name]
    return (2 - pow2(1 - p)) * pow2(emax)


def round_fraction(q: Fraction, name: str) -> float:
    """Round an exact rational to ``name`` with round-to-nearest-even, gradual
    underflow and overflow to infinity; the result as a float (exactly)."""
    p, emin, _, _ = FORMAT_PARAMS[name]
    if q == 0:
        return 0.0
    negative = q < 0
    a = -q if negative else q
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if a < pow2(e):
        e -= 1
    quantum = max(e, emin) - (p - 1)
    scaled = a / pow2(quantum)
    n = scaled.numerator // scaled.denominator
    rem = scaled - n
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n % 2 == 1):
        n += 1
    value = n * pow2(quantum)
    magnitude = math.inf if value > max_finite(name) else float(value)
    return -magnitude if negative else magnitude


def mpf_to_fraction(x: mpf) -> Fraction:
    """The exact value of a finite mpf (its raw sign, mantissa and exponent)."""
    assert mpmath.isfinite(x), x
    sign, man, exp, _ = x._mpf_
    return (-1) ** sign * int(man) * pow2(int(exp))


def same_float(a: float, b: float) -> bool:
    """Bitwise equality of two floats' values and signs, NaN equal to NaN."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def numpy_cast(x: float, name: str) -> float:
    with np.errstate(over="ignore", under="ignore"):
        return float(np.array(x, dtype=np.float64).astype(NUMPY_DTYPES[name]))


# ---------------------------------------------------------------- the helpers' own check


@pytest.mark.parametrize("name", ["float32", "float16"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_round_fraction_helper_agrees_with_numpy(name, data):
    x = data.draw(st.floats(allow_nan=False, allow_infinity=False, width=64))
    assert same_float(round_fraction(Fraction(x), name), numpy_cast(x, name)) or x == 0


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("name", NAMES)
def test_formats_describe_ieee_parameters(name):
    p, emin, emax, _ = FORMAT_PARAMS[name]
    fmt = FORMATS[name]
    assert (fmt.p, fmt.emin, fmt.emax) == (p, emin, emax)
    assert fmt.smallest_subnormal == float(pow2(emin - p + 1))
    assert fmt.smallest_normal == float(pow2(emin))
    assert fmt.max_finite == float(max_finite(name))
    assert fmt.unit_roundoff == float(pow2(-p))
    assert fmt.numpy_dtype == NUMPY_DTYPES[name]
    top = (1 << (FORMAT_PARAMS[name][3] + p - 1)) - (1 << (p - 1)) - 1  # largest finite pattern
    assert float(decode_bits(top, name)) == fmt.max_finite


@pytest.mark.parametrize(
    "spec, name",
    [
        (np.float64, "float64"),
        (np.dtype(np.float32), "float32"),
        ("float16", "float16"),
        (ml_dtypes.bfloat16, "bfloat16"),
        (BF16, "bfloat16"),
    ],
)
def test_format_of_accepts_dtypes_and_names(spec, name):
    assert format_of(spec) is FORMATS[name]


@pytest.mark.parametrize("spec", [np.int32, "float8", np.complex128])
def test_format_of_rejects_unknown_formats(spec):
    with pytest.raises(ValueError, match="unsupported"):
        format_of(spec)


# --------------------------------------------------------------------------- to_mpf


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_to_mpf_is_exact_for_every_16_bit_value(name):
    patterns = np.arange(1 << 16, dtype=np.uint16)
    values = patterns.view(NUMPY_DTYPES[name])
    for bits, v in zip(patterns.tolist(), values):
        expected = decode_bits(bits, name)
        got = to_mpf(v)
        if isinstance(expected, float):
            if math.isnan(expected):
                assert mpmath.isnan(got), hex(bits)
            else:
                assert got == expected, hex(bits)
        else:
            assert mpf_to_fraction(got) == expected, hex(bits)


FLOAT32_EDGE_PATTERNS = [0x00000001, 0x00000002, 0x003FFFFF, 0x007FFFFF, 0x00800000, 0x00800001,
                         0x3F800000, 0x3F800001, 0x7F7FFFFF, 0x80000001, 0x807FFFFF, 0xFF7FFFFF]


@settings(max_examples=500, deadline=None)
@given(bits=st.integers(0, 2**32 - 1))
def test_to_mpf_is_exact_for_float32(bits):
    expected = decode_bits(bits, "float32")
    value = np.array(bits, dtype=np.uint32).view(np.float32)[()]
    if isinstance(expected, float):
        return  # inf/nan: covered by the 16-bit exhaustive test's conventions
    assert mpf_to_fraction(to_mpf(value)) == expected


@pytest.mark.parametrize("bits", FLOAT32_EDGE_PATTERNS, ids=hex)
def test_to_mpf_is_exact_for_float32_edges(bits):
    value = np.array(bits, dtype=np.uint32).view(np.float32)[()]
    assert mpf_to_fraction(to_mpf(value)) == decode_bits(bits, "float32")


@settings(max_examples=500, deadline=None)
@given(x=st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True))
@example(x=5e-324)
@example(x=-2.2250738585072014e-308)
@example(x=2.225073858507201e-308)  # largest subnormal
@example(x=1.7976931348623157e308)
@example(x=0.1)
def test_to_mpf_is_exact_for_float64(x):
    assert mpf_to_fraction(to_mpf(np.float64(x))) == Fraction(x)
    assert mpf_to_fraction(to_mpf(x)) == Fraction(x)


@pytest.mark.parametrize(
    "hexstr",
    ["0x0.0000000000001p-1022", "0x0.fffffffffffffp-1022", "0x1.0000000000001p+0", "-0x1.999999999999ap-4"],
)
def test_to_mpf_matches_float_hex(hexstr):
    # Parse the hex significand and exponent by hand: an independent reading of the value.
    sign = -1 if hexstr.startswith("-") else 1
    body = hexstr.lstrip("-")[2:]
    mant, exp = body.split("p")
    whole, frac = mant.split(".")
    significand = int(whole + frac, 16)
    expected = sign * significand * pow2(int(exp) - 4 * len(frac))
    assert mpf_to_fraction(to_mpf(float.fromhex(hexstr))) == expected


def test_to_mpf_special_values_and_integers():
    assert to_mpf(np.float32(np.inf)) == mpmath.inf
    assert to_mpf(-np.inf) == -mpmath.inf
    assert mpmath.isnan(to_mpf(np.float16(np.nan)))
    assert to_mpf(np.int64(7)) == 7
    assert to_mpf(3) == 3
    assert to_mpf(True) == 1
    x = mpf("0.3")
    assert to_mpf(x) is x


def test_to_mpf_is_exact_below_53_bits_of_working_precision():
    """The docstring promises exactness 'at any precision'."""
    with working_precision(20):
        got = to_mpf(np.float64(0.1))
    assert mpf_to_fraction(got) == Fraction(0.1)


def test_to_mpf_is_exact_for_large_integers():
    """An integer (e.g. a class index or an integer target) converts exactly."""
    big = 2**60 + 1
    assert mpf_to_fraction(to_mpf(big)) == big
    assert mpf_to_fraction(to_mpf(np.int64(big))) == big


def test_mp_array_keeps_shape_and_values():
    a = np.array([[1.5, -2.0**-1074], [np.inf, 3.0]], dtype=np.float64)
    m = oracle.mp_array(a)
    assert m.shape == (2, 2) and m.dtype == object
    assert mpf_to_fraction(m[0, 1]) == -Fraction(2.0**-1074)
    assert m[1, 0] == mpmath.inf
    assert oracle.mp_array(np.float32(2.5)).shape == ()


# ------------------------------------------------------------------- round_to_format


def boundary_values(name: str) -> st.SearchStrategy[float]:
    """float64 values where rounding to ``name`` is delicate: the format's own
    values, midpoints between neighbours (ties), a float64 ulp either side of a
    midpoint, and the overflow and underflow thresholds."""
    p, _, emax, ebits = FORMAT_PARAMS[name]
    top = (1 << (ebits + p - 1)) - (1 << (p - 1)) - 1

    @st.composite
    def build(draw):
        bits = draw(st.one_of(
            st.integers(0, top),
            st.integers(0, 8),  # zero and the first subnormals
            st.integers(top - 4, top),  # the top binade, overflow
            st.integers((1 << (p - 1)) - 4, (1 << (p - 1)) + 4),  # subnormal/normal boundary
        ))
        lo = decode_bits(bits, name)
        hi = decode_bits(bits + 1, name) if bits < top else pow2(emax + 1)
        mid = float((lo + hi) / 2)
        kind = draw(st.sampled_from(["value", "mid", "above", "below"]))
        x = {
            "value": float(lo),
            "mid": mid,
            "above": math.nextafter(mid, math.inf),
            "below": math.nextafter(mid, -math.inf),
        }[kind]
        return -x if draw(st.booleans()) else x

    return build()


float64_any = st.floats(allow_nan=False, allow_infinity=True, allow_subnormal=True)


def assert_rounds_like_numpy(x: float, name: str) -> None:
    __tracebackhide__ = True
    got = round_to_format(to_mpf(x), FORMATS[name])
    expected = numpy_cast(x, name)
    if x == 0:  # an mpf zero has no sign
        assert got == 0
    else:
        assert same_float(got, expected), f"{x!r} -> {name}: oracle {got!r}, NumPy {expected!r}"


@pytest.mark.parametrize("name", ["float32", "float16"])
@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_round_to_format_agrees_with_numpy_cast(name, data):
    assert_rounds_like_numpy(data.draw(st.one_of(float64_any, boundary_values(name))), name)


@pytest.mark.parametrize("name", ["float32", "float16"])
@pytest.mark.parametrize(
    "x",
    [3.4028235677973366e38, 3.4028235677973366e38 * (1 + 2**-40), 2.0**-150, 2.0**-150 * (1 + 2**-30),
     2.0**-151, 2.0**-25, 2.0**-25 * (1 + 2**-30), 1 + 2**-24, 1 + 3 * 2**-24, 65520.0, 65519.0,
     1e300, -1e-300, 5e-324],
)
def test_round_to_format_agrees_with_numpy_cast_at_edges(name, x):
    assert_rounds_like_numpy(x, name)


@pytest.mark.parametrize(
    "name, x, expected",
    [
        # ties go to even; just above a tie goes up
        ("float32", 1 + 2.0**-24, 1.0),
        ("float32", 1 + 3 * 2.0**-24, 1 + 2.0**-22),
        ("float32", math.nextafter(1 + 2.0**-24, 2), 1 + 2.0**-23),
        ("float16", 2049.0, 2048.0),
        ("float16", 2051.0, 2052.0),
        ("bfloat16", 1 + 2.0**-8, 1.0),
        ("bfloat16", 1 + 3 * 2.0**-8, 1 + 2.0**-6),
        # half the smallest subnormal is a tie to zero; anything above it is not
        ("float32", 2.0**-150, 0.0),
        ("float32", 2.0**-150 * (1 + 2**-40), 2.0**-149),
        ("float32", 3 * 2.0**-150, 2.0**-148),
        ("float32", 2.0**-151, 0.0),
        ("float16", 2.0**-25, 0.0),
        ("float16", 2.0**-25 + 2.0**-60, 2.0**-24),
        ("float16", -(2.0**-26), -0.0),
        ("bfloat16", 2.0**-134, 0.0),
        ("bfloat16", 2.0**-134 * 1.5, 2.0**-133),
        # overflow: max + half an ulp is a tie that rounds to the (even) infinity
        ("float16", 65504.0, 65504.0),
        ("float16", 65519.99, 65504.0),
        ("float16", 65520.0, math.inf),
        ("float16", -65520.0, -math.inf),
        ("float32", float((2 - pow2(-23)) * pow2(127) + pow2(103)), math.inf),
        ("float32", math.nextafter(float((2 - pow2(-23)) * pow2(127) + pow2(103)), 0), 3.4028234663852886e38),
        ("bfloat16", float((2 - pow2(-7)) * pow2(127) + pow2(119)), math.inf),
        ("bfloat16", 3.39e38, 3.3895313892515355e38),
        ("bfloat16", 3.4e38, math.inf),
    ],
)
def test_round_to_format_known_values(name, x, expected):
    assert same_float(round_to_format(to_mpf(x), FORMATS[name]), expected)


@pytest.mark.parametrize("name", NAMES)
def test_round_to_format_special_and_out_of_range_values(name):
    fmt = FORMATS[name]
    assert math.isnan(round_to_format(mpmath.nan, fmt))
    assert round_to_format(mpmath.inf, fmt) == math.inf
    assert round_to_format(-mpmath.inf, fmt) == -math.inf
    assert same_float(round_to_format(mpf(0), fmt), 0.0)
    huge = mpmath.ldexp(1, 5000)
    tiny = mpmath.ldexp(1, -5000)
    assert round_to_format(huge, fmt) == math.inf
    assert round_to_format(-huge, fmt) == -math.inf
    assert same_float(round_to_format(tiny, fmt), 0.0)
    assert same_float(round_to_format(-tiny, fmt), -0.0)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=400, deadline=None)
@given(
    man=st.integers(1, 2**120),
    exp=st.integers(-1250, 1100),
    negative=st.booleans(),
)
def test_round_to_format_from_high_precision_values(name, man, exp, negative):
    """Values with up to 120 significant bits, far outside every format's range too."""
    p, emin, _, _ = FORMAT_PARAMS[name]
    # keep most draws near the format's range, where rounding is non-trivial
    if name != "float64":
        exp = emin - p - 130 + (exp + 1250) % (400 if name != "float16" else 200)
    assert_rounds_like_integer_arithmetic(man, exp, negative, name)


def assert_rounds_like_integer_arithmetic(man: int, exp: int, negative: bool, name: str) -> None:
    __tracebackhide__ = True
    q = (-1 if negative else 1) * man * pow2(exp)
    with working_precision(max(man.bit_length(), 1) + 10):
        x = mpmath.ldexp(mpf(-man if negative else man), exp)
    assert mpf_to_fraction(x) == q
    expected = round_fraction(q, name)
    if expected == 0:
        expected = math.copysign(0.0, -1 if negative else 1)
    got = round_to_format(x, FORMATS[name])
    assert same_float(got, expected), f"{man}*2**{exp} -> {name}: oracle {got!r}, expected {expected!r}"


@pytest.mark.parametrize(
    "name, man, exp, negative",
    [
        ("float64", 2**53 + 1, -53, False),  # 1 + 2**-53: a tie, to even
        ("float64", 2**53 + 3, -53, False),  # 1 + 3 * 2**-53: a tie, up to even
        ("float64", 2**80 + 2**27 + 1, -80, False),  # just above a tie
        ("float64", 1, -1075, False),  # half the smallest subnormal: to zero
        ("float64", 2**70 + 1, -1145, True),  # just above it: the smallest subnormal
        ("float64", 3, -1076, True),
        ("float64", 2**54 - 1, 970, False),  # max + half ulp: to infinity
        ("float64", 2**55 - 3, 969, False),  # just below it: max
        ("float32", 2**24 + 1, -24, False),
        ("float16", 2**11 + 1, -11, False),
        ("bfloat16", 2**8 + 1, -8, False),
        ("bfloat16", 2**200 + 1, -200 - 8, False),
    ],
)
def test_round_to_format_from_high_precision_edges(name, man, exp, negative):
    assert_rounds_like_integer_arithmetic(man, exp, negative, name)


@settings(max_examples=500, deadline=None)
@given(x=st.one_of(float64_any, boundary_values("bfloat16")))
@example(x=1 + 2**-8 + 2**-30)  # float64 -> float32 -> bfloat16 double-rounds this one
def test_round_to_format_bfloat16_from_float64(x):
    """bfloat16 from float64 against integer arithmetic (ml_dtypes' float64 cast
    goes through float32 and double-rounds)."""
    got = round_to_format(to_mpf(x), FORMATS["bfloat16"])
    if x == 0:
        assert got == 0
    elif math.isinf(x):
        assert got == x
    else:
        assert same_float(got, round_fraction(Fraction(x), "bfloat16"))


@settings(max_examples=500, deadline=None)
@given(bits=st.integers(0, 2**32 - 1))
@example(bits=0x3F808000)  # 1 + 2**-8: a tie between two bfloat16 values
@example(bits=0x3F818000)  # 1 + 3 * 2**-8
@example(bits=0x7F7FFFFF)  # float32 max: rounds to inf in bfloat16
@example(bits=0x00008000)  # a float32 subnormal tie
def test_round_to_format_bfloat16_agrees_with_ml_dtypes_on_float32_values(bits):
    """float32 -> bfloat16 is a single rounding in ml_dtypes: compare directly."""
    f32 = np.array(bits, dtype=np.uint32).view(np.float32)
    if np.isnan(f32):
        return
    x = float(f32)
    with np.errstate(over="ignore"):
        expected = float(f32.astype(BF16))
    got = round_to_format(to_mpf(x), FORMATS["bfloat16"])
    if x == 0:
        assert got == 0
    else:
        assert same_float(got, expected), (hex(bits), got, expected)


# --------------------------------------------------------------------------- ulp


@pytest.mark.parametrize(
    "name, x, expected",
    [
        ("float32", 1.0, 2.0**-23),
        ("float32", 1.5, 2.0**-23),
        ("float32", 2.0, 2.0**-22),
        ("float32", math.nextafter(2.0, 0), 2.0**-23),
        ("float32", -3.0, 2.0**-22),
        ("float32", 0.0, 2.0**-149),
        ("float32", 2.0**-149, 2.0**-149),
        ("float32", 2.0**-127, 2.0**-149),
        ("float32", 2.0**-126, 2.0**-149),
        ("float32", 2.0**-125, 2.0**-148),
        ("float32", 3.4028234663852886e38, 2.0**104),
        ("float32", 1e39, 2.0**104),  # beyond max: the top binade's ulp
        ("float32", math.inf, 2.0**104),
        ("float64", 1.0, 2.0**-52),
        ("float64", 5e-324, 5e-324),
        ("float64", 0.0, 5e-324),
        ("float16", 1.0, 2.0**-10),
        ("float16", 65504.0, 32.0),
        ("float16", 2.0**-24, 2.0**-24),
        ("float16", 1e-3, 2.0**-20),
        ("bfloat16", 1.0, 2.0**-7),
        ("bfloat16", 256.0, 2.0),
    ],
)
def test_ulp_known_values(name, x, expected):
    assert ulp(x, FORMATS[name]) == expected
    assert ulp(to_mpf(x), FORMATS[name]) == expected


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("e", [-3, 0, 1, 7, 10])
def test_ulp_at_and_around_powers_of_two(name, e):
    p = FORMAT_PARAMS[name][0]
    with working_precision(400):
        power = mpmath.ldexp(1, e)
        below = power - mpmath.ldexp(1, -300)
        assert ulp(power, FORMATS[name]) == 2.0 ** (e - p + 1)
        assert ulp(below, FORMATS[name]) == 2.0 ** (e - p)


def test_ulp_distance_of_correctly_rounded_tenth():
    with working_precision(300):
        tenth = mpf(1) / 10
    d32 = ulp_distance(np.float32(0.1), tenth, np.float32)
    assert 0 < d32 <= 0.5
    # float32(0.1) = 13421773 * 2**-27; 0.1 = 13421772.8 * 2**-27: 0.2 ulp exactly
    assert d32 == pytest.approx(0.2, rel=1e-12)
    assert 0 < ulp_distance(0.1, tenth, np.float64) <= 0.5
    assert 0 < ulp_distance(np.float16(0.1), tenth, "float16") <= 0.5
    assert 0 < ulp_distance(np.array(0.1, BF16)[()], tenth, BF16) <= 0.5


@pytest.mark.parametrize(
    "observed, exact, dtype, expected",
    [
        (1.0, 1.0, np.float32, 0.0),
        (1 + 2.0**-23, 1.0, np.float32, 1.0),
        (1 + 2.0**-22, 1.0, np.float32, 2.0),
        (1 - 2.0**-24, 1.0, np.float32, 0.5),  # measured in ulp(exact)
        (1.0, 1 - 2.0**-24, np.float32, 1.0),
        (0.0, 2.0**-149, np.float32, 1.0),
        (2.0**-148, 0.0, np.float32, 2.0),
        (-1.0, 1.0, np.float16, 2048.0),
        (3.0, 1.0, "bfloat16", 256.0),
        (math.inf, math.inf, np.float32, 0.0),
        (-math.inf, -math.inf, np.float64, 0.0),
        (math.nan, math.nan, np.float32, 0.0),
        (math.inf, -math.inf, np.float32, math.inf),
        (math.nan, 1.0, np.float32, math.inf),
        (1.0, math.nan, np.float32, math.inf),
        (1.0, math.inf, np.float32, math.inf),
        (math.inf, 3.4028234663852886e38, np.float32, math.inf),
    ],
)
def test_ulp_distance_known_values(observed, exact, dtype, expected):
    assert ulp_distance(observed, exact, dtype) == expected


@settings(max_examples=200, deadline=None)
@given(x=st.floats(allow_nan=False, allow_infinity=True, width=32))
def test_ulp_distance_of_identical_values_is_zero(x):
    assert ulp_distance(np.float32(x), np.float32(x), np.float32) == 0.0


# ------------------------------------------------------------------ working_precision


def test_working_precision_sets_and_restores_precision():
    before = mpmath.mp.prec
    with working_precision(333):
        assert mpmath.mp.prec == 333
        with working_precision(77):
            assert mpmath.mp.prec == 77
        assert mpmath.mp.prec == 333
    assert mpmath.mp.prec == before


def test_working_precision_restores_precision_on_exception():
    before = mpmath.mp.prec
    with pytest.raises(ZeroDivisionError), working_precision(500):
        assert mpmath.mp.prec == 500
        mpf(1) / 0
    assert mpmath.mp.prec == before


# ------------------------------------------------------------------ correctly_rounded


LN2_HEX = "0x1.62e42fefa39efp-1"  # log(2) correctly rounded to binary64 (fdlibm's ln2_hi+lo)


def test_correctly_rounded_float64_constants():
    _, ln2 = correctly_rounded(lambda: mpmath.log(2), np.float64)
    assert isinstance(ln2, np.ndarray) and ln2.shape == () and ln2.dtype == np.float64
    assert float(ln2) == float.fromhex(LN2_HEX) == math.log(2)
    _, e = correctly_rounded(lambda: mpmath.exp(1), np.float64)
    assert float(e) == math.e
    _, pi = correctly_rounded(lambda: mpmath.pi, np.float64)
    assert float(pi) == math.pi
    _, r2 = correctly_rounded(lambda: mpmath.sqrt(2), "float64")
    assert float(r2) == math.sqrt(2)  # IEEE sqrt is correctly rounded
    _, tenth = correctly_rounded(lambda: mpf(1) / 10, np.float64)
    assert float(tenth) == 0.1


def arb_reference(name: str, which: str) -> float:
    from flint import arb, ctx

    saved = ctx.prec
    try:
        ctx.prec = 400
        ball = {"log2": arb(2).log(), "e": arb(1).exp(), "log10": arb(10).log()}[which]
    finally:
        ctx.prec = saved
    man, exp = ball.mid().man_exp()
    rman, rexp = ball.rad().man_exp() if not ball.rad().is_zero() else (0, 0)
    mid = int(man) * pow2(int(exp))
    rad = int(rman) * pow2(int(rexp))
    lo, hi = round_fraction(mid - rad, name), round_fraction(mid + rad, name)
    assert lo == hi, "the reference ball straddles a rounding boundary"
    return lo


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("which", ["log2", "e", "log10"])
def test_correctly_rounded_agrees_with_arb_in_every_format(name, which):
    f = {"log2": lambda: mpmath.log(2), "e": lambda: mpmath.e + 0, "log10": lambda: mpmath.log(10)}[which]
    exact, rounded = correctly_rounded(f, NUMPY_DTYPES[name])
    assert float(rounded) == arb_reference(name, which)
    assert isinstance(exact, mpf)


def test_correctly_rounded_float32_log2_hex():
    _, r = correctly_rounded(lambda: mpmath.log(2), np.float32)
    assert float(r) == float.fromhex("0x1.62e430p-1")


def test_correctly_rounded_arrays_and_special_values():
    def evaluate():
        return np.array([mpmath.log(2), mpmath.exp(1000), -mpmath.exp(-1000), mpmath.nan, mpf(0)],
                        dtype=object)

    exact, rounded = correctly_rounded(evaluate, np.float32)
    assert exact.shape == rounded.shape == (5,)
    assert rounded.dtype == np.float64
    assert float(rounded[0]) == float.fromhex("0x1.62e430p-1")
    assert rounded[1] == math.inf
    assert same_float(rounded[2], -0.0)
    assert math.isnan(rounded[3])
    assert same_float(rounded[4], 0.0)


def test_correctly_rounded_escalates_past_a_cancellation():
    """At fewer than 200 bits ``(1 + 2**-200) - 1`` evaluates to 0; the loop must
    notice that the roundings disagree and escalate."""
    precisions = []

    def evaluate():
        precisions.append(mpmath.mp.prec)
        return (1 + mpmath.ldexp(1, -200)) - 1

    _, r = correctly_rounded(evaluate, np.float64)
    assert float(r) == 2.0**-200
    assert max(precisions) > 200
    assert precisions == sorted(precisions)


def test_correctly_rounded_raises_when_the_rounding_keeps_flipping():
    """Exactly at a float64 rounding midpoint, plus a perturbation whose sign
    alternates with every evaluation: no two evaluations round alike."""
    calls = []

    def flipping(p):
        def evaluate():
            calls.append(mpmath.mp.prec)
            sign = 1 if len(calls) % 2 else -1
            midpoint = 1 + mpmath.ldexp(1, -p)  # halfway between 1 and its successor
            return midpoint + sign * mpmath.ldexp(1, -(mpmath.mp.prec - 2))

        return evaluate

    before = mpmath.mp.prec
    with pytest.raises(OracleUndecided):
        correctly_rounded(flipping(53), np.float64)
    assert mpmath.mp.prec == before
    assert len(calls) > 2 and max(calls) <= 1 << 14

    calls.clear()
    with pytest.raises(OracleUndecided):
        correctly_rounded(flipping(24), np.float32, max_bits=300)
    assert len(calls) > 2 and max(calls) <= 300


def test_correctly_rounded_restores_precision_when_evaluate_raises():
    before = mpmath.mp.prec

    def evaluate():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        correctly_rounded(evaluate, np.float16)
    assert mpmath.mp.prec == before


@pytest.mark.parametrize("name", NAMES)
def test_correctly_rounded_works_above_twice_the_format_precision(name):
    seen = []

    def evaluate():
        seen.append(mpmath.mp.prec)
        return mpmath.log(3)

    correctly_rounded(evaluate, NUMPY_DTYPES[name])
    assert min(seen) >= 2 * FORMAT_PARAMS[name][0]
    assert len(seen) >= 2  # a value is confirmed at a second precision


def _never_decided():
    """Evaluations that alternate around a float64 midpoint: no precision decides them."""
    calls = []

    def evaluate():
        calls.append(mpmath.mp.prec)
        sign = 1 if len(calls) % 2 else -1
        return 1 + mpmath.ldexp(1, -53) + sign * mpmath.ldexp(1, -(mpmath.mp.prec - 2))

    return calls, evaluate


def test_oracle_budget_caps_the_precision_and_is_scoped():
    calls, evaluate = _never_decided()
    with oracle.oracle_budget(oracle.OracleBudget(max_bits=600)), pytest.raises(OracleUndecided, match="at 600 bits"):
        correctly_rounded(evaluate, np.float64)
    assert max(calls) <= 600 + 64
    calls.clear()
    with pytest.raises(OracleUndecided, match="at 16384 bits"):  # the budget ended with its block
        correctly_rounded(evaluate, np.float64)
    assert max(calls) > 600 + 64


def test_oracle_budget_time_limit_makes_the_case_undecided():
    calls, evaluate = _never_decided()
    with oracle.oracle_budget(oracle.OracleBudget(seconds=0.0)), pytest.raises(OracleUndecided, match="time budget"):
        correctly_rounded(evaluate, np.float64)
    assert calls == []  # a zero budget is spent before the first evaluation
    # A decidable value within the budget is unaffected.
    with oracle.oracle_budget(oracle.OracleBudget(max_bits=600, seconds=60.0)):
        _, rounded = correctly_rounded(lambda: mpf(1) / 3, np.float64)
    assert rounded == 1 / 3


def test_a_mean_keeps_the_tail_that_decides_a_half_way_rounding():
    """cross_entropy([[-3008, 7008]], [0]) = 10016 + log1p(e^-10016): 10016 is the half-way
    point between bfloat16's 9984 and 10048, and the tail (~1e-4350) rounds it up. The mean's
    division by the weight sum must not round the tail away (found by tests/test_oracle_arb.py:
    the oracle said 9984 for 'mean', 10048 for 'sum')."""
    import ml_dtypes

    import oracle

    x = np.array([[-3008, 7008]] * 3, dtype=ml_dtypes.bfloat16)
    for reduction, target in (("mean", [0]), ("sum", [0]), ("mean", [0, 0, 0])):
        rows = x[: len(target)]
        _, rounded = correctly_rounded(
            lambda: oracle.cross_entropy_terms(rows, np.array(target), reduction=reduction).value, "bfloat16"
        )
        assert float(rounded) == 10048.0, (reduction, target)

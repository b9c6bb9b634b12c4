"""
Exact arithmetic beyond the rationals, for mathexpr.py's evaluator, standard library only.

A value is a rational (int or Fraction); an Exact, a sum of rational multiples of monomials
    pi^a * b_1^e_1 * ... * b_k^e_k      (a rational, each b_i > 1 an integer, 0 < e_i < 1),
such as 2\\sqrt{2}, \\sqrt[3]{4}, \\frac{\\pi}{\\sqrt{3}} or 10^{15} + \\sqrt{10^{30}+1}; or, where
no exact form is kept (\\sin 1, \\ln 2, 2^{\\sqrt{2}}, 1/(\\pi+1)), a Decimal of PREC digits.

Sums, products, integer powers, roots of a monomial and division by a value whose radicals are
square roots stay exact, so two exact values are equal when their difference is zero term by
term: 665857/470832 is not \\sqrt{2} and \\pi + 10^{-11} is not \\pi, however close. The test is
sound: each rewriting is an identity, so a zero difference is a zero value. A monomial's bases
are primes below 1000 and what is left once those are divided out (split where two share a
factor, and never a perfect power); powers of pi are independent over the algebraic numbers and
radicals of distinct primes over the rationals (Besicovitch), so equal values give a zero
difference, except where a large factor that is not prime hides a square: then two equal values
look different, never the reverse.

equal(x, y, digits) compares two values: exactly unless one is a Decimal. Two Decimals are
equal when they agree to TOL digits, and only compared when the exact numbers met computing
them (`digits`, the most digits of a numerator or denominator) plus the values' size in digits
come to at most TRUSTED: a nonzero exact term of D digits is at least 10^-D, far above the
10^-TOL a Decimal can hide. So a decimal of \\ln 2 is not \\ln 2, and \\sin^2 x + \\cos^2 x +
10^{-12} is not 1, while \\log_2 8 = 3 and \\cos\\frac{\\pi}{3} = \\frac{1}{2}.
"""

import decimal
import functools
import math
from decimal import Decimal
from fractions import Fraction

PREC = 120  # significant digits of a Decimal value
TOL = 100  # digits to which two Decimal values must agree
TRUSTED = 45  # most digits of an exact number (plus the values' size) a Decimal comparison trusts
MAX_TERMS = 64  # most monomials in an Exact: the work of a product is their square
MAX_RADICAND_BITS = 400  # largest integer whose root is taken exactly (it is factored)
MAX_ARGUMENT = 10**20  # largest argument of sin and cos (reduced by 2 pi with 25 more digits)

_CTX = decimal.Context(prec=PREC, Emax=10**6, Emin=-10**6,
                       traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])
_WIDE = _CTX.copy()
_WIDE.prec = PREC + 25  # for reducing a large argument of sin and cos
_SMALL = Decimal(1).scaleb(-PREC - 5)  # a series stops below this term
_PRIMES = [p for p in range(2, 1000) if all(p % q for q in range(2, math.isqrt(p) + 1))]
_ONE = (0, ())  # the monomial of a rational term


class Refuse(Exception):
    """The expression is not a number, or not one worth computing."""


class Undefined(Refuse):
    """The expression has no real value here: 1/0, \\sqrt{-1}, \\ln 0."""


class Exact:
    """sum(c * monomial): terms maps (pi exponent, ((base, exponent), ...)) to a Fraction c."""

    __slots__ = ("terms",)

    def __init__(self, terms):
        self.terms = terms


PI = Exact({(1, ()): Fraction(1)})


def _simplify(terms):
    """terms without zeros, as a rational when only the rational term is left."""
    terms = {k: c for k, c in terms.items() if c}
    if len(terms) > MAX_TERMS:
        raise Refuse
    if not terms:
        return 0
    if len(terms) == 1 and _ONE in terms:
        c = terms[_ONE]
        return c.numerator if c.denominator == 1 else c
    return Exact(terms)


def _terms(x):
    return x.terms if isinstance(x, Exact) else {_ONE: Fraction(x)}


# -----------------------------------------------------------------------------
# monomials: bases that are primes or unfactored parts, exponents in (0, 1)

@functools.lru_cache(maxsize=4096)
def _factor(n):
    """{base: multiplicity} of an integer n > 0: primes below 1000, then the rest as one base
    (r^m when the rest is a perfect power r^m)."""
    if n.bit_length() > MAX_RADICAND_BITS:
        raise Refuse
    out = {}
    for p in _PRIMES:
        if n % p == 0:
            k = 0
            while n % p == 0:
                n //= p
                k += 1
            out[p] = k
        if p * p > n:
            break
    if n > 1:
        m = 1
        for k in range(2, n.bit_length() // 9 + 1):  # the rest has no factor below 1000
            while (r := _iroot(n, k)) ** k == n:
                n, m = r, m * k
        out[n] = out.get(n, 0) + m
    return out


def _iroot(n, k):
    """floor(n ** (1/k)) for integers, by Newton's method."""
    x = 1 << -(-n.bit_length() // k)  # an upper bound
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            return x
        x = y


def _monomial(pi, rads):
    """(c, key) with pi^pi * prod(b^e for b, e in rads) = c * key: coprime bases, exponents in
    (0, 1)."""
    rads = {b: e for b, e in rads.items() if e}
    bases = [b for b in rads if b > 1000]  # only unfactored parts can share a factor
    for i, a in enumerate(bases):
        for b in bases[i + 1:]:
            if a in rads and b in rads and (g := math.gcd(a, b)) > 1:
                ea, eb = rads.pop(a), rads.pop(b)
                for base, e in ((a // g, ea), (b // g, eb), (g, ea + eb)):
                    for q, m in _factor(base).items():
                        rads[q] = rads.get(q, 0) + m * e
                return _monomial(pi, rads)
    c, out = Fraction(1), []
    for b, e in sorted(rads.items()):
        whole = math.floor(e)
        c *= Fraction(b) ** whole
        if e != whole:
            out.append((b, e - whole))
    return c, (pi, tuple(out))


def _root(r, e):
    """r^e for a rational r and a rational e, exactly: 8^{2/3} = 4, 12^{1/2} = 2 * 3^{1/2}."""
    r = Fraction(r)
    if r == 0:
        if e <= 0:
            raise Undefined
        return 0
    sign = 1
    if r < 0:
        if e.denominator % 2 == 0:
            raise Undefined  # \sqrt{-4} has no real value; \sqrt[3]{-8} = -2 has
        sign, r = -1 if e.numerator % 2 else 1, -r
    rads = {}
    for n, s in ((r.numerator, 1), (r.denominator, -1)):
        for q, m in _factor(n).items():
            rads[q] = rads.get(q, 0) + s * m * e
    c, key = _monomial(0, rads)
    return _simplify({key: sign * c})


def _times(a, b):
    """Product of two term dictionaries."""
    if len(a) * len(b) > MAX_TERMS * MAX_TERMS // 4:
        raise Refuse
    out = {}
    for (pa, ra), ca in a.items():
        for (pb, rb), cb in b.items():
            if ra and rb:
                rads = dict(ra)
                for base, e in rb:
                    rads[base] = rads.get(base, 0) + e
                c, key = _monomial(pa + pb, rads)
            else:
                c, key = 1, (pa + pb, ra or rb)
            out[key] = out.get(key, 0) + ca * cb * c
    return out


# -----------------------------------------------------------------------------
# arithmetic on any two values: rationals natively, Exact term by term, Decimal otherwise


def add(a, b):
    if type(a) is Decimal or type(b) is Decimal:
        return _CTX.add(inexact(a), inexact(b))
    if not isinstance(a, Exact) and not isinstance(b, Exact):
        return a + b
    out = dict(_terms(a))
    for k, c in _terms(b).items():
        out[k] = out.get(k, 0) + c
    return _simplify(out)


def neg(a):
    if isinstance(a, Exact):
        return Exact({k: -c for k, c in a.terms.items()})
    return a.copy_negate() if type(a) is Decimal else -a


def mul(a, b):
    if type(a) is Decimal or type(b) is Decimal:
        return _CTX.multiply(inexact(a), inexact(b))
    if not isinstance(a, Exact) and not isinstance(b, Exact):
        return a * b
    return _simplify(_times(_terms(a), _terms(b)))


def div(a, b):
    if type(a) is Decimal or type(b) is Decimal:
        b = inexact(b)
        if not b:
            raise Undefined
        return _CTX.divide(inexact(a), b)
    if not isinstance(b, Exact):
        if b == 0:
            raise Undefined
        return mul(a, Fraction(1) / b) if isinstance(a, Exact) else Fraction(a) / b
    # rationalise: (A + \sqrt{p} B)(A - \sqrt{p} B) = A^2 - p B^2 has no \sqrt{p}
    num, den = a, b
    while isinstance(den, Exact) and len(den.terms) > 1:
        halves = {base for _, rads in den.terms for base, e in rads if e == Fraction(1, 2)}
        others = any(e != Fraction(1, 2) for _, rads in den.terms for _, e in rads)
        if not halves or others:
            return div(inexact(a), inexact(b))  # 1/(\pi + 1), 1/(1 + \sqrt[3]{2}): not kept exact
        p = min(halves)
        conj = Exact({k: -c if any(base == p for base, _ in k[1]) else c
                      for k, c in den.terms.items()})
        num, den = mul(num, conj), mul(den, conj)
    if not isinstance(den, Exact):
        return div(num, den)
    (pi, rads), c = next(iter(den.terms.items()))  # one monomial: its inverse is a monomial
    inv_c, key = _monomial(-pi, {base: -e for base, e in rads})
    return mul(num, _simplify({key: inv_c / c}))


def power(a, b):
    """a^b: exact for an integer b, and for a rational b when a is rational or one monomial.
    Decimal operators would round to the thread's context: every Decimal step here names _CTX."""
    if type(a) is not Decimal and type(b) is not Decimal and not isinstance(b, Exact):
        b = Fraction(b)
        if b.denominator == 1:
            n = int(b)
            if not isinstance(a, Exact):
                if a == 0 and n < 0:
                    raise Undefined
                return Fraction(a) ** n
            out, base, k = 1, a, abs(n)
            while k:  # square and multiply
                if k & 1:
                    out = mul(out, base)
                k >>= 1
                base = mul(base, base) if k else base
            return out if n >= 0 else div(1, out)
        if not isinstance(a, Exact):
            return _root(a, b)
        if len(a.terms) == 1:
            (pi, rads), c = next(iter(a.terms.items()))
            rest_c, key = _monomial(pi * b, {base: e * b for base, e in rads})
            return mul(_root(c, b), _simplify({key: rest_c}))
    x, y = inexact(a), inexact(b)
    if x < 0 and y != y.to_integral_value():
        raise Undefined  # a complex number
    if x == 0 and y <= 0:
        raise Undefined
    return _CTX.power(x, y)


def absolute(a):
    if isinstance(a, Exact):
        return neg(a) if sign(a) < 0 else a
    return a.copy_abs() if type(a) is Decimal else abs(a)


def sign(a):
    """-1, 0 or 1; an Exact's sign from its Decimal value, refused when too close to 0 to tell."""
    if not isinstance(a, Exact):
        return (a > 0) - (a < 0)
    x = inexact(a)
    scale = max(inexact(_simplify({k: c})).copy_abs() for k, c in a.terms.items())
    if x.copy_abs() <= _CTX.scaleb(scale, -TOL):
        raise Refuse
    return 1 if x > 0 else -1


def is_integer(a):
    return not isinstance(a, (Exact, Decimal)) and a == int(a)


# -----------------------------------------------------------------------------
# inexact values: Decimals of PREC digits


@functools.lru_cache(maxsize=4)
def _pi(digits):
    """pi to `digits` digits: Machin's 16 atan(1/5) - 4 atan(1/239), in integers."""
    one = 10 ** (digits + 10)

    def atan_inv(x):  # atan(1/x) * one
        total = term = one // x
        n, x2 = 1, x * x
        while term:
            term //= x2
            n += 2
            total += (term if n % 4 == 1 else -term) // n
        return total

    exact = decimal.Context(prec=digits + 20)
    return exact.scaleb(Decimal(16 * atan_inv(5) - 4 * atan_inv(239)), -(digits + 10))


def inexact(a):
    """a as a Decimal of PREC digits."""
    if type(a) is Decimal:
        return a
    if not isinstance(a, Exact):
        a = Fraction(a)
        return _CTX.divide(Decimal(a.numerator), Decimal(a.denominator))
    total = Decimal(0)
    for (pi, rads), c in a.terms.items():
        x = inexact(c)
        if pi:
            x = _CTX.multiply(x, _CTX.power(_pi(PREC), inexact(pi)))
        for base, e in rads:
            x = _CTX.multiply(x, _CTX.power(Decimal(base), inexact(e)))
        total = _CTX.add(total, x)
    return total


def _series(x, k):
    """sum over n of (-1)^n x^(2n+k) / (2n+k)!: sin for k = 1, cos for k = 0."""
    if x.copy_abs() > MAX_ARGUMENT:
        raise Refuse
    x = _CTX.plus(_WIDE.remainder_near(x, _WIDE.multiply(2, _pi(_WIDE.prec))))  # in [-pi, pi]
    x2, term = _CTX.multiply(x, x), x if k else Decimal(1)
    total, n = term, k
    while term.copy_abs() > _SMALL:
        term = _CTX.divide(_CTX.multiply(term, x2), (n + 1) * (n + 2)).copy_negate()
        total, n = _CTX.add(total, term), n + 2
    return total


def _atan(x):
    if x.copy_abs() > 1:  # atan x = +-pi/2 - atan(1/x)
        half_pi = _HALF_PI if x > 0 else _HALF_PI.copy_negate()
        return _CTX.subtract(half_pi, _atan(_CTX.divide(1, x)))
    for _ in range(3):  # atan x = 2 atan(x / (1 + sqrt(1 + x^2))), three times: |x| < 0.1
        x = _CTX.divide(x, _CTX.add(1, _CTX.sqrt(_CTX.add(1, _CTX.multiply(x, x)))))
    total, term, n = x, x, 1
    x2 = _CTX.multiply(x, x)
    while term.copy_abs() > _SMALL:  # x - x^3/3 + x^5/5 - ...
        term = _CTX.multiply(term, x2).copy_negate()
        n += 2
        total = _CTX.add(total, _CTX.divide(term, n))
    return _CTX.multiply(8, total)


def _asin(x):
    if x.copy_abs() > 1:
        raise Undefined
    if x.copy_abs() == 1:
        return _CTX.multiply(_HALF_PI, x)
    return _atan(_CTX.divide(x, _CTX.sqrt(_CTX.subtract(1, _CTX.multiply(x, x)))))


def _positive(x):
    if x <= 0:
        raise Undefined
    return x


_sin, _cos = functools.partial(_series, k=1), functools.partial(_series, k=0)
_HALF_PI = _CTX.divide(_pi(PREC), 2)
FUNCTIONS = {
    "sin": _sin, "cos": _cos, "arcsin": _asin, "arctan": _atan, "exp": _CTX.exp,
    "tan": lambda x: _CTX.divide(_sin(x), _cos(x)),
    "sec": lambda x: _CTX.divide(1, _cos(x)),
    "csc": lambda x: _CTX.divide(1, _sin(x)),
    "cot": lambda x: _CTX.divide(_cos(x), _sin(x)),
    "arccos": lambda x: _CTX.subtract(_HALF_PI, _asin(x)),
    "ln": lambda x: _CTX.ln(_positive(x)),
    "sinh": lambda x: _CTX.divide(_CTX.subtract(_CTX.exp(x), _CTX.exp(x.copy_negate())), 2),
    "cosh": lambda x: _CTX.divide(_CTX.add(_CTX.exp(x), _CTX.exp(x.copy_negate())), 2),
    "tanh": lambda x: _CTX.divide(_CTX.subtract(1, _CTX.exp(_CTX.multiply(-2, x))),
                                  _CTX.add(1, _CTX.exp(_CTX.multiply(-2, x)))),
}


def function(name, x, base=None):
    """\\sin x, \\ln x, ..., or \\log_base x, as a Decimal."""
    try:
        if base is not None:
            return _CTX.divide(_CTX.ln(_positive(inexact(x))), _CTX.ln(_positive(inexact(base))))
        return FUNCTIONS[name](inexact(x))
    except (decimal.DivisionByZero, decimal.InvalidOperation):
        raise Undefined from None


def equal(x, y, digits):
    """Whether values x and y are equal (module docstring); digits: the most digits of an exact
    number met while computing either."""
    if type(x) is not Decimal and type(y) is not Decimal:
        return add(x, neg(y)) == 0
    x, y = inexact(x), inexact(y)
    size = max(x.copy_abs(), y.copy_abs(), Decimal(1))
    if digits + size.adjusted() > TRUSTED:
        return False  # too large to trust the comparison: refused, not guessed
    return _CTX.subtract(x, y).copy_abs() <= _CTX.scaleb(size, -TOL)

"""
A bounded exact evaluator of math expressions, standard library only (no CAS, no eval).
mathcompare.py compares answers with it; grader.py finds and normalises them.

evaluate(s, seed) takes one normalised expression (no spaces, except between two letters), such
as 2\\sqrt{2}, \\frac{x+1}{7}, 10!, \\binom{5}{2} or \\sin^2 x, and returns its Evaluation:
  - values exact while they can be (mathexact.py): 0.5, 1/2, \\frac{1}{2} and 5e-1 are
    Fraction(1, 2), 0.\\overline{3} is 1/3, \\sqrt{8} is 2 * 2^{1/2}, \\pi stays \\pi; a Decimal of
    mathexact.PREC digits where no exact form is kept (\\sin 1, \\ln 2);
  - one value for a constant; for an expression in letters, one value at each of N_POINTS
    points drawn from `seed` (grader.py hashes both answers into it, so an answer cannot know its
    points in advance); None where it has no real value (1/0, 1/(x-1) at x = 1, \\sqrt{x} at
    x < 0). i is a letter like any other;
  - digits: the most digits of an exact number met, which bounds how close to a Decimal value a
    wrong one can come (mathexact.equal).
The work is bounded, not the length: numbers up to MAX_BITS bits (a 20,000-digit integer is
evaluated exactly), at most MAX_WORK bits of results over all points, MAX_DEPTH nested brackets.
An expression over a bound is refused (None), and so is anything that is not one expression:
a word, \\infty, a tuple "(1,2)".
"""

import functools
import math
import random
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from tasks.mathexact import (FUNCTIONS, PI, Exact, Refuse as _Refuse, Undefined as _Undefined,
                             absolute, add, div, function, is_integer, mul, neg, power)

# A wrong identity passes only if the nonzero difference of the two sides vanishes at every point
# where they are defined, and mathcompare asks for at least N_POINTS // 2 of those. Each letter
# is +-p/q with p, q uniform in 1..POINT_RANGE, so no value has probability above 1/POINT_RANGE;
# by Schwartz-Zippel a difference whose numerator has degree d vanishes at one point with
# probability at most d / POINT_RANGE, and at 6 independent points with at most
# (d / 10^6)^6: 10^-24 for d = 100. The points come from a hash of both answers, so an answer
# cannot be written to vanish at them (tests/test_grader_adversarial.py measures the bound on small
# ranges).
N_POINTS = 12  # points per evaluation: the first half positive (\sqrt{x} is defined), half negative
POINT_RANGE = 10**6
MAX_BITS = 80_000  # largest exact numerator or denominator, about 24,000 digits
MAX_WORK = 1_000_000  # most work of an evaluation, all points together, in bits of results
MAX_DEPTH = 50  # most bracket / exponent nesting the parser follows (bounds the Python stack)
FUNCTION_WORK = 20_000  # the work of one \sin, \ln, ...: a series of 120-digit Decimals

GREEK = ("alpha", "beta", "gamma", "delta", "epsilon", "theta", "lambda", "mu", "rho", "sigma",
         "tau", "phi", "varphi", "psi", "omega", "Delta", "Omega")  # letters; \pi is a number

# -----------------------------------------------------------------------------
# values: a recursive-descent parser over exact values

# (number, repeating digits, exponent, other); two letters are two tokens, two factors, so a
# power binds to the second: ab^2 is a * b^2, not (ab)^2; a word of three letters is one token
_TOKEN = re.compile(r"(\d+\.?\d*|\.\d+)(?:\\overline\{(\d+)\}|[eE]([-+]?\d+))?"
                    r"|(\\[A-Za-z]+|[A-Za-z]{3,}|\S)")
_FRACS = ("\\frac", "\\dfrac", "\\tfrac", "\\cfrac")
_IMPLICIT = {"(", "\\pi", "\\sqrt", "\\binom", *_FRACS, *("\\" + f for f in FUNCTIONS),
             *("\\" + g for g in GREEK), "\\log"}  # tokens that start a factor of "2\pi", "2x"


_END_OF_TERM = {"+", "-", ")", "}", "]", "|", None}


@dataclass(frozen=True)
class Evaluation:
    """What evaluate returns: values (one per point, None where undefined; one for a constant),
    whether the expression has letters, and the most digits of an exact number met."""
    values: tuple
    letters: bool
    digits: int


def _int(digits):
    """int(digits) for any length: Python refuses to convert more than 4300 digits at once."""
    value = 0
    for i in range(0, len(digits), 4000):
        chunk = digits[i:i + 4000]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _number(digits, repeating, exponent):
    """The exact value of a number token: "1.5e3" -> 1500, "0.1\\overline{6}" -> 1/6."""
    whole, _, decimals = digits.partition(".")
    if len(digits) * 3.33 > MAX_BITS:
        raise _Refuse
    value = Fraction(_int(whole + decimals), 10 ** len(decimals)) if decimals else _int(whole)
    if repeating:  # 0.1\overline{6} = (16 - 1) / 90
        shifted = _int(whole + decimals + repeating) - _int(whole + decimals)
        value = Fraction(shifted, 10 ** len(decimals) * (10 ** len(repeating) - 1))
    if exponent:
        if abs(int(exponent)) * 3.33 > MAX_BITS:
            raise _Refuse
        value = value * Fraction(10) ** int(exponent)
    return value


@functools.lru_cache(maxsize=4096)
def _point(seed, name, k):
    """The value of letter `name` at point k of `seed`: +-p/q, p and q uniform in 1..POINT_RANGE."""
    rng = random.Random(f"{seed}/{name}/{k}")  # a string seed: the same on every run and machine
    sign = 1 if k < N_POINTS // 2 else -1  # half the points positive (\sqrt{x} is defined there),
    return Fraction(sign * rng.randint(1, POINT_RANGE), rng.randint(1, POINT_RANGE))  # half not


class _Parser:
    """Values of expressions at one point, such as 2\\sqrt{2}, \\frac{x+1}{7}, 10!, \\sin^2 x:

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/") unary | implicit)*     implicit product: 2\\pi, 3x, 2(1+1), xy
    unary := ("+" | "-")* power
    power := atom "!"* ("^" unary)?                    right-associative: 2^3^2 = 2^9
    atom  := number | letter | \\pi | (expr) | |expr| | {expr} | {expr \\over expr}
           | \\frac{expr}{expr} | \\sqrt[expr]{expr} | \\binom{expr}{expr} | function power
    """

    def __init__(self, tokens, k, seed, work):
        self.tokens, self.k, self.seed = tokens, k, seed
        self.i = self.depth = self.bits = self.bars = 0  # bars: |...| open around this point
        self.work = work  # carried over from the points before: the budget is per evaluation
        self.letters = False

    def ratio(self):
        """expr, or expr \\over expr: {a \\over b} is a fraction, also once its braces are gone."""
        value = self.expr()
        if self.peek() == "\\over":
            self.take()
            value = self.divide(value, self.expr())
        return value

    def peek(self):
        return self.tokens[self.i]  # None at the end

    def take(self, expected=None):
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise _Refuse
        self.i += 1
        return token

    def check(self, x):
        """x itself, unless it is too large to go on with; counts its work and its digits."""
        if type(x) is Decimal:
            self.work += 300
        elif isinstance(x, Exact):
            bits = max(max(c.numerator.bit_length(), c.denominator.bit_length(),
                           *(base.bit_length() for base, _ in key[1]))
                       for key, c in x.terms.items())
            self.work += (100 + bits) * len(x.terms)
            self.bits = max(self.bits, bits)
        else:
            x = x.numerator if x.denominator == 1 else x  # an int where it can be: faster
            bits = max(x.numerator.bit_length(), x.denominator.bit_length())
            # the cost of an operation: a fixed part, and a fraction's gcd grows with bits^2
            self.work += 100 + bits + (0 if type(x) is int else bits * bits // 2048)
            self.bits = max(self.bits, bits)
        if self.bits > MAX_BITS or self.work > MAX_WORK:
            raise _Refuse
        return x

    def expr(self):
        value = self.term()
        while (op := self.peek()) in ("+", "-"):
            self.i += 1
            rhs = self.tokens[self.i]  # an int is never the last token, None is
            if type(rhs) is int and type(value) is int and self.tokens[self.i + 1] in _END_OF_TERM:
                self.i += 1  # a plain integer term, as in a long sum: no calls, same bounds
                value = value + rhs if op == "+" else value - rhs
                bits = value.bit_length()  # integers cancel to integers: their size is enough
                self.work += bits
                if bits > self.bits:
                    self.bits = bits
                if self.work > MAX_WORK or bits > MAX_BITS:
                    raise _Refuse
                continue
            rhs = self.term()
            value = self.check(add(value, rhs if op == "+" else neg(rhs)))
        return value

    def term(self):
        value = self.unary()
        while True:
            token = self.peek()
            if token in ("*", "/"):
                self.take()
                rhs = self.unary()
                value = self.check(mul(value, rhs)) if token == "*" else self.divide(value, rhs)
            elif (token in _IMPLICIT or (isinstance(token, str) and token.isalpha())
                  or (token == "|" and not self.bars)  # 2|x|; inside |...| a bar closes
                  or (type(token) is int and self.tokens[self.i - 1] == "!")):  # 4!2!
                value = self.check(mul(value, self.power()))
            else:
                return value

    def unary(self):
        sign = 1
        while self.peek() in ("+", "-"):
            sign *= -1 if self.take() == "-" else 1
        value = self.power()
        return value if sign > 0 else neg(value)

    def power(self):
        self.depth += 1  # every nesting (brackets, exponents, arguments) passes through here
        if self.depth > MAX_DEPTH:
            raise _Refuse
        value = self.atom()
        while self.peek() == "!":
            self.take()
            if not is_integer(value) or not 0 <= value <= 5000:  # 5000! has 16,326 digits
                raise _Refuse
            value = self.check(math.factorial(int(value)))
        if self.peek() == "^":
            self.take()
            value = self.pow(value, self.unary())
        self.depth -= 1
        return value

    def pow(self, base, exp):
        """base ** exp, exact where mathexact keeps it: 2^{10}, 8^{2/3}, (1+\\sqrt{2})^2."""
        if type(exp) in (int, Fraction) and type(base) is not Decimal:
            if isinstance(base, Exact):
                bits = max(max(c.numerator.bit_length(), c.denominator.bit_length())
                           for c in base.terms.values())
            else:
                bits = max(abs(Fraction(base).numerator).bit_length(),
                           Fraction(base).denominator.bit_length())
            if max(bits, 1) * abs(exp) > MAX_BITS:  # the size, known beforehand
                raise _Refuse
        return self.check(power(base, exp))

    def atom(self):
        token = self.take()
        if not isinstance(token, str):
            bits = max(token.numerator.bit_length(), token.denominator.bit_length())
            self.bits = max(self.bits, bits)  # "10^{-12}" is small, but its digits count
            return token
        if token == "\\pi":
            return PI
        if token == "(":
            value = self.expr()
            self.take(")")
            return value
        if token == "|":
            self.bars += 1
            value = self.expr()
            self.take("|")
            self.bars -= 1
            return absolute(value)
        if token == "{":
            value = self.ratio()
            self.take("}")
            return value
        if token in _FRACS:
            return self.divide(self.group(), self.group())
        if token == "\\sqrt":
            n = self.group("[", "]") if self.peek() == "[" else 2
            return self.pow(self.atom(), div(1, n))  # \sqrt{x}^2 is (\sqrt{x})^2
        if token == "\\binom":
            n, k = self.group(), self.group()
            if not is_integer(n) or not is_integer(k) or not 0 <= n <= 5000:
                raise _Refuse
            return self.check(math.comb(int(n), int(k)))
        return self.function(token.lstrip("\\"), token)

    def function(self, name, token):
        """A letter, a Greek letter or a function of a power."""
        if name in FUNCTIONS or name == "log":
            exp = None
            if self.peek() == "^":  # \sin^2 x = (\sin x)^2
                self.take()
                exp = self.power()
            base = None
            if name == "log":  # only \log_b: a bare \log is base 10 or e, depending on the book
                self.take("_")
                base = self.power()
            self.work += FUNCTION_WORK
            value = self.check(function(name, self.argument(), base))
            return value if exp is None else self.pow(value, exp)
        if not (token.isalpha() and len(token) == 1) and name not in GREEK:
            raise _Refuse  # a word, or a command with no value (\infty, \cup)
        self.letters = True
        if self.peek() == "_":  # x_1, x_{12}
            self.take()
            sub = self.take()
            if sub == "{":
                sub = self.take()
                self.take("}")
            token += "_" + str(sub)
        value = _point(self.seed, token, self.k)
        self.bits = max(self.bits, value.numerator.bit_length(), value.denominator.bit_length())
        return value

    def argument(self):
        """A function's argument without brackets: \\sin 2x is \\sin(2x); \\sin x \\cos x stops."""
        value = self.power()
        while isinstance(token := self.peek(), str) and (
                (token.isalpha() and token not in FUNCTIONS) or token[1:] in GREEK):
            value = self.check(mul(value, self.power()))
        return value

    def divide(self, a, b):
        return self.check(div(a, b))

    def group(self, left="{", right="}"):
        self.take(left)
        value = self.ratio()
        self.take(right)
        return value


@functools.lru_cache(maxsize=4096)  # a gold answer is evaluated once per group, not per sample
def evaluate(s, seed=""):
    """The Evaluation of expression s at the points of `seed`, or None if s is not an expression
    or is too large to compute (module docstring)."""
    try:
        tokens = [(int(n) if n.isdigit() and len(n) < 4000 and not r and not e else _number(n, r, e))
                  if n else other for n, r, e, other in _TOKEN.findall(s)] + [None]
    except (_Refuse, ValueError):
        return None
    values, letters, work, bits = [], False, 0, 0
    for k in range(N_POINTS):
        parser = _Parser(tokens, k, seed, work)
        try:
            values.append(parser.ratio())
            if parser.peek() is not None:
                raise _Refuse  # tokens left over: "(1,2" or "2)3"
        except _Undefined:
            values.append(None)
        except (_Refuse, ArithmeticError, ValueError, TypeError, RecursionError):
            return None
        work, bits = parser.work, max(bits, parser.bits)
        letters = letters or parser.letters
        if k == 0 and not letters:
            break  # a constant: one point is enough
    return Evaluation(tuple(values), letters, math.ceil(bits * math.log10(2)))

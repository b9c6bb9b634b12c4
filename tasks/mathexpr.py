"""
A bounded exact evaluator of math expressions, standard library only (no CAS, no eval).
mathcompare.py compares answers with it; grader.py finds and normalises them.

evaluate(s) takes one normalised expression (no spaces, except between two letters), such as
2\\sqrt{2}, \\frac{x+1}{7}, 10!, \\binom{5}{2} or \\sin^2 x, and returns its values:
  - exact fractions while they can be: 0.5, 1/2, \\frac{1}{2} and 5e-1 are Fraction(1, 2),
    0.\\overline{3} is 1/3; floats once a value is irrational (\\sqrt{2}, \\pi, \\sin 1);
  - one value for a constant; for an expression in letters, one value at each of N_POINTS random
    rational points, the same points for the same letter on every run (a fixed seed); None where
    it has no real value (1/0, 1/(x-1) at x = 1, \\sqrt{x} at x < 0). i is a letter like any other.
The work is bounded, not the length: numbers up to MAX_BITS bits (a 20,000-digit integer is
evaluated exactly), at most MAX_WORK bits of results per evaluation, MAX_DEPTH nested brackets.
An expression over a bound is refused (None), and so is anything that is not one expression:
a word, \\infty, a tuple "(1,2)".
"""

import functools
import math
import random
import re
from fractions import Fraction

N_POINTS = 4  # random points per letter: a wrong identity passes each with chance ~ degree / 10^5
MAX_BITS = 80_000  # largest exact numerator or denominator, about 24,000 digits
MAX_WORK = 1_000_000  # most work per evaluation, in bits of results (bounds its time)
MAX_DEPTH = 50  # most bracket / exponent nesting the parser follows (bounds the Python stack)

GREEK = ("alpha", "beta", "gamma", "delta", "epsilon", "theta", "lambda", "mu", "rho", "sigma",
         "tau", "phi", "varphi", "psi", "omega", "Delta", "Omega")  # letters; \pi is a number

# -----------------------------------------------------------------------------
# values: a recursive-descent parser over exact fractions (floats once irrational)

_TOKEN = re.compile(r"(\d+\.?\d*|\.\d+)(?:\\overline\{(\d+)\}|[eE]([-+]?\d+))?"
                    r"|(\\[A-Za-z]+|[A-Za-z]+|\S)")  # (number, repeating digits, exponent, other)
_FUNCTIONS = {"sin": math.sin, "cos": math.cos, "tan": math.tan, "sec": lambda x: 1 / math.cos(x),
              "csc": lambda x: 1 / math.sin(x), "cot": lambda x: 1 / math.tan(x),
              "arcsin": math.asin, "arccos": math.acos, "arctan": math.atan, "ln": math.log,
              "exp": math.exp, "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh}
_FRACS = ("\\frac", "\\dfrac", "\\tfrac", "\\cfrac")
_IMPLICIT = {"(", "\\pi", "\\sqrt", "\\binom", *_FRACS, *("\\" + f for f in _FUNCTIONS),
             *("\\" + g for g in GREEK), "\\log"}  # tokens that start a factor of "2\pi", "2x"


_END_OF_TERM = {"+", "-", ")", "}", "]", "|", None}


class _Refuse(Exception):
    """The expression is not a number, or not one worth computing."""


class _Undefined(_Refuse):
    """The expression has no real value at this point: 1/(x-1) at x = 1, \\sqrt{x} at x < 0."""


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


@functools.lru_cache(maxsize=1024)
def _point(name, k):
    """The value of letter `name` at point k: a random rational, the same for every answer."""
    rng = random.Random(f"{name}/{k}")  # a string seed: the same on every run and machine
    sign = 1 if k < N_POINTS // 2 else -1  # half the points positive (\sqrt{x} is defined there),
    return Fraction(sign * rng.randint(1, 10**4), rng.randint(1, 97))  # half negative (|x| != x)


class _Parser:
    """Values of expressions at one point, such as 2\\sqrt{2}, \\frac{x+1}{7}, 10!, \\sin^2 x:

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/") unary | implicit)*     implicit product: 2\\pi, 3x, 2(1+1), xy
    unary := ("+" | "-")* power
    power := atom "!"* ("^" unary)?                    right-associative: 2^3^2 = 2^9
    atom  := number | letter | \\pi | (expr) | |expr| | {expr} | {expr \\over expr}
           | \\frac{expr}{expr} | \\sqrt[expr]{expr} | \\binom{expr}{expr} | function power
    """

    def __init__(self, tokens, k):
        self.tokens, self.k = tokens, k
        self.i = self.depth = self.work = 0
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
        """x itself, unless it is too large to go on with: a huge fraction, a non-finite float."""
        if isinstance(x, float):
            if not math.isfinite(x):
                raise _Undefined
            return x
        x = x.numerator if x.denominator == 1 else x  # an int where it can be: faster
        bits = max(x.numerator.bit_length(), x.denominator.bit_length())
        # the cost of an operation: a fixed part, and a fraction's gcd grows with bits^2
        self.work += 100 + bits + (0 if type(x) is int else bits * bits // 2048)
        if bits > MAX_BITS or self.work > MAX_WORK:
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
                self.work += value.bit_length()
                if self.work > MAX_WORK or value.bit_length() > MAX_BITS:
                    raise _Refuse
                continue
            rhs = self.term()
            value = self.check(value + rhs if op == "+" else value - rhs)
        return value

    def term(self):
        value = self.unary()
        while True:
            token = self.peek()
            if token in ("*", "/"):
                self.take()
                rhs = self.unary()
                value = self.check(value * rhs) if token == "*" else self.divide(value, rhs)
            elif (token in _IMPLICIT or (isinstance(token, str) and token.isalpha())
                  or (type(token) is int and self.tokens[self.i - 1] == "!")):  # 4!2!
                value = self.check(value * self.power())
            else:
                return value

    def unary(self):
        sign = 1
        while self.peek() in ("+", "-"):
            sign *= -1 if self.take() == "-" else 1
        return sign * self.power()

    def power(self):
        self.depth += 1  # every nesting (brackets, exponents, arguments) passes through here
        if self.depth > MAX_DEPTH:
            raise _Refuse
        value = self.atom()
        while self.peek() == "!":
            self.take()
            if value != int(value) or not 0 <= value <= 5000:  # 5000! has 16,326 digits
                raise _Refuse
            value = self.check(math.factorial(int(value)))
        if self.peek() == "^":
            self.take()
            value = self.pow(value, self.unary())
        self.depth -= 1
        return value

    def pow(self, base, exp):
        """base ** exp: exact for a fraction to an integer power, a float otherwise (\\sqrt{2})."""
        if not isinstance(base, float) and not isinstance(exp, float) and exp == int(exp):
            bits = max(abs(base.numerator).bit_length(), base.denominator.bit_length(), 1)
            if bits * abs(int(exp)) > MAX_BITS:  # the size, known beforehand
                raise _Refuse
            if base == 0 and exp < 0:
                raise _Undefined
            return self.check(Fraction(base) ** int(exp))
        if base < 0 and not float(exp).is_integer():
            raise _Undefined  # a complex number
        try:
            return self.check(float(base) ** float(exp))
        except (OverflowError, ZeroDivisionError):
            raise _Undefined from None

    def atom(self):
        token = self.take()
        if not isinstance(token, str):
            return token
        if token == "\\pi":
            return math.pi
        if token in ("(", "|"):
            value = self.expr()
            self.take(")" if token == "(" else "|")
            return value if token == "(" else abs(value)
        if token == "{":
            value = self.ratio()
            self.take("}")
            return value
        if token in _FRACS:
            return self.divide(self.group(), self.group())
        if token == "\\sqrt":
            n = self.group("[", "]") if self.peek() == "[" else 2
            return self.pow(self.atom(), Fraction(1) / n)  # \sqrt{x}^2 is (\sqrt{x})^2
        if token == "\\binom":
            n, k = self.group(), self.group()
            if n != int(n) or k != int(k) or not 0 <= n <= 5000:
                raise _Refuse
            return self.check(math.comb(int(n), int(k)))
        return self.function(token.lstrip("\\"), token)

    def function(self, name, token):
        """A letter, a run of two letters (a product), a Greek letter or a function of a power."""
        if name in _FUNCTIONS or name == "log":
            exp = None
            if self.peek() == "^":  # \sin^2 x = (\sin x)^2
                self.take()
                exp = self.power()
            base = None
            if name == "log":  # only \log_b: a bare \log is base 10 or e, depending on the book
                self.take("_")
                base = self.power()
            try:
                x = float(self.argument())
                value = _FUNCTIONS[name](x) if base is None else math.log(x) / math.log(base)
            except (ValueError, ZeroDivisionError, OverflowError):
                raise _Undefined from None
            return self.check(value) if exp is None else self.pow(self.check(value), exp)
        is_letters = token.isalpha() and len(token) <= 2
        if not is_letters and name not in GREEK:
            raise _Refuse  # a word, or a command with no value (\infty, \cup)
        self.letters = True
        if self.peek() == "_":  # x_1, x_{12}
            if len(token) > 1:
                raise _Refuse
            self.take()
            sub = self.take()
            if sub == "{":
                sub = self.take()
                self.take("}")
            token += "_" + str(sub)
        value = 1
        for letter in ([token] if "_" in token or name in GREEK else token):
            value *= _point(letter, self.k)
        return value

    def argument(self):
        """A function's argument without brackets: \\sin 2x is \\sin(2x); \\sin x \\cos x stops."""
        value = self.power()
        while isinstance(token := self.peek(), str) and (
                (token.isalpha() and token not in _FUNCTIONS) or token[1:] in GREEK):
            value = self.check(value * self.power())
        return value

    def divide(self, a, b):
        if b == 0:
            raise _Undefined
        return self.check(a / b if isinstance(a, float) or isinstance(b, float) else Fraction(a) / b)

    def group(self, left="{", right="}"):
        self.take(left)
        value = self.ratio()
        self.take(right)
        return value


@functools.lru_cache(maxsize=4096)  # a gold answer is evaluated once per group, not per sample
def evaluate(s):
    """(values, has_letters) of expression s: one value for a constant, else one per point (None
    where s is undefined); None if s is not an expression or is too large to compute."""
    try:
        tokens = [(int(n) if n.isdigit() and len(n) < 4000 and not r and not e else _number(n, r, e))
                  if n else other for n, r, e, other in _TOKEN.findall(s)] + [None]
    except (_Refuse, ValueError):
        return None
    values, letters = [], False
    for k in range(N_POINTS):
        parser = _Parser(tokens, k)
        try:
            values.append(parser.ratio())
            if parser.peek() is not None:
                raise _Refuse  # tokens left over: "(1,2" or "2)3"
        except _Undefined:
            values.append(None)
        except (_Refuse, ArithmeticError, ValueError, TypeError, RecursionError):
            return None
        letters = letters or parser.letters
        if k == 0 and not letters:
            return values, False  # a constant: one point is enough
    return values, letters

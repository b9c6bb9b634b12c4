"""
Whether two math answers are the same: a bounded exact evaluator and comparator, standard library
only (no CAS, no eval). reward.py finds and normalises the answers; this file compares them.

same(p, g) takes two normalised answers (no spaces, except between two letters) and compares:
  - values: exact fractions, 0.5 = 1/2 = \\frac{1}{2} = 5e-1, 0.\\overline{3} = 1/3,
    \\binom{5}{2} = 10 = 5!/12; irrational values (\\sqrt{2}, \\pi, \\sin 1) are floats equal
    within REL_TOL, so 1.414 is not \\sqrt{2};
  - expressions in letters, without a CAS: both sides are evaluated at N_POINTS random rational
    points, the same points for the same letter (a Schwartz-Zippel test, fixed seed). (x+1)^2 =
    x^2+2x+1 and 3+4i = 4i+3 (i is a letter like any other). A point where one side is undefined
    and the other is not makes them differ: \\sqrt{x^2} is not x;
  - equations: lhs - rhs equal up to a non-zero constant factor, y = 2x+1 and 2x-y+1 = 0;
    against a value, a chain "x = 2+3 = 5" is worth its last side when its first side has
    letters and every side without letters equals the last (so "x = 5 = 6" and "5 = 5" are not 5);
  - inequalities in one letter are intervals: x \\ge 3 = [3, \\infty), -1 < x < 2 = (-1, 2);
    unions \\cup in any order; tuples and intervals element by element with the same brackets;
    sets and bare lists "1, 2" in any order.
The work is bounded, not the length: numbers up to MAX_BITS bits (a 20,000-digit integer is
compared exactly), at most MAX_WORK bits of results per evaluation, MAX_DEPTH nested brackets.
An answer over a bound is refused, and a refused answer is simply not equal.
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
MAX_ITEMS = 16  # most elements of a set or tuple
MAX_NEST = 4  # most levels of nesting compared, as in a set of tuples
REL_TOL, ABS_TOL = 1e-9, 1e-12  # floats only: \sqrt{8} = 2\sqrt{2}, but 1.414 != \sqrt{2}

# -----------------------------------------------------------------------------
# structure: unions, lists, intervals, inequalities, equations

_GREEK = ("alpha", "beta", "gamma", "delta", "epsilon", "theta", "lambda", "mu", "rho", "sigma",
          "tau", "phi", "varphi", "psi", "omega", "Delta", "Omega")  # letters; \pi is a number
_NAME = re.compile(r"(?:[A-Za-z]|\\(?:%s))(?:_\{?\w+\}?)?" % "|".join(_GREEK))  # x, x_1, \theta
_SEPARATORS = {sep: re.compile(r"[(\[{]|[)\]}]|" + sep) for sep in (",", "=", "\\\\cup", "[<>≤≥]")}


def _split_top(s, sep):
    """s split at sep outside all brackets, the separators kept between the parts:
    "1<x≤2" -> ["1", "<", "x", "≤", "2"]; [s] if its brackets do not balance."""
    pieces, depth, start = [], 0, 0
    for m in _SEPARATORS[sep].finditer(s):
        if m[0] in "([{)]}":
            depth += 1 if m[0] in "([{" else -1
            if depth < 0:
                return [s]
        elif depth == 0:
            pieces += [s[start:m.start()], m[0]]
            start = m.end()
    return pieces + [s[start:]] if depth == 0 else [s]


def _interval(s):
    """An inequality in one letter as the interval it defines: "x≥3" -> "[3,\\infty)", else None."""
    pieces = _split_top(s, "[<>≤≥]")
    parts, ops = pieces[::2], pieces[1::2]
    if len(parts) not in (2, 3):
        return None
    if all(op in ">≥" for op in ops):  # "5>x>2" is "2<x<5"
        parts, ops = parts[::-1], ["<" if op == ">" else "≤" for op in ops[::-1]]
    if not all(op in "<≤" for op in ops) or "" in parts:
        return None
    names = [_NAME.fullmatch(x) is not None for x in parts]
    if names.count(True) != 1 or (len(parts) == 3 and not names[1]):
        return None
    if len(parts) == 2:  # "x<3" or "3<x"
        parts = ["-\\infty"] + parts if names[0] else parts + ["\\infty"]
        ops = ["<"] + ops if names[0] else ops + ["<"]
    left = "(" if ops[0] == "<" else "["
    right = ")" if ops[1] == "<" else "]"
    return f"{left}{parts[0]},{parts[2]}{right}"


def structure(s):
    """(kind, elements): kind "" for one value; "{}" for a set or a bare list "1,2", whose order
    does not matter; or the outer brackets of a tuple or an interval, "()", "[)", ..."""
    if s[:1] + s[-1:] in ("()", "[]", "(]", "[)", "{}") and len(s) > 2:
        if len(inner := _split_top(s[1:-1], ",")[::2]) > 1:
            return ("{}" if s[0] == "{" else s[0] + s[-1]), inner
    top = _split_top(s, ",")[::2]
    return ("{}", top) if len(top) > 1 else ("", [s])


def _matched(ps, gs, depth):
    """Whether each element of ps matches a different element of gs, in any order."""
    if len(ps) != len(gs) or len(ps) > MAX_ITEMS:
        return False
    unmatched = list(gs)
    for a in ps:
        j = next((j for j, b in enumerate(unmatched) if same(a, b, depth + 1)), None)
        if j is None:
            return False
        del unmatched[j]
    return True


def same(p, g, depth=0):
    """Whether normalised answers p and g are the same answer (rules in the module docstring)."""
    if p == g:
        return True
    if depth > MAX_NEST or not p or not g:
        return False
    # 1) inequalities become intervals, unions are matched part by part in any order
    p, g = _interval(p) or p, _interval(g) or g
    p_cup, g_cup = _split_top(p, "\\\\cup")[::2], _split_top(g, "\\\\cup")[::2]
    if len(p_cup) > 1 or len(g_cup) > 1:
        return _matched(p_cup, g_cup, depth)
    # 2) tuples and intervals element by element, sets and lists in any order
    (p_kind, ps), (g_kind, gs) = structure(p), structure(g)
    if p_kind or g_kind:
        if p_kind != g_kind or len(ps) != len(gs) or len(ps) > MAX_ITEMS:
            return False
        if p_kind == "{}":
            return _matched(ps, gs, depth)
        return all(same(a, b, depth + 1) for a, b in zip(ps, gs))
    # 3) equations and chains
    p_sides, g_sides = _split_top(p, "=")[::2], _split_top(g, "=")[::2]
    if len(p_sides) > 1 and len(g_sides) > 1:
        return _same_equation(p_sides, g_sides, depth)
    if len(p_sides) > 1:
        return (last := _chain_value(p_sides)) is not None and same(last, g, depth + 1)
    if len(g_sides) > 1:
        return (last := _chain_value(g_sides)) is not None and same(p, last, depth + 1)
    # 4) one value each
    return _same_value(p, g)


def _chain_value(sides):
    """The value a chain states: "x = 2+3 = 5" is 5, "17 = a+b" is 17, if every side without
    letters agrees with it; "5 = 5" and "x = 5 = 6" state nothing (None)."""
    if "" in sides:
        return None
    letters = [(v := _evaluate(side)) is None or v[1] for side in sides]  # a word counts as letters
    if letters[0]:
        value = sides[-1]
    elif letters[-1] and len(sides) == 2:
        value = sides[0]
    else:
        return None
    if any(not has and not _same_value(side, value) for side, has in zip(sides, letters)):
        return None  # "x = 5 = 6"
    return value


def _same_equation(p_sides, g_sides, depth):
    """Equations: lhs - rhs equal up to a non-zero constant factor; "x=5" and "y=5" are both 5."""
    if len(p_sides) == len(g_sides) == 2:
        a = _evaluate(f"({p_sides[0]})-({p_sides[1]})")
        b = _evaluate(f"({g_sides[0]})-({g_sides[1]})")
        if a is not None and b is not None and a[1] and b[1] and _agree(a, b, proportional=True):
            return True
    p_last, g_last = _chain_value(p_sides), _chain_value(g_sides)
    names = _NAME.fullmatch(p_sides[0]) and _NAME.fullmatch(g_sides[0])  # "x^2=1" is not "x=1"
    if p_last is None or g_last is None or not names:
        return False
    p_value, g_value = _evaluate(p_last), _evaluate(g_last)
    constants = p_value is not None and g_value is not None and not p_value[1] and not g_value[1]
    return constants and same(p_last, g_last, depth + 1)


def _same_value(p, g):
    """Whether p and g are equal numbers, or equal expressions at every point."""
    return _agree(_evaluate(p), _evaluate(g))


def _agree(a, b, proportional=False):
    """Whether evaluations a and b are equal at every point (or a = r * b for one r != 0).

    A point where only one is defined is a disagreement; at least 2 points must be defined
    (1 for two constants). A constant is one value, the same at every point.
    """
    if a is None or b is None:
        return False
    (xs, a_letters), (ys, b_letters) = a, b
    n = max(len(xs), len(ys))
    pairs = [(x, y) for x, y in zip(xs * n if len(xs) == 1 else xs, ys * n if len(ys) == 1 else ys)
             if x is not None or y is not None]
    if any(x is None or y is None for x, y in pairs):
        return False
    if len(pairs) < (2 if a_letters or b_letters else 1):
        return False
    ratio = 1
    if proportional:
        x, y = next(((x, y) for x, y in pairs if y != 0), (0, 0))
        if x == 0:
            return False
        ratio = x / y
    return all(_close(x, ratio * y) for x, y in pairs)


def _close(x, y):
    if isinstance(x, float) or isinstance(y, float):
        try:
            return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=ABS_TOL)
        except OverflowError:  # a fraction too large for a float
            return False
    return x == y


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
             *("\\" + g for g in _GREEK), "\\log"}  # tokens that start a factor of "2\pi", "2x"


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
        if not is_letters and name not in _GREEK:
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
        for letter in ([token] if "_" in token or name in _GREEK else token):
            value *= _point(letter, self.k)
        return value

    def argument(self):
        """A function's argument without brackets: \\sin 2x is \\sin(2x); \\sin x \\cos x stops."""
        value = self.power()
        while isinstance(token := self.peek(), str) and (
                (token.isalpha() and token not in _FUNCTIONS) or token[1:] in _GREEK):
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
def _evaluate(s):
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

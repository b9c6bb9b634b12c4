"""
Whether two math answers are the same: a structural comparator over mathexpr.py's bounded exact
evaluator, standard library only. grader.py finds and normalises the answers; this file
compares them.

same(p, g) takes two normalised answers (no spaces, except between two letters) and compares:
  - values: exact fractions exactly, 0.5 = 1/2 = \\frac{1}{2} = 5e-1, 0.\\overline{3} = 1/3,
    \\binom{5}{2} = 10 = 5!/12; irrational values (\\sqrt{2}, \\pi, \\sin 1) are floats equal
    within REL_TOL, so 1.414 is not \\sqrt{2};
  - expressions in letters, without a CAS: both sides are evaluated at mathexpr's random
    rational points, the same points for the same letter, and must agree at each (a
    Schwartz-Zippel test, fixed seed). (x+1)^2 = x^2+2x+1 and 3+4i = 4i+3 (i is a letter like
    any other). A point where one side is undefined and the other is not makes them differ:
    \\sqrt{x^2} is not x;
  - equations: lhs - rhs equal up to a non-zero constant factor, y = 2x+1 and 2x-y+1 = 0;
    against a value, a chain "x = 2+3 = 5" is worth its last side when its first side has
    letters and every side without letters equals the last (so "x = 5 = 6" and "5 = 5" are not 5);
  - inequalities in one letter are intervals: x \\ge 3 = [3, \\infty), -1 < x < 2 = (-1, 2);
    unions \\cup in any order; tuples and intervals element by element with the same brackets;
    sets and bare lists "1, 2" in any order.
The structure is bounded: at most MAX_ITEMS elements in a set or tuple and MAX_NEST levels of
nesting compared; each value is evaluated within mathexpr's bounds on size and work. An answer
over a bound is simply not equal.
"""

import math
import re

from tasks.mathexpr import GREEK, evaluate

MAX_ITEMS = 16  # most elements of a set or tuple
MAX_NEST = 4  # most levels of nesting compared, as in a set of tuples
REL_TOL, ABS_TOL = 1e-9, 1e-12  # floats only: \sqrt{8} = 2\sqrt{2}, but 1.414 != \sqrt{2}

# -----------------------------------------------------------------------------
# structure: unions, lists, intervals, inequalities, equations

_NAME = re.compile(r"(?:[A-Za-z]|\\(?:%s))(?:_\{?\w+\}?)?" % "|".join(GREEK))  # x, x_1, \theta
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
    letters = [(v := evaluate(side)) is None or v[1] for side in sides]  # a word counts as letters
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
        a = evaluate(f"({p_sides[0]})-({p_sides[1]})")
        b = evaluate(f"({g_sides[0]})-({g_sides[1]})")
        if a is not None and b is not None and a[1] and b[1] and _agree(a, b, proportional=True):
            return True
    p_last, g_last = _chain_value(p_sides), _chain_value(g_sides)
    names = _NAME.fullmatch(p_sides[0]) and _NAME.fullmatch(g_sides[0])  # "x^2=1" is not "x=1"
    if p_last is None or g_last is None or not names:
        return False
    p_value, g_value = evaluate(p_last), evaluate(g_last)
    constants = p_value is not None and g_value is not None and not p_value[1] and not g_value[1]
    return constants and same(p_last, g_last, depth + 1)


def _same_value(p, g):
    """Whether p and g are equal numbers, or equal expressions at every point."""
    return _agree(evaluate(p), evaluate(g))


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

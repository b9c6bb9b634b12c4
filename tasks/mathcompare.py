"""
Whether two math answers are the same: a structural comparator over mathexpr.py's bounded exact
evaluator, standard library only. grader.py finds and normalises the answers; this file
compares them.

same(p, g) takes two normalised answers (no spaces, except between two letters) and compares:
  - values exactly (mathexact.py): 0.5 = 1/2 = \\frac{1}{2} = 5e-1, 0.\\overline{3} = 1/3,
    \\binom{5}{2} = 10 = 5!/12, \\sqrt{8} = 2\\sqrt{2}, 1/\\sqrt{2} = \\sqrt{2}/2. A
    decimal is the rational it writes, so it equals a rational gold only exactly (0.25 = 1/4,
    0.333 != 1/3) and never an irrational one (1.7320508075688772 != \\sqrt{3}, however many
    digits: a careful grader asks for the exact value). Values with no exact form here (\\sin 1,
    \\ln 2) are compared to 100 digits, and only when no exact number either side meets is large
    enough to come that close (mathexact.equal): \\log_2 8 = 3, but 0.6931471805599453 != \\ln 2;
  - expressions in letters, without a CAS: both sides are evaluated at N_POINTS rational points
    drawn from a hash of both answers, the same points for the same letter, and must agree at
    each, and at least half of them must be defined (a Schwartz-Zippel test; the chance that a
    wrong identity passes is in mathexpr.py). (x+1)^2 = x^2+2x+1 and 3+4i = 4i+3 (i is a letter
    like any other). A point where one side is undefined and the other is not makes them
    differ: \\sqrt{x^2} is not x;
  - equations: lhs - rhs equal up to a non-zero constant factor, y = 2x+1 and 2x-y+1 = 0;
    against a value, a chain is worth its last side when every side without letters equals it
    and it states something: its first side has letters ("x = 2+3 = 5"), or it is a calculation
    ending in a number ("40 + 2 = 42"); so "x = 5 = 6" and "5 = 5" are not 5;
  - inequalities in one letter are intervals: x \\ge 3 = [3, \\infty), -1 < x < 2 = (-1, 2);
    unions \\cup in any order; tuples and intervals element by element with the same brackets;
    sets and bare lists "1, 2" in any order.
The structure is bounded: at most MAX_ITEMS elements in a set or tuple and MAX_NEST levels of
nesting compared; each value is evaluated within mathexpr's bounds on size and work. An answer
over a bound is simply not equal.
"""

import hashlib
import re

from tasks.mathexact import div, equal, mul
from tasks.mathexpr import GREEK, N_POINTS, evaluate

MAX_ITEMS = 16  # most elements of a set or tuple
MAX_NEST = 4  # most levels of nesting compared, as in a set of tuples
MIN_POINTS = N_POINTS // 2  # points where an expression in letters must be defined (mathexpr.py)

# -----------------------------------------------------------------------------
# structure: unions, lists, intervals, inequalities, equations

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
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


def _matched(ps, gs, depth, seed):
    """Whether each element of ps matches a different element of gs, in any order."""
    if len(ps) != len(gs) or len(ps) > MAX_ITEMS:
        return False
    unmatched = list(gs)
    for a in ps:
        j = next((j for j, b in enumerate(unmatched) if same(a, b, depth + 1, seed)), None)
        if j is None:
            return False
        del unmatched[j]
    return True


def same(p, g, depth=0, seed=None):
    """Whether normalised answers p and g are the same answer (rules in the module docstring).
    seed: where mathexpr draws its points; by default a hash of both answers."""
    if p == g:
        return True
    if depth > MAX_NEST or not p or not g:
        return False
    if seed is None:
        seed = hashlib.sha256(f"{p}\0{g}".encode()).hexdigest()[:16]
    # 1) inequalities become intervals, unions are matched part by part in any order
    p, g = _interval(p) or p, _interval(g) or g
    p_cup, g_cup = _split_top(p, "\\\\cup")[::2], _split_top(g, "\\\\cup")[::2]
    if len(p_cup) > 1 or len(g_cup) > 1:
        return _matched(p_cup, g_cup, depth, seed)
    # 2) tuples and intervals element by element, sets and lists in any order
    (p_kind, ps), (g_kind, gs) = structure(p), structure(g)
    if p_kind or g_kind:
        if p_kind != g_kind or len(ps) != len(gs) or len(ps) > MAX_ITEMS:
            return False
        if p_kind == "{}":
            return _matched(ps, gs, depth, seed)
        return all(same(a, b, depth + 1, seed) for a, b in zip(ps, gs))
    # 3) equations and chains
    p_sides, g_sides = _split_top(p, "=")[::2], _split_top(g, "=")[::2]
    if len(p_sides) > 1 and len(g_sides) > 1:
        return _same_equation(p_sides, g_sides, depth, seed)
    if len(p_sides) > 1:
        last = _chain_value(p_sides, seed)
        return last is not None and same(last, g, depth + 1, seed)
    if len(g_sides) > 1:
        last = _chain_value(g_sides, seed)
        return last is not None and same(p, last, depth + 1, seed)
    # 4) one value each
    return _agree(evaluate(p, seed), evaluate(g, seed))


def _chain_value(sides, seed):
    """The value a chain states: "x = 2+3 = 5" is 5, "17 = a+b" is 17, if every side without
    letters agrees with it; "5 = 5" and "x = 5 = 6" state nothing (None)."""
    if "" in sides:
        return None
    letters = [(v := evaluate(side, seed)) is None or v.letters for side in sides]  # words too
    if letters[0]:
        value = sides[-1]
    elif letters[-1] and len(sides) == 2:
        value = sides[0]
    elif not any(letters) and len(set(sides)) > 1 and _NUMBER.fullmatch(sides[-1]):
        value = sides[-1]  # a calculation, "40+2=42"; "5=5" computes nothing
    else:
        return None
    if any(not has and not _agree(evaluate(side, seed), evaluate(value, seed))
           for side, has in zip(sides, letters)):
        return None  # "x = 5 = 6"
    return value


def _same_equation(p_sides, g_sides, depth, seed):
    """Equations: lhs - rhs equal up to a non-zero constant factor; "x=5" and "y=5" are both 5."""
    if len(p_sides) == len(g_sides) == 2:
        a = evaluate(f"({p_sides[0]})-({p_sides[1]})", seed)
        b = evaluate(f"({g_sides[0]})-({g_sides[1]})", seed)
        if a is not None and b is not None and a.letters and b.letters and _agree(a, b, True):
            return True
    p_last, g_last = _chain_value(p_sides, seed), _chain_value(g_sides, seed)
    names = _NAME.fullmatch(p_sides[0]) and _NAME.fullmatch(g_sides[0])  # "x^2=1" is not "x=1"
    if p_last is None or g_last is None or not names:
        return False
    p_value, g_value = evaluate(p_last, seed), evaluate(g_last, seed)
    constants = p_value is not None and g_value is not None and not p_value.letters
    return constants and not g_value.letters and same(p_last, g_last, depth + 1, seed)


def _agree(a, b, proportional=False):
    """Whether evaluations a and b are equal at every point (or a = r * b for one r != 0).

    A point where only one is defined is a disagreement; at least MIN_POINTS points must be
    defined (1 for two constants). A constant is one value, the same at every point.
    """
    if a is None or b is None:
        return False
    xs, ys = a.values, b.values
    n = max(len(xs), len(ys))
    pairs = [(x, y) for x, y in zip(xs * n if len(xs) == 1 else xs, ys * n if len(ys) == 1 else ys)
             if x is not None or y is not None]
    if any(x is None or y is None for x, y in pairs):
        return False
    if len(pairs) < (MIN_POINTS if a.letters or b.letters else 1):
        return False
    digits = max(a.digits, b.digits)
    try:
        ratio = 1
        if proportional:
            x, y = next(((x, y) for x, y in pairs if not equal(y, 0, digits)), (0, 0))
            if equal(x, 0, digits):
                return False
            ratio = div(x, y)
        return all(equal(x, mul(ratio, y), digits) for x, y in pairs)
    except ArithmeticError:  # a Decimal too large, or a sign too close to 0 to tell
        return False

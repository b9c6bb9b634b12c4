"""
Rule-based reward for math answers: 1 if the completion's final answer equals the gold answer.

The reward is the only supervision RL gets, and a reward that can be fooled teaches the policy
to fool it: a grader that accepts "7 or 8" for gold 7 trains a policy that hedges.

extract_answer(completion) finds the final answer:
  - only the text after the last </think> counts, and an unclosed <think> hides the rest;
  - the final answers are every \\boxed{...} / \\fbox{...} (nested braces balanced) and every
    "#### ..." line, even a markdown heading. They must all agree (repeating the same answer is
    fine, up to MAX_FINALS spellings): two boxes 7 and 8, or a box and a #### line that differ,
    give no answer at all;
  - a box whose braces never close gives no answer, rather than an earlier number;
  - with no box and no #### line, the text after the last "The answer is", "Final answer:" or
    "Answer:", to the end of its sentence; with none of these either, no answer.

is_equiv(pred, gold) compares two answers as math, not as strings:
  - "$1,000.", "1000 dollars", "１０００" and "01000" are 1000; "50%" is 50; "x = 5" is 5;
  - values are exact fractions computed by a tiny recursive-descent parser (no eval):
    0.5 = 1/2 = \\frac{1}{2} = \\dfrac12 = 5e-1, 2\\frac{1}{2} = 2 1/2; irrational values
    (\\sqrt{2}, \\pi) are floats equal within 1e-9, so 1.414 is not \\sqrt{2};
  - tuples and intervals element by element with the same brackets, sets \\{1, 2\\} and bare
    lists "1, 2" in any order; no algebra: 2x+3 and 3+2x differ;
  - hedges are wrong: "or", "and", "either", "between" or \\pm in the prediction (not in the
    gold), and several values ("5, 6") never equal one;
  - the work is bounded: long answers, huge numbers (9^{9^{9}}) and deep nesting are refused,
    and a refused answer is simply not equal.

math_reward(completion, gold) puts the two together and never raises.
`python reward.py` times it on pathological completions.
"""

import functools
import math
import re
import time
import unicodedata
from fractions import Fraction

MAX_ANSWER_CHARS = 500  # longer answers are wrong: MATH answers are under 200 characters
MAX_FINALS = 4  # most distinct spellings of one final answer, as \boxed{0.5} and #### 1/2
MAX_ITEMS = 16  # most elements of a set or tuple
MAX_NEST = 4  # most levels of nesting compared, as in a set of tuples
MAX_DEPTH = 50  # most bracket / exponent nesting the parser follows (bounds the Python stack)
MAX_BITS = 4096  # largest exact numerator or denominator, about 1200 digits
REL_TOL, ABS_TOL = 1e-9, 1e-12  # floats only: \sqrt{8} = 2\sqrt{2}, but 1.414 != \sqrt{2}

# -----------------------------------------------------------------------------
# extraction: which part of a completion is its final answer

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACES = re.compile(r"\\[{}]|\{+|\}+")  # an escaped brace, or a run of braces
_HASHES = re.compile(r"####[ \t]*(.*)")
_ANCHOR = re.compile(r"the (?:final )?answer is|final answer\s*:|answer\s*:", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.(?:\s|$)")  # "is 3.5. So" ends after 3.5, not inside it
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def _visible(text):
    """The response without its reasoning: the text after the last </think> (a chat template
    may open <think> in the prompt), up to an unclosed <think>, which hides the rest: a model
    that did not finish reasoning gave no answer."""
    end = text.rfind("</think>")
    if end != -1:
        text = text[end + len("</think>"):]
    start = text.find("<think>")
    return text if start == -1 else text[:start]


def _boxes(text):
    """Contents of the outermost \\boxed{...} groups, or None if one of them never closes."""
    spans, pos = [], 0
    while (m := _BOX.search(text, pos)) is not None:
        depth, pos = 1, None
        for run in _BRACES.finditer(text, m.end()):  # one linear pass, no recursion
            braces = run.group()
            if braces[0] == "\\":
                continue  # an escaped brace \{ is text, not a group
            depth += len(braces) if braces[0] == "{" else -len(braces)
            if depth <= 0:  # this run holds the closing brace; pos is just after it
                pos = run.end() + depth
                break
        if pos is None:
            return None
        spans.append(text[m.end():pos - 1].strip())
    return spans


def extract_answer(text, *, last_number_fallback=False):
    """The final answer span of a completion, or None if it has no single final answer.

    Boxes and #### lines first: if all are equivalent, the last box (else the last #### line).
    Then the last anchor phrase: "the answer is" also occurs in the reasoning, and a later one
    corrects an earlier one. last_number_fallback=True returns the last number of a completion
    with no marker at all; it is off by default because it grades whatever number the reasoning
    ended on, so the policy learns to stop on numbers instead of stating an answer.
    """
    text = _visible(text)
    boxes = _boxes(text)
    if boxes is None:
        return None
    finals = [m.group(1).strip() for m in _HASHES.finditer(text)] + boxes
    if finals:
        others = set(finals) - {finals[-1]}
        agree = len(others) < MAX_FINALS and all(is_equiv(x, finals[-1]) for x in others)
        return finals[-1] if agree else None
    anchor_end = max((m.end() for m in _ANCHOR.finditer(text)), default=None)
    if anchor_end is not None:
        line = text[anchor_end:].split("\n", 1)[0]
        return _SENTENCE_END.split(line, 1)[0].strip(" *:")  # "**Answer:** 42." -> "42"
    if last_number_fallback:
        numbers = _NUMBER.findall(text)
        return numbers[-1] if numbers else None
    return None


# -----------------------------------------------------------------------------
# normalisation: one canonical string per answer

_UNICODE = str.maketrans({"−": "-", "–": "-", "×": "*", "÷": "/", "·": "*", "⁄": "/",
                          "π": "\\pi ", "√": "\\sqrt", "²": "^2", "³": "^3", "°": ""})
_HEDGE = re.compile(r"\b(?:or|and|nor|either|between)\b|\\(?:pm|mp)(?![A-Za-z])|±|∓", re.I)
_TEXT = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_SWAPS = {"\\dfrac": "\\frac", "\\tfrac": "\\frac", "\\cdot": "*", "\\times": "*", "\\div": "/",
          "\\left": "", "\\right": "", "\\displaystyle": "", "\\{": "{", "\\}": "}", "{,}": ",",
          "\\!": "", "\\,": "", "\\;": "", "\\:": "", "\\ ": " ", "~": " ", "\\$": "", "$": "",
          "\\%": "", "%": "", "^\\circ": "", "^{\\circ}": "", "\\circ": "", "\\boxed": "",
          "\\fbox": ""}
_SWAP = re.compile("|".join(re.escape(k) for k in sorted(_SWAPS, key=len, reverse=True)))
_SHORT_ARG = re.compile(r"\\(frac|sqrt)\s*(\d)")  # \frac12 -> \frac{1}2, \sqrt2 -> \sqrt{2}
_SHORT_DEN = re.compile(r"(\\frac\{[^{}]*\})\s*(\d)")  # \frac{1}2 -> \frac{1}{2}
_UNIT = re.compile(r"[A-Za-z]+(?:\^\{?\d+\}?)?")  # "apples", "cm^2"
_MIXED = re.compile(r"(-?)(\d+)(?:\s*\\frac\{(\d+)\}\{(\d+)\}|\s+(\d+)/(\d+))")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_NAME = re.compile(r"^\\?[A-Za-z]+(?:_\{?\w+\}?)?=")  # "x=", "\theta=", "x_1="
_BRACKETS = ("()", "[]", "(]", "[)", "{}")


def _normalize(s):
    """Canonical compact form: "$1{,}000$ dollars." -> "1000", "\\dfrac12 cup" -> "\\frac{1}{2}"."""
    s = _TEXT.sub(r" \1", s)  # "9\text{ m}^2" -> "9  m^2": one unit word
    s = _SWAP.sub(lambda m: _SWAPS[m.group()], s)
    s = _SHORT_DEN.sub(r"\1{\2}", _SHORT_ARG.sub(r"\\\1{\2}", s))
    words = s.split()
    while words:  # drop trailing punctuation and unit words, keeping at least one word
        words[-1] = words[-1].rstrip(".,;:!?")
        if len(words) > 1 and (not words[-1] or _UNIT.fullmatch(words[-1])):
            words.pop()
        else:
            break
    s = " ".join(words)
    if m := _MIXED.fullmatch(s):  # a whole mixed number: "-2 1/2" -> "-(2+1/2)"
        sign, whole, n1, d1, n2, d2 = m.groups()
        s = f"{sign}({whole}+{n1 or n2}/{d1 or d2})"
    s = "".join(s.split())
    if _THOUSANDS.fullmatch(s):  # only a lone number: "(1,000)" stays a pair
        s = s.replace(",", "")
    return s


def _split_top(s):
    """s split at the commas outside all brackets, or None if its brackets do not balance."""
    items, depth, start = [], 0, 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return None
        elif c == "," and depth == 0:
            items.append(s[start:i])
            start = i + 1
    items.append(s[start:])
    return items if depth == 0 else None


def _structure(s):
    """A normalised answer as (kind, elements), with a leading "x=" dropped from each element.

    kind is "" for one value; "{}" for a set or a bare list "1,2", whose order does not matter;
    or the outer brackets of a tuple or an interval, "()", "[)", ..., whose order matters.
    """
    kind, items = "", [s]
    if len(s) >= 2 and s[0] + s[-1] in _BRACKETS and len(inner := _split_top(s[1:-1]) or []) > 1:
        kind, items = ("{}" if s[0] == "{" else s[0] + s[-1]), inner
    elif len(top := _split_top(s) or []) > 1:
        kind, items = "{}", top
    return kind, [_NAME.sub("", x, count=1) for x in items]


# -----------------------------------------------------------------------------
# values: a tiny recursive-descent parser over exact fractions (floats once irrational)

_TOKEN = re.compile(r"(\d+\.?\d*|\.\d+)(?:[eE]([-+]?\d+))?|\\[A-Za-z]+|\S")


class _Refuse(Exception):
    """The expression is not a number, or not one worth computing."""


def _bits(x):
    return max(x.numerator.bit_length(), x.denominator.bit_length())


def _check(x):
    """x itself, unless it is too large to go on with: a huge fraction, a non-finite float."""
    if _bits(x) > MAX_BITS if isinstance(x, Fraction) else not math.isfinite(x):
        raise _Refuse
    return x


def _pow(base, exp):
    """base ** exp: exact for a fraction to an integer power, a float otherwise (\\sqrt{2})."""
    if isinstance(base, Fraction) and isinstance(exp, Fraction) and exp.denominator == 1:
        if max(_bits(base), 1) * abs(exp.numerator) > MAX_BITS:  # the size, known beforehand
            raise _Refuse
        return base**exp.numerator
    if base < 0 and not float(exp).is_integer():
        raise _Refuse  # a complex number
    return _check(float(base) ** float(exp))


def _number(m):
    """The exact value of a number token: "1.5e3" -> 1500, "007" -> 7."""
    value = Fraction(m[1])
    return _check(value * _pow(Fraction(10), Fraction(int(m[2])))) if m[2] else value


class _Parser:
    """Values of expressions such as 2\\sqrt{2}, \\frac{\\pi}{2}, 1.5*10^{3}, with this grammar:

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/") unary | implicit)*     implicit product: 2\\pi, 3\\sqrt{2}, 2(1+1)
    unary := ("+" | "-")* power
    power := atom ("^" unary)?                         right-associative: 2^3^2 = 2^9
    atom  := number | \\pi | (expr) | {expr} | \\frac{expr}{expr} | \\sqrt[expr]{expr}
    """

    def __init__(self, s):
        self.tokens = [_number(m) if m[1] else m[0] for m in _TOKEN.finditer(s)] + [None]
        self.i = self.depth = 0

    def peek(self):
        return self.tokens[self.i]  # None at the end

    def take(self, expected=None):
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise _Refuse
        self.i += 1
        return token

    def expr(self):
        value = self.term()
        while self.peek() in ("+", "-"):
            op, rhs = self.take(), self.term()
            value = _check(value + rhs if op == "+" else value - rhs)
        return value

    def term(self):
        value = self.unary()
        while True:
            if self.peek() in ("*", "/"):
                op, rhs = self.take(), self.unary()
                value = _check(value * rhs if op == "*" else value / rhs)
            elif self.peek() in ("(", "\\pi", "\\sqrt", "\\frac"):
                value = _check(value * self.power())
            else:
                return value

    def unary(self):
        sign = 1
        while self.peek() in ("+", "-"):
            sign = -sign if self.take() == "-" else sign
        return sign * self.power()

    def power(self):
        self.depth += 1  # every nesting (brackets, exponents) passes through here
        if self.depth > MAX_DEPTH:
            raise _Refuse
        value = self.atom()
        if self.peek() == "^":
            self.take()
            value = _pow(value, self.unary())
        self.depth -= 1
        return value

    def atom(self):
        token = self.take()
        if isinstance(token, Fraction):
            return token
        if token == "\\pi":
            return math.pi
        if token in ("(", "{"):
            value = self.expr()
            self.take(")" if token == "(" else "}")
            return value
        if token == "\\frac":
            return _check(self.group() / self.group())
        if token == "\\sqrt":
            n = self.group("[", "]") if self.peek() == "[" else Fraction(2)
            return _pow(self.group(), 1 / n)
        raise _Refuse

    def group(self, left="{", right="}"):
        self.take(left)
        value = self.expr()
        self.take(right)
        return value


@functools.lru_cache(maxsize=4096)  # a gold answer is parsed once per group, not once per sample
def _value(s):
    """The number s denotes (a Fraction when exact, a float when not), or None."""
    try:
        parser = _Parser(s)
        value = parser.expr()
        return value if parser.peek() is None else None
    except (_Refuse, ArithmeticError, ValueError):  # also 1/0 and float overflow
        return None


def _same(p, g, depth=0):
    """Whether normalised answers p and g are equal: as strings, values, or element-wise."""
    if p == g:
        return True
    (p_kind, ps), (g_kind, gs) = _structure(p), _structure(g)
    if p_kind != g_kind or len(ps) != len(gs) or len(ps) > MAX_ITEMS or depth > MAX_NEST:
        return False
    if p_kind == "":  # one value each: exact for two fractions, else within REL_TOL
        x, y = _value(ps[0]), _value(gs[0])
        if x is None or y is None:
            return ps[0] == gs[0]
        if isinstance(x, Fraction) and isinstance(y, Fraction):
            return x == y
        try:
            return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=ABS_TOL)
        except OverflowError:  # a fraction too large for a float
            return False
    if p_kind != "{}":
        return all(_same(a, b, depth + 1) for a, b in zip(ps, gs))
    unmatched = list(gs)
    for a in ps:  # a set: each element matches a different element, in any order
        j = next((j for j, b in enumerate(unmatched) if _same(a, b, depth + 1)), None)
        if j is None:
            return False
        del unmatched[j]
    return True


def is_equiv(pred, gold):
    """Whether answer spans pred and gold are the same answer (rules in the module docstring)."""
    if not isinstance(pred, str) or not isinstance(gold, str):
        return False  # no answer (None) is never correct
    if len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        return False
    # NFKC turns full-width digits and letters into ASCII, before looking for hedge words
    pred, gold = (unicodedata.normalize("NFKC", s.translate(_UNICODE)) for s in (pred, gold))
    if _HEDGE.search(pred) and not _HEDGE.search(gold):
        return False
    p, g = _normalize(pred), _normalize(gold)
    return p != "" and _same(p, g)


def math_reward(completion, gold, *, signed=False):
    """1.0 if the completion's final answer equals the gold answer, else 0.0.

    gold is a bare answer ("80", "\\frac{1}{2}") or a whole worked solution ending in "#### 72"
    (GSM8K) or holding a \\boxed{...} (MATH); a solution's final answer is found by the same
    rules as the completion's. signed=True gives +1.0 / -1.0, as the official FlowRL code does;
    after the group z-score (r_hat) both scales give the same FlowRL loss.
    """
    try:
        if "####" in gold or "\\boxed" in gold or "\\fbox" in gold:
            gold = extract_answer(gold)
        correct = is_equiv(extract_answer(completion), gold)
    except Exception:  # one strange completion must never stop a training run
        correct = False
    if signed:
        return 1.0 if correct else -1.0
    return 1.0 if correct else 0.0


if __name__ == "__main__":
    # ms per call on typical and pathological completions: printed, not asserted (machines vary)
    cases = {
        "gsm8k toy": ("23+45=68, 68+12=80 #### 80", "80"),
        "latex box": ("So $x = \\dfrac{3}{4}$, that is \\boxed{\\frac{3}{4}}.", "0.75"),
        "irrational": ("\\boxed{\\frac{\\sqrt{8}}{2}\\pi}", "\\sqrt{2}\\pi"),
        "100k chars": ("Let me think step by step. " * 3700 + "#### 80", "80"),
        "100k digits": ("9" * 100_000, "9"),
        "10k-deep box": ("\\boxed{" * 10_000 + "1" + "}" * 10_000, "1"),
        "10k-deep unclosed": ("\\boxed{" + "{" * 10_000 + "1", "1"),
        "10k #### lines": ("".join(f"#### {i}\n" for i in range(10_000)), "1"),
        "9^{9^{9}}": ("\\boxed{9^{9^{9}}}", "1"),
        "10^{10^{10}}": ("\\boxed{10^{10^{10}}}", "10^{10^{10}}+1"),
        "500-char sum": ("\\boxed{" + "+".join(["1"] * 249) + "}", "249"),
    }
    for name, (completion, gold) in cases.items():
        n, t0 = 100, time.perf_counter()
        for _ in range(n):
            _value.cache_clear()  # time the parsing too, not a cache hit
            reward = math_reward(completion, gold)
        ms = (time.perf_counter() - t0) / n * 1000
        print(f"{name:>18}: {ms:7.3f} ms/call   ({len(completion):>6} chars, reward {reward})")

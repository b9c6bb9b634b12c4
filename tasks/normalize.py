"""
One canonical string per math answer, for grader.py, standard library only:
normalize("$1{,}000$ dollars.") is "1000", normalize("\\dfrac12 cup") is "\\frac{1}{2}",
normalize("\\boxed{{{7}}}") is "7". It drops what does not change the answer (LaTeX spacing,
\\left and \\right, math-mode signs, currency, unit words, redundant braces) and spells the same
notation one way (\\dfrac and \\frac, \\le and <=), so that mathcompare.py compares values only.
A trailing word that changes a number ("5 thousand", remarks.CHANGES) is kept, so 5 thousand is
never 5. Linear in the answer's length: no pattern here backtracks over a run.
"""

import re

from tasks.remarks import CHANGES

SHORT_UNITS = "cm|mm|km|kg|mg|ml|ft|in|oz|lb|hr|yd|mi|sq|m|of|on|at|to|by"
UNICODE = str.maketrans({"−": "-", "–": "-", "×": "*", "÷": "/", "·": "*", "⁄": "/",
                         "π": "\\pi ", "√": "\\sqrt", "²": "^2", "³": "^3", "°": "",
                         "½": "\\frac{1}{2}", "⅓": "\\frac{1}{3}", "⅔": "\\frac{2}{3}",
                         "¼": "\\frac{1}{4}", "¾": "\\frac{3}{4}", "∞": "\\infty ", "∪": "\\cup ",
                         "∅": "\\emptyset ", "€": "", "£": "", "¥": "", "₹": ""})
_TEXT = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_SWAPS = {"\\dfrac": "\\frac", "\\tfrac": "\\frac", "\\cfrac": "\\frac", "\\cdot": "*",
          "\\times": "*", "\\div": "/", "\\left": "", "\\right": "", "\\displaystyle": "",
          "\\{": "{", "\\}": "}", "{,}": ",", "\\!": "", "\\,": "", "\\;": "", "\\:": "",
          "\\ ": " ", "~": " ", "\\$": "", "$": "", "\\%": "", "%": "", "^\\circ": "",
          "^{\\circ}": "", "\\circ": "", "\\degree": "", "\\boxed": "", "\\fbox": "",
          "\\[": "", "\\]": "", "\\(": "", "\\)": "", "\\euro": "", "\\pounds": "",
          "\\leq": "≤", "\\le": "≤", "<=": "≤", "\\geq": "≥", "\\ge": "≥", ">=": "≥", "\\lt": "<",
          "\\gt": ">", "\\neq": "≠", "\\ne": "≠", "+\\infty": "\\infty", "\\varnothing": "\\emptyset"}
_SWAP = re.compile("|".join(re.escape(k) for k in sorted(_SWAPS, key=len, reverse=True)))
_PLAIN = re.compile(r"(?<![\\A-Za-z])(sqrt|pi|sin|cos|tan|ln|log|exp)(?![A-Za-z])")  # sqrt(2)
_SHORT_ARG = re.compile(r"\\(frac|sqrt)\s*(\d)")  # \frac12 -> \frac{1}2, \sqrt2 -> \sqrt{2}
_SHORT_DEN = re.compile(r"(\\frac\{[^{}]*\})\s*(\d)")  # \frac{1}2 -> \frac{1}{2}
CURRENCY = re.compile(r"^(?:USD|EUR|GBP|INR|Rs\.?)\s*")  # "USD 42"; "42 USD" is a unit word
_UNIT = re.compile(r"(?:[A-Za-z]{3,}|%s)(?:/[A-Za-z]+)*(?:\^\{?\d+\}?)?" % SHORT_UNITS)
# "apples", "sq ft", "m^2", "km/h", "of the class"; not "x", "xy"
_MIXED = re.compile(r"(-?)(\d+)(?:\s*\\frac\{(\d+)\}\{(\d+)\}|\s+(\d+)/(\d+))")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SPACES = re.compile(r"(?<=[A-Za-z])(\s+)(?=[A-Za-z])|(?<=\d)(\s+)(?=\d)(?!\d{3}(?!\d))|\s+")
_BASE = re.compile(r"(\d)_\{(\d+)\}")  # 1010_{2} -> 1010_2
_IN = re.compile(r"\\in(?![A-Za-z])")
_NAME_IN = re.compile(r"^(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?\w+\}?)?\\in(?![A-Za-z])")  # "x \in [0, 1]"
_BRACE = re.compile(r"[{}]")


def normalize(s):
    """Canonical compact form: "$1{,}000$ dollars." -> "1000", "\\dfrac12 cup" -> "\\frac{1}{2}"."""
    s = _TEXT.sub(r" \1", s)  # "9\text{ m}^2" -> "9  m^2": one unit word
    s = _SWAP.sub(lambda m: _SWAPS[m.group()], s)
    s = _BASE.sub(r"\1_\2", _PLAIN.sub(r"\\\1 ", s))
    s = _SHORT_DEN.sub(r"\1{\2}", _SHORT_ARG.sub(r"\\\1{\2}", s))
    s = CURRENCY.sub("", s.strip())
    words = s.split()
    while words:  # drop trailing punctuation and unit words, keeping at least one word
        words[-1] = re.sub(r"(?<![\d)}])!+$", "", words[-1].rstrip(".,;:?"))  # 10! is a factorial
        if len(words) > 1 and (not words[-1] or _UNIT.fullmatch(words[-1])) and (
                words[-1].lower() not in CHANGES):  # "5 apples" is 5, "5 thousand" is not
            words.pop()
        else:
            break
    s = " ".join(words)
    if m := _MIXED.fullmatch(s):  # a whole mixed number: "-2 1/2" -> "-(2+1/2)"
        sign, whole, n1, d1, n2, d2 = m.groups()
        s = f"{sign}({whole}+{n1 or n2}/{d1 or d2})"
    s = _SPACES.sub(lambda m: " " if m[1] or m[2] else "", s)  # "\sin x", "1 2"; "1 000" is 1000
    if _THOUSANDS.fullmatch(s):  # only a lone number: "(1,000)" stays a pair
        s = s.replace(",", "")
    if len(_IN.findall(s)) == 1:
        s = _NAME_IN.sub("", s)
    return _unwrap(_drop_braces(s))


def _drop_braces(s):
    """s without redundant braces: a pair just inside another pair ("{{7}}"), or around it all.

    One pass matches the pairs, one drops them: linear in len(s), at any depth.
    """
    stack, close = [], {}
    for m in _BRACE.finditer(s):
        if m[0] == "{":
            stack.append(m.start())
        elif not stack:
            return s
        else:
            close[stack.pop()] = m.start()
    if stack or not close:
        return s
    drop = {i for i, j in close.items() if close.get(i - 1) == j + 1}  # "{{" ... "}}"
    i = 0
    while close.get(i) == len(s) - 1 - i:  # braces around the whole answer, "{7}" or "{{7}}"
        drop.add(i)
        i += 1
    cuts = sorted(drop | {close[i] for i in drop})
    return "".join(s[a + 1:b] for a, b in zip([-1] + cuts, cuts + [len(s)]))


def _unwrap(s):
    """s without bare square brackets around it all: "[7]" -> "7"; "[1,2]" is an interval."""
    if len(s) < 2 or s[0] != "[" or s[-1] != "]":
        return s
    depth = 0
    for i, c in enumerate(s):
        depth += c in "([{"
        depth -= c in ")]}"
        if (depth == 0 and i < len(s) - 1) or (depth == 1 and c == ","):
            return s  # "[1]+[2]", or an interval
    return s[1:-1]

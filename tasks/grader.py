"""
Rule-based reward for math answers: 1 if the completion's final answer equals the gold answer.

The reward is the only supervision RL gets, and a reward that can be fooled teaches the policy
to fool it: a grader that accepts "7 or 8" for gold 7 trains a policy that hedges.

extract_answer(completion) finds the final answer:
  - only the text after the last </think> counts, and an unclosed <think> hides the rest;
  - the final answers are every \\boxed{...} / \\fbox{...} (nested braces balanced), every
    "#### ..." line (even a markdown heading) and every <answer>...</answer>; the LAST one
    counts, so "\\boxed{3}. Wait, actually it is \\boxed{5}" answers 5. Reflecting and correcting
    is what RL on math should reward; writing several answers gains nothing, only the last is read;
  - a box or an <answer> tag that never closes gives no answer, rather than an earlier one,
    and so does an aside that hedges the last answer: "\\boxed{5} or possibly \\boxed{6}";
  - with no final answer, the text after the last "The answer is", "Final answer:" or
    "Answer:", to the end of its sentence; with none of these either, no answer.

is_equiv(pred, gold) compares two answers as a careful human grader does:
  - "$1,000.", "1000 dollars", "USD 1000", "１０００" and "01000" are 1000; "50%" is 50;
    "#### 42 apples (since 6 x 7 = 42)" and "5cm" are 42 and 5 against a number, but
    "5 thousand", "10 more" and "5 x" are not 5 or 10;
  - notation: \\dfrac, \\cfrac, {a \\over b}; \\[ \\], \\( \\) and bare [ ] around an answer;
    unicode ½ ≤ √ π ∞ − ×; \\degree; plain sqrt(2) and pi/2; \\emptyset = \\varnothing;
    1010_{2} = 1010_2; redundant braces {{{7}}} at any depth, dropped in linear time;
  - text ignores case, \\text{monday} = Monday; choices "(B)", "B", \\text{(B)} are one choice;
  - values, algebra, equations, intervals, sets and tuples are compared by mathcompare.same;
  - hedges are wrong: "or", "and", "either", "between", "maybe", \\approx or \\pm in the
    prediction (not in the gold), and several values ("5, 6") never equal one; but when the gold
    lists several values, "x = 2 or x = -3" and "1 \\pm \\sqrt{2}" list them too.

math_reward(completion, gold) puts the two together and never raises.
`python -m tasks.grader` times it on pathological completions.
"""

import math
import re
import time
import unicodedata

from tasks.mathcompare import same, structure

# -----------------------------------------------------------------------------
# extraction: which part of a completion is its final answer

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACES = re.compile(r"\\[{}]|\{+|\}+")  # an escaped brace, or a run of braces
_HASHES = re.compile(r"####[ \t]*(.*?)[ \t]*(?:</answer>|$)", re.MULTILINE)
_ANCHOR = re.compile(r"the (?:final )?answer is|final answer\s*:|answer\s*:", re.IGNORECASE)
_LEAD_ANCHOR = re.compile(r"^\**(?:%s)\**\s*" % _ANCHOR.pattern, re.IGNORECASE)  # "#### Answer: 7"
_SENTENCE_END = re.compile(r"\.(?:\s|$)")  # "is 3.5. So" ends after 3.5, not inside it
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
_ASIDE = re.compile(r"\b(?:or|maybe|perhaps|possibly|either)\b|\\(?:pm|mp)(?![A-Za-z])|[±∓]", re.I)
MAX_ASIDE = 80  # characters read around the final answer for an aside that hedges it


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
    """(start, end, contents) of the outermost \\boxed{...} groups, or None if one never closes."""
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
        spans.append((m.start(), pos, text[m.end():pos - 1].strip()))
    return spans


def _answer_tags(text):
    """(start, end, contents) of every <answer>...</answer>, or None if the last never closes."""
    spans, pos = [], 0
    while (start := text.find("<answer>", pos)) != -1:
        end = text.find("</answer>", start)
        if end == -1:
            return None
        spans.append((start, end + len("</answer>"), text[start + len("<answer>"):end].strip()))
        pos = end
    return spans


def extract_answer(text, *, last_number_fallback=False):
    """The final answer span of a completion, or None if it has none.

    The last box, #### line or <answer> tag. Then the last anchor phrase: "the answer is" also
    occurs in the reasoning, and a later one corrects an earlier one. last_number_fallback=True
    returns the last number of a completion with no marker at all; it is off by default because
    it grades whatever number the reasoning ended on, so the policy learns to stop on numbers
    instead of stating an answer.
    """
    text = _visible(text)
    boxes, tags = _boxes(text), _answer_tags(text)
    if boxes is None or tags is None:
        return None
    hashes = [(m.start(), m.end(), _LEAD_ANCHOR.sub("", m[1])) for m in _HASHES.finditer(text)]
    finals = sorted(boxes + tags + hashes)
    if finals:  # the one that starts last: a box inside a tag beats the tag
        start, end, answer = finals[-1]
        before = text[finals[-2][1]:start] if len(finals) > 1 else ""
        after = text[end:end + MAX_ASIDE].split("\n", 1)[0]
        if _ASIDE.search(after) or (len(before) <= MAX_ASIDE and _ASIDE.search(before)):
            return None  # "\boxed{5} or possibly \boxed{6}", "\boxed{3} (or -3)": a hedge
        return answer
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
                          "π": "\\pi ", "√": "\\sqrt", "²": "^2", "³": "^3", "°": "",
                          "½": "\\frac{1}{2}", "⅓": "\\frac{1}{3}", "⅔": "\\frac{2}{3}",
                          "¼": "\\frac{1}{4}", "¾": "\\frac{3}{4}", "∞": "\\infty ", "∪": "\\cup ", "∅": "\\emptyset ",
                          "€": "", "£": "", "¥": "", "₹": ""})
_HEDGE = re.compile(r"\b(?:or|and|nor|either|between|maybe|perhaps|possibly)\b"
                    r"|\\(?:pm|mp|approx|sim)(?![A-Za-z])|[±∓≈]|^\s*~", re.IGNORECASE)
_ALTERNATIVES = re.compile(r"\\text\{\s*(?:or|and)\s*\}|\b(?:or|and)\b")
_PM = re.compile(r"\\pm(?![A-Za-z])|±")
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
_CURRENCY = re.compile(r"^(?:USD|EUR|GBP|INR|Rs\.?)\s*")  # "USD 42"; "42 USD" is a unit word
_UNIT = re.compile(r"(?:[A-Za-z]{3,}|cm|mm|km|kg|mg|ml|ft|in|oz|lb|hr|yd|mi|sq|m|of|on|at|to|by)"
                   r"(?:\^\{?\d+\}?)?")  # "apples", "sq ft", "m^2", "of the class"; not "x", "xy"
_MIXED = re.compile(r"(-?)(\d+)(?:\s*\\frac\{(\d+)\}\{(\d+)\}|\s+(\d+)/(\d+))")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SPACES = re.compile(r"(?<=[A-Za-z])(\s+)(?=[A-Za-z])|(?<=\d)(\s+)(?=\d)(?!\d{3}(?!\d))|\s+")
_LEAD_NUMBER = re.compile(r"\\?\$?(-?\d[\d,]*(?:\.\d+)?)\s+\(?\s*[A-Za-z]{3,}.*")  # "42 apples"
_MODIFIER = re.compile(r"\b(?:hundred|thousand|million|billion|trillion|dozens?|squared|cubed|"
                       r"more|less|fewer|half|halves|thirds?|quarters?)\b", re.IGNORECASE)
_PARENTHETICAL = re.compile(r"\([^()]*\)\W*$")  # "(since 6 x 7 = 42)." closing a line
_GOLD_NUMBER = re.compile(r"-?\d*\.?\d+")
_GLUED_UNIT = re.compile(r"(-?\d+(?:\.\d+)?)(?:cm|mm|km|kg|mg|lbs?|oz|ft|hrs?|mins?|secs?|mph)")
_BASE = re.compile(r"(\d)_\{(\d+)\}")  # 1010_{2} -> 1010_2
_IN = re.compile(r"\\in(?![A-Za-z])")
_NAME_IN = re.compile(r"^(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?\w+\}?)?\\in(?![A-Za-z])")  # "x \in [0, 1]"
_BRACE = re.compile(r"[{}]")
_CHOICE = re.compile(r"\(?([A-Ea-e])\)?")
_WORDS = re.compile(r"(?=.*[A-Za-z]{3})[A-Za-z ]+")  # text: at least one word of 3 letters


def _normalize(s):
    """Canonical compact form: "$1{,}000$ dollars." -> "1000", "\\dfrac12 cup" -> "\\frac{1}{2}"."""
    s = _TEXT.sub(r" \1", s)  # "9\text{ m}^2" -> "9  m^2": one unit word
    s = _SWAP.sub(lambda m: _SWAPS[m.group()], s)
    s = _BASE.sub(r"\1_\2", _PLAIN.sub(r"\\\1 ", s))
    s = _SHORT_DEN.sub(r"\1{\2}", _SHORT_ARG.sub(r"\\\1{\2}", s))
    s = _CURRENCY.sub("", s.strip())
    words = s.split()
    while words:  # drop trailing punctuation and unit words, keeping at least one word
        words[-1] = re.sub(r"(?<![\d)}])!+$", "", words[-1].rstrip(".,;:?"))  # 10! is a factorial
        if len(words) > 1 and (not words[-1] or _UNIT.fullmatch(words[-1])) and not _MODIFIER.match(
                words[-1]):  # "5 apples" is 5, "5 thousand" is not
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


def _as_number(pred, gold):
    """Against a gold number, a GSM8K-style line's leading number: "42 apples (6 x 7 = 42)"."""
    if not _GOLD_NUMBER.fullmatch(gold):
        return pred
    if m := _LEAD_NUMBER.fullmatch(pred):
        rest = _PARENTHETICAL.sub("", pred[m.end(1):])
        if not any(c.isdigit() for c in rest) and not _MODIFIER.search(rest):  # "5 thousand"
            return m.group(1)
    if m := _GLUED_UNIT.fullmatch(pred):
        return m.group(1)
    return pred


def _plus_minus(s):
    """One \\pm as the two values it stands for: "1 \\pm \\sqrt{2}" -> "1 + \\sqrt{2}, 1 - \\sqrt{2}"."""
    parts = _PM.split(s)
    return f"{parts[0]}+{parts[1]},{parts[0]}-{parts[1]}" if len(parts) == 2 else s


def is_equiv(pred, gold):
    """Whether answer spans pred and gold are the same answer (rules in the module docstring)."""
    if not isinstance(pred, str) or not isinstance(gold, str):
        return False  # no answer (None) is never correct
    # NFKC turns full-width digits and letters into ASCII, before looking for hedge words
    pred, gold = (unicodedata.normalize("NFKC", s.translate(_UNICODE)) for s in (pred, gold))
    g = _normalize(gold)
    if _HEDGE.search(pred) and not _HEDGE.search(gold):
        if structure(g)[0] != "{}":
            return False
        pred = _ALTERNATIVES.sub(",", _plus_minus(pred))  # "x = 2 or x = -3" for gold "2, -3"
        if _HEDGE.search(pred):
            return False
    p = _normalize(_as_number(_CURRENCY.sub("", pred.strip()), g))
    if p == "" or g == "":
        return False
    if _WORDS.fullmatch(p) and _WORDS.fullmatch(g):  # text: \text{monday} = Monday
        return p.casefold() == g.casefold()
    if (c := _CHOICE.fullmatch(p)) and (d := _CHOICE.fullmatch(g)) and d[1].isupper():
        return c[1] == d[1] or (c[1].upper() == d[1] and p[0] == "(")  # "(b)", "B", "(B)"
    return same(p, g)


def math_reward(completion, gold, *, signed=False):
    """1.0 if the completion's final answer equals the gold answer, else 0.0.

    gold is a number (4, 0.5), a bare answer ("80", "\\frac{1}{2}") or a whole worked solution ending in "#### 72"
    (GSM8K) or holding a \\boxed{...} (MATH); a solution's final answer is found by the same
    rules as the completion's. signed=True gives +1.0 / -1.0, as the official FlowRL code does;
    after the group z-score (r_hat) both scales give the same FlowRL loss.
    """
    try:
        if isinstance(gold, (int, float)) and not isinstance(gold, bool) and math.isfinite(gold):
            gold = str(gold)  # a numeric gold answer, as a dataset may store it: 4 or 0.5
        if "####" in gold or "\\boxed" in gold or "\\fbox" in gold:
            gold = extract_answer(gold)
        correct = is_equiv(extract_answer(completion), gold)
    except Exception:  # one strange completion must never stop a training run
        correct = False
    if signed:
        return 1.0 if correct else -1.0
    return 1.0 if correct else 0.0


if __name__ == "__main__":
    from tasks import mathexpr

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
        "algebra": ("\\boxed{(x+1)^2 - \\frac{y}{2}}", "x^2+2x+1-y/2"),
        "20k-digit box": ("\\boxed{" + "7" * 20_000 + "}", "7" * 20_000),
        "100k-char sum": ("\\boxed{" + "+".join(["1"] * 50_000) + "}", "50000"),
        "10k-deep braces": ("\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}", "1"),
        "10k answer tags": ("<answer>1</answer>" * 10_000, "1"),
        "10k open tags": ("<answer>" * 10_000, "1"),
        "30k x's": ("\\boxed{" + "x" * 30_000 + "}", "x"),
        "20k divisions": ("\\boxed{" + "1/" * 20_000 + "1}", "1"),
        "3000 fractions": ("\\boxed{" + "+".join(f"\\frac{{1}}{{{i}}}" for i in range(1, 3000)) + "}", "1"),
        "2000 powers (refused)": ("\\boxed{" + "+".join(["x^{40}"] * 2000) + "}", "2000x^{40}"),
    }
    for name, (completion, gold) in cases.items():
        n, t0 = 100, time.perf_counter()
        for _ in range(n):
            mathexpr.evaluate.cache_clear()  # time the parsing too, not a cache hit
            reward = math_reward(completion, gold)
        ms = (time.perf_counter() - t0) / n * 1000
        print(f"{name:>21}: {ms:7.3f} ms/call   ({len(completion):>6} chars, reward {reward})")

"""
Rule-based reward for math answers: 1 if the completion's final answer equals the gold answer.

The reward is the only supervision RL gets, and a reward that can be fooled teaches the policy
to fool it: a grader that accepts "7 or 8" for gold 7 trains a policy that hedges. So it grades
as a careful human grader does, and where a completion is ambiguous it gives 0.

extract_answer(completion) finds the final answer:
  - only the text after the last </think> counts, and an unclosed <think> hides the rest;
  - the final answers are every \\boxed{...} / \\fbox{...} (nested braces balanced), every
    "#### ..." line (even a markdown heading) and every <answer>...</answer>; the one that
    starts LAST counts, so "\\boxed{3}. Wait, actually it is \\boxed{5}" answers 5. Reflecting
    and correcting is what RL on math should reward; writing several answers gains nothing;
  - a box or an <answer> tag that never closes gives no answer, rather than an earlier one;
  - with no final answer, the text after the last "The answer is", "Final answer:" or
    "Answer:", to the end of its sentence; with none of these either, a last line that is all
    bold ("**42**") or a true calculation ("40 + 2 = 42"); else no answer;
  - the words around it are read too (remarks.py): a hedge just before it ("either 41 or
    \\boxed{42}") or anything after it, on its line or any later one, that changes it
    ("\\boxed{7} doubled", "#### 42" then "or possibly 43", "(should be 44)") gives no answer;
    text that explains or restates it ("#### 30 (15 + 15 = 30)", "I hope it is correct") is fine.

is_equiv(pred, gold) compares two answers as a careful human grader does:
  - "$1,000.", "1000 dollars", "USD 1000", "１０００", "**1000**" and "01000" are 1000; "50%"
    is 50; against a number, a leading number and a remark that does not change it:
    "42 apples (since 6 x 7 = 42)", "60 km/h", "5cm" are 42, 60 and 5, while "5 thousand(s)",
    "12 plus one", "42 (negative)", "10 more" and "5 x" are not 5, 12, 42 or 10;
  - notation: \\dfrac, \\cfrac, {a \\over b}; \\[ \\], \\( \\) and bare [ ] around an answer;
    unicode ½ ≤ √ π ∞ − ×; \\degree; plain sqrt(2) and pi/2; \\emptyset = \\varnothing;
    1010_{2} = 1010_2; redundant braces {{{7}}} at any depth, dropped in linear time;
  - text ignores case, \\text{monday} = Monday; choices "(B)", "B", \\text{(B)} are one choice;
  - values, algebra, equations, intervals, sets and tuples are compared by mathcompare.same,
    exactly where the values are exact (rationals, roots, pi). A decimal is the number it
    writes: right for an exact gold only when equal to it (0.25 for 1/4, 2.50 for 5/2), never
    when merely close (0.333 for 1/3; no decimal is \\sqrt{3} or \\pi: a careful grader asks for
    the exact value); a decimal gold ("1.73", a rounded answer) wants that decimal, so 1.730 is
    right and \\sqrt{3} is not. Values with no exact form (\\sin 1, \\ln 2) agree to 100 digits
    or not at all. Identities are checked at points drawn from a hash of both answers;
  - hedges are wrong: "or", "and", "either", "between", "maybe", "about", "at least", "-ish",
    \\approx or \\pm in the prediction (not in the gold), and several values ("5, 6") never
    equal one; but when the gold lists several values, "x = 2 or x = -3" and "1 \\pm \\sqrt{2}"
    list them too.

math_reward(completion, gold) puts the two together and never raises. Every call is linear in
its input: each part of a completion is read a bounded number of times (no pattern backtracks
over a run), and what is read is capped (MAX_BOXES, MAX_BRACE_RUNS, MAX_ANSWER, and
remarks.MAX_REMARK after the answer); past a cap the completion has no answer.
`python -m tasks.grader` times it on pathological completions, and `python -m benchmarks.grader`
on 1 MB ones.
"""

import math
import re
import time
import unicodedata

from tasks.mathcompare import same, structure
from tasks.normalize import CURRENCY, SHORT_UNITS, UNICODE, normalize
from tasks.remarks import changes, hedged

MAX_ANSWER = 100_000  # longest answer compared, in characters (a 100,000-character sum is judged)
MAX_BOXES = 10_000  # most boxes in a completion; more, and it has no answer
MAX_BRACE_RUNS = 50_000  # most runs of braces read inside boxes; more, and it has no answer
MAX_LEAD = 200  # characters before a final answer read for a hedge, within its sentence
MAX_LINE = 300  # longest last line read as a bold answer or a calculation

# -----------------------------------------------------------------------------
# extraction: which part of a completion is its final answer

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
# an escaped brace or a run of braces; it starts with a character class, which the regex engine
# scans for quickly (an alternation of literals scans several times slower)
_BRACES = re.compile(r"[{}\\](?:(?<=\{)\{*|(?<=\})\}*|(?<=\\)[{}])")
_ANCHOR = re.compile(r"the (?:final )?answer is|final answer\s*:|answer\s*:", re.IGNORECASE)
# the same phrases backwards, on the lower-cased text reversed: its first match is the last anchor
_ANCHOR_REVERSED = re.compile(r"si rewsna (?:lanif )?eht|:\s*rewsna(?: lanif)?")
_ANCHOR_REVERSED_ANY_CASE = re.compile(_ANCHOR_REVERSED.pattern, re.IGNORECASE)  # slower
_LEAD_ANCHOR = re.compile(r"^\**(?:%s)\**\s*" % _ANCHOR.pattern, re.IGNORECASE)  # "#### Answer: 7"
_SENTENCE_END = re.compile(r"\.(?:\s|$)")  # "is 3.5. So" ends after 3.5, not inside it
_SENTENCE_START = re.compile(r".*(?:\n|[.!?]\s)", re.DOTALL)  # greedy: up to the last boundary
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
_BOLD_LINE = re.compile(r"\*\*([^*]+)\*\*[.!]?")
# a last line "So 40 + 2 = 42 apples.": (words, calculation, unit words)
_CALCULATION = re.compile(r"(?:([A-Za-z][A-Za-z ,']*?)[:,]?\s+)?([-(\d][\d\s.,+\-*/×÷x()]*"
                          r"(?:=[\d\s.,+\-*/×÷x()]+)+)(\s+[A-Za-z][A-Za-z ]*)?[.!]?")
_END_TOKEN = re.compile(r"<\|[a-z_]{1,20}\|>|</s>")  # <|endoftext|>, <|im_end|>, </s>
_MATH_MODE = re.compile(r"\$|\\[()\[\]]")
_BROKEN = "broken"  # a box or a tag that never closes


def _visible(text):
    """The response without its reasoning: the text after the last </think> (a chat template
    may open <think> in the prompt), up to an unclosed <think>, which hides the rest: a model
    that did not finish reasoning gave no answer. End-of-text tokens end a line."""
    end = text.rfind("</think>")
    if end != -1:
        text = text[end + len("</think>"):]
    start = text.find("<think>")
    text = text if start == -1 else text[:start]
    return _END_TOKEN.sub("\n", text)  # "#### 12</s>" ends its line


def _last_box(text):
    """(start, end, contents) of the last outermost \\boxed{...}; None if there is none; _BROKEN
    if one never closes, or the boxes are past MAX_BOXES or MAX_BRACE_RUNS."""
    if text.count("\\boxed") + text.count("\\fbox") > MAX_BOXES:
        return _BROKEN
    last, pos, runs = None, 0, 0
    while (m := _BOX.search(text, pos)) is not None:
        depth, pos = 1, None
        for run in _BRACES.finditer(text, m.end()):  # one linear pass, no recursion
            runs += 1
            if runs > MAX_BRACE_RUNS:
                return _BROKEN
            braces = run.group()
            if braces[0] == "\\":
                continue  # an escaped brace \{ is text, not a group
            depth += len(braces) if braces[0] == "{" else -len(braces)
            if depth <= 0:  # this run holds the closing brace; pos is just after it
                pos = run.end() + depth
                break
        if pos is None:
            return _BROKEN
        last = (m.start(), pos, m.end())
    return last and (last[0], last[1], text[last[2]:last[1] - 1].strip())


def _last_hash(text):
    """(start, end, contents) of the last "#### ..." line (to its end or an </answer>), or None."""
    at = text.rfind("####")
    if at == -1:
        return None
    line_end = text.find("\n", at)
    line_end = len(text) if line_end == -1 else line_end
    tag = text.find("</answer>", at, line_end)
    end = line_end if tag == -1 else tag
    start = len(text[:at].rstrip("#"))  # where its run of #'s starts
    return start, end, _LEAD_ANCHOR.sub("", text[at + 4:end].strip())


def _last_tag(text):
    """(start, end, contents) of the last <answer>...</answer>, None, or _BROKEN if it never
    closes."""
    start = text.rfind("<answer>")
    if start == -1:
        return None
    end = text.find("</answer>", start)
    if end == -1:
        return _BROKEN
    return start, end + len("</answer>"), text[start + len("<answer>"):end].strip()


def _last_anchor(text):
    """(start, end, answer) after the last anchor phrase, to the end of its sentence, or None."""
    if text.isascii():  # lower() keeps an ASCII text's length, so positions stay
        m = _ANCHOR_REVERSED.search(text.lower()[::-1])
    else:
        m = _ANCHOR_REVERSED_ANY_CASE.search(text[::-1])
    if m is None:
        return None
    start, end = len(text) - m.end(), len(text) - m.start()
    line_end = text.find("\n", end)
    line = text[end:line_end if -1 < line_end < end + MAX_ANSWER else end + MAX_ANSWER + 2]
    sentence = _SENTENCE_END.split(line, 1)[0]
    return start, end + len(sentence), sentence.strip(" *:")  # "**Answer:** 42."


def _last_line(text):
    """(start, end, answer) of a last line that is all bold, "**42**", or a true calculation,
    "40 + 2 = 42" (its last side), or None."""
    body = text.rstrip()
    start = body.rfind("\n") + 1
    if len(body) - start > 2 * MAX_LINE:
        return None
    line = _MATH_MODE.sub("", body[start:]).strip()
    if len(line) > MAX_LINE:
        return None
    if m := _BOLD_LINE.fullmatch(line):
        return start, len(body), m[1]
    if not (m := _CALCULATION.fullmatch(line)):
        return None
    words, calculation, unit = m.groups()
    sides = [side.strip() for side in calculation.replace("x", "*").split("=")]
    remark = f"{words or ''} {unit or ''}"
    if changes(remark, sides[-1], _same_value) or not all(_same_value(s, sides[-1]) for s in sides):
        return None
    return start, len(body), sides[-1]


def _final(text):
    """(answer, lead, remark) of a completion: its final answer, what leads to it (_lead), and
    all the text after it; None if it has none; _BROKEN if a box or tag is broken."""
    text = _visible(text)
    finals = [_last_box(text), _last_hash(text), _last_tag(text)]
    if _BROKEN in finals:
        return _BROKEN
    finals = [f for f in finals if f is not None]
    # the one that starts last: a box inside a tag beats the tag
    final = max(finals) if finals else (_last_anchor(text) or _last_line(text))
    if final is None:
        return None
    start, end, answer = final
    return answer, _lead(text, start), text[end:]


def _lead(text, start):
    """(lead, whole) before a final answer: the text before it in its sentence (whole=True),
    or, when the answer opens its own sentence or line, the sentence before (whole=False)."""
    lead = text[max(0, start - MAX_LEAD):start]
    if (m := _SENTENCE_START.match(lead)) is None:
        return lead, True
    if _MATH_MODE.sub("", lead[m.end():]).strip(" \t*#"):
        return lead[m.end():], True
    before = lead[:m.end()].rstrip()  # "It is 41 or 42."
    m = _SENTENCE_START.match(before[:-1])
    return (before[m.end():] if m else before), False


def _core(answer):
    """The value an answer states, for reading a remark: "42 apples" -> "42"."""
    lead = _split_lead(answer)
    return lead[0] if lead else answer


def extract_answer(text, *, last_number_fallback=False):
    """The final answer span of a completion, or None if it has none (module docstring).

    last_number_fallback=True returns the last number of a completion with no marker at all; it
    is off by default because it grades whatever number the reasoning ended on, so the policy
    learns to stop on numbers instead of stating an answer.
    """
    final = _final(text)
    if final is None and last_number_fallback:
        numbers = _NUMBER.findall(_visible(text))
        return numbers[-1] if numbers else None
    if final is None or final is _BROKEN:
        return None
    answer, (lead, whole), remark = final
    if len(answer) > MAX_ANSWER or hedged(lead, whole):
        return None
    if changes(remark, _core(answer), _same_value):
        return None
    return answer


# -----------------------------------------------------------------------------
# equivalence: two answers, normalised (normalize.py), then compared (mathcompare.py)

# a hedge inside an answer: a word (found among its letter runs, which is quick on a long
# answer, where an alternation of words scans slowly) or a sign
_HEDGE_WORDS = frozenset("or and nor either between maybe perhaps possibly about around roughly "
                         "approx approximately nearly almost least most circa ish".split())
_LETTERS = re.compile(r"[A-Za-z]+")
_HEDGE_SIGN = re.compile(r"\\(?:pm|mp|approx|sim)(?![A-Za-z])|[±∓≈]|^\s*~")
_ALTERNATIVES = re.compile(r"\\text\{\s*(?:or|and)\s*\}|\b(?:or|and)\b")
_PM = re.compile(r"\\pm(?![A-Za-z])|±")
_LEAD = re.compile(r"\\?\$?(-?\d[\d,]*(?:\.\d+)?)(?:\\?%)?")  # "$42", "25%": a leading number
# what may follow a leading number for the rest to be a remark: "42.", "42 apples", "42 (6 x 7)";
# not "5 x", "2(3+4)", "1 000"
_REMARK_START = re.compile(r"\s*[,;:.—]|\s+(?:\(|[A-Za-z]{3,}|(?:%s)\b)" % SHORT_UNITS)
_GOLD_NUMBER = re.compile(r"-?\d*\.?\d+")
_GLUED_UNIT = re.compile(r"(-?\d+(?:\.\d+)?)(?:cm|mm|km|kg|mg|m|g|lbs?|oz|ft|hrs?|mins?|secs?|mph"
                         r"|kph)(?:/(?:h|hr|s|min))?")  # "5cm", "1200m", "60km/h"; not "5x", "5k"
_BOLD = re.compile(r"\*\*([^*]*)\*\*")  # markdown bold: "**42**"
_CHOICE = re.compile(r"\(?([A-Ea-e])\)?")
_WORDS = re.compile(r"(?=.*[A-Za-z]{3})[A-Za-z ]+")  # text: at least one word of 3 letters


def _split_lead(s):
    """(number, remark) of an answer that is a number followed by a remark, "42 apples (6 x 7)",
    or None: "42", "1 000", "2 1/2", "5 x" are not."""
    m = _LEAD.match(s)
    if m is None or not m.end() < len(s) or not _REMARK_START.match(s, m.end()):
        return None
    return m[1].rstrip(","), s[m.end():]


def _as_number(pred, remarks):
    """Against a gold number, pred's leading number if what follows does not change it
    (remarks.changes), pred itself if it has none, or None if what follows changes it."""
    if remarks and (lead := _split_lead(pred)) is not None:
        number, remark = lead
        return None if changes(remark, number, _same_value) else number
    if m := _GLUED_UNIT.fullmatch(pred):
        return m.group(1)
    return pred


def _hedges(s):
    words = _LETTERS.findall(s)
    return bool(_HEDGE_SIGN.search(s)) or any(w.lower() in _HEDGE_WORDS for w in words)


def _plus_minus(s):
    """One \\pm as the two values it stands for: "1 \\pm \\sqrt{2}" -> "1 + \\sqrt{2}, 1 - \\sqrt{2}"."""
    parts = _PM.split(s)
    return f"{parts[0]}+{parts[1]},{parts[0]}-{parts[1]}" if len(parts) == 2 else s


def is_equiv(pred, gold, *, remarks=True):
    """Whether answer spans pred and gold are the same answer (rules in the module docstring).
    remarks=False compares values alone, as remarks.changes does for a restatement."""
    if not isinstance(pred, str) or not isinstance(gold, str):
        return False  # no answer (None) is never correct
    if len(pred) > MAX_ANSWER or len(gold) > MAX_ANSWER:
        return False
    # NFKC turns full-width digits and letters into ASCII, before looking for hedge words
    pred, gold = (unicodedata.normalize("NFKC", _BOLD.sub(r"\1", s).translate(UNICODE))
                  for s in (pred, gold))
    g = normalize(gold)
    if _hedges(pred) and not _hedges(gold):
        if structure(g)[0] != "{}":
            return False
        pred = _ALTERNATIVES.sub(",", _plus_minus(pred))  # "x = 2 or x = -3" for gold "2, -3"
        if _hedges(pred):
            return False
    pred = CURRENCY.sub("", pred.strip())
    if _GOLD_NUMBER.fullmatch(g) and (pred := _as_number(pred, remarks)) is None:
        return False
    p = normalize(pred)
    if p == "" or g == "":
        return False
    if _WORDS.fullmatch(p) and _WORDS.fullmatch(g):  # text: \text{monday} = Monday
        return p.casefold() == g.casefold()
    if (c := _CHOICE.fullmatch(p)) and (d := _CHOICE.fullmatch(g)) and d[1].isupper():
        return c[1] == d[1] or (c[1].upper() == d[1] and p[0] == "(")  # "(b)", "B", "(B)"
    return same(p, g)


def _same_value(a, b):
    return is_equiv(a, b, remarks=False)


def math_reward(completion, gold, *, signed=False):
    """1.0 if the completion's final answer equals the gold answer, else 0.0.

    gold is a number (4, 0.5), a bare answer ("80", "\\frac{1}{2}") or a whole worked solution
    ending in "#### 72" (GSM8K) or holding a \\boxed{...} (MATH); a solution's final answer is
    found by the same rules as the completion's, without reading the words around it (a
    solution may go on after its answer). signed=True gives +1.0 / -1.0, as the official FlowRL
    code does; after the group z-score (r_hat) both scales give the same FlowRL loss.
    """
    try:
        if isinstance(gold, (int, float)) and not isinstance(gold, bool) and math.isfinite(gold):
            gold = str(gold)  # a numeric gold answer, as a dataset may store it: 4 or 0.5
        if "####" in gold or "\\boxed" in gold or "\\fbox" in gold:
            final = _final(gold)
            gold = final[0] if isinstance(final, tuple) else None
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

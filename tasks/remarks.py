"""
What the words around a final answer say about it, for grader.py. A careful grader reads the
whole response: text after the final answer that changes or hedges it makes the answer wrong,
text that explains or restates it does not.

changes(remark, answer, same) reads `remark`, the text after `answer` (the rest of its line, or
everything after the final answer), and says whether it changes or hedges the answer:
  - a word in CHANGES: arithmetic ("plus one", "doubled", "more"), scale ("thousands", "tenths",
    "grand"; "42k", "42 M"), sign ("negative"), hedges ("or", "at least", "roughly", "-ish",
    "if", "unless"), retractions ("wrong", "but", "no", "can't be right"); or a question mark;
  - a number, or a number word, that does not restate the answer: each must be the answer again
    (42, forty-two, 0.75 for 3/4), a side of a calculation whose sides all equal it ("(since
    6 x 7 = 42)", "(15 + 15 = 30)"), an operand of such a calculation after it ("3 rows of 4,
    so 3 * 4 = 12"), or a part of it ("6 each", "7 per box", "18 in the first half"); so
    "(should be 44)", "(44 in total)" and "unless it is forty-three" change it;
  - doubt that the remark does not resolve: after "wait", "hmm", "actually" or "let me check"
    the answer must be restated ("Hmm wait, let me check: k = 6 works" keeps k = 6).
The response ends where a line starts a new problem ("Question:", "Problem 2."): a model that
goes on to invent the next exercise has still answered this one.

hedged(lead) says whether the text just before a final answer, in its sentence, hedges it:
"either 41 or \\boxed{42}", "maybe \\boxed{42}", "at least \\boxed{42}"; or, when the answer
opens a sentence, whether the sentence before ends on alternatives: "It is 41 or 42. \\boxed{42}".

Both read their text a bounded number of times (no pattern here backtracks over a run).
"""

import re

MAX_REMARK = 4000  # characters read after an answer: a longer remark is refused, not read
MAX_PIECES = 16  # most numbers or calculations in a remark
MAX_PIECE = 200  # longest calculation compared with the answer

# words that change or hedge the answer they follow ("square" and "cubic" are unit words)
CHANGES = frozenset("""
    or nor either maybe perhaps possibly possible probably likely unlikely approximately
    approximate approx roughly about around nearly almost circa ish estimate estimated guess
    unsure uncertain sure think believe suspect seems seem might may could would unless
    otherwise alternatively alternative depending depends if assuming assume suppose between
    range least most close closer minimum maximum upwards thereabouts ballpark est tentative
    tentatively provisional preliminary presumably supposedly apparently seemingly arguably
    fairly somewhat confidence
    wrong incorrect incorrectly mistake mistaken error erroneous oops no nope not never cannot
    invalid impossible redo reconsider recalculate recompute revise revised correction corrected
    instead rather typo mean meant misread miscalculated off false untrue bad disregard ignore
    retract withdraw but however though although yet except excluding without
    plus minus times multiplied multiply divided divide over doubled double tripled triple
    twice thrice halved half halves squared cubed root more less fewer extra additional add
    added subtract subtracted increase increased decrease decreased reduced raised power
    inverse reciprocal opposite than remainder
    hundred hundreds thousand thousands million millions billion billions trillion trillions
    dozen dozens grand lakh crore tenth tenths hundredth hundredths thousandth thousandths
    third thirds quarter quarters fifth fifths sixth sixths seventh sevenths eighth eighths
    ninth ninths
    negative negatively positive absolute below deficit debt loss owe owes owed
""".split())
# doubt that a later restatement of the answer resolves
_DOUBT = frozenset("wait hmm hm hmmm actually check checking verify verifying verification "
                   "recheck rechecking confirm confirming should".split())

_NEW_PROBLEM = re.compile(r"\n[ \t*#]*(?:question|problem|exercise|example|human|user|q)\b"
                          r"[ \t]*\d*[ \t]*[:.)]", re.IGNORECASE)
_CLOSING = re.compile(r"let me know if you have (?:any )?(?:other |more |further )?questions",
                      re.IGNORECASE)
_SCALE = re.compile(r"[\s{}]*(?:k|K|M|B|bn|mn|mil|mln|[Ss]cores?)\b")  # "42k", "\boxed{42} M"
_MARKUP = re.compile(r"\\[()\[\]]|\$|\*\*|</?answer>|\\[,;:! ]")
_SYMBOLS = str.maketrans({"−": "-", "–": "-", "×": "*", "÷": "/", "·": "*", "’": "'"})
_LATEX_OPS = re.compile(r"\\(?:times|cdot|div)(?![A-Za-z])")
_OPERATOR_WORDS = re.compile(r"(?<=\d)[ \t]+(plus|minus|times|multiplied by|divided by|over)"
                             r"[ \t]+(?=[\d(])", re.IGNORECASE)  # "6 times 7", not "12 plus one"
_OPERATORS = {"plus": "+", "minus": "-", "times": "*", "multiplied by": "*", "divided by": "/",
              "over": "/"}
_TIMES_X = re.compile(r"(?<=\d)[ \t]*[xX][ \t]*(?=\d)")  # "6 x 7"
_UNIT_POWER = re.compile(r"(?<=[A-Za-z])\^\{?[23]\}?")  # "m^2", "cm^{3}"
_COMMAND = re.compile(r"\\[A-Za-z]+")  # \text, \quad: commands, not words
_PART = re.compile(r"\b\d[\d.,]*[ \t]+(?:each|apiece|per[ \t]+[a-z]+|(?:in|on|for|during)[ \t]+"
                   r"the[ \t]+(?:first|second|third|fourth|fifth|last|other|next)[ \t]+[a-z]+)\b",
                   re.IGNORECASE)  # "6 each", "7 per box", "18 in the first half": a part
_DOUBLE_CHECK = re.compile(r"double[- ]?check")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_MATH = re.compile(r"(?:\\(?:frac|dfrac|tfrac|sqrt|pi)|[\d.,+\-*/^=(){}\[\]_|]"
                   r"|(?<![A-Za-z])[A-Za-z](?![A-Za-z])|[ \t])+")  # "k = 6", "(6*7 = 42)"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
# number words by value; not "one", which is a pronoun too
_SMALL = ["zero", None, *"two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen".split()]
_NUMBER_WORD = re.compile(r"\b(?:(%s)(?:[- ](%s))?|(%s))\b" % (
    "|".join(_TENS), "|".join(_SMALL[2:10]), "|".join(w for w in _SMALL if w)))

_LEAD_HEDGE = re.compile(r"\b(?:maybe|perhaps|possibly|probably|likely|guess|guessing|unsure|"
                         r"uncertain|estimate|estimated|approximate|tentative|presumably|"
                         r"supposedly|apparently|not (?:sure|certain)|(?:could|might|may) be)\b",
                         re.IGNORECASE)
_JUST_BEFORE = re.compile(r"(?:\b(?:or|about|around|roughly|approximately|approx|nearly|almost|"
                          r"least|most|than|over|under|circa|between|close|up to|minimum|maximum)\b"
                          r"(?:\W+\w+){0,2}"
                          r"|[~≈])\W*$", re.IGNORECASE)


def _number_word(m):
    tens, unit, small = m.groups()
    if small:
        return str(_SMALL.index(small))
    return str(20 + 10 * _TENS.index(tens) + (_SMALL.index(unit) if unit else 0))


def _restates(piece, answer, same):
    """Whether every side of `piece` that has a digit is the answer: "42", "(6*7 = 42)"."""
    if len(piece) > MAX_PIECE:
        return False
    for side in piece.split("="):
        side = side.strip()
        for left, right in ("()", "[]", "{}"):  # a bracket opened or closed outside this side
            while side[:1] == left and side.count(left) > side.count(right):
                side = side[1:].strip()
            while side[-1:] == right and side.count(right) > side.count(left):
                side = side[:-1].strip()
        if any(c.isdigit() for c in side) and not (
                same(side, answer) or side[:1] == "(" and same(side[1:-1], answer)):  # "(1,200)"
            return False
    return True


def changes(remark, answer, same):
    """Whether `remark`, the text after `answer`, changes or hedges it (module docstring).
    same(a, b): whether two answer strings are the same value (grader.is_equiv)."""
    if (m := _NEW_PROBLEM.search(remark, 0, MAX_REMARK + 1)) is not None:
        remark = remark[:m.start()]
    remark = remark.rstrip()
    if len(remark) > MAX_REMARK or _SCALE.match(remark):
        return True
    remark = _CLOSING.sub(" ", remark)  # "Let me know if you have any questions": no condition
    text = _LATEX_OPS.sub("*", _MARKUP.sub(" ", remark).translate(_SYMBOLS))
    text = _OPERATOR_WORDS.sub(lambda m: f" {_OPERATORS[m[1].lower()]} ", text)
    text = _UNIT_POWER.sub("", _TIMES_X.sub("*", text))
    text = _PART.sub(lambda m: " " * len(m[0]), text)  # "(18 in the first half)": a detail
    if "?" in text:
        return True
    # 1) words: commands blanked to spaces of their length, so positions stay those of `text`
    words = _COMMAND.sub(lambda m: " " * len(m[0]), text).lower()
    words = _DOUBLE_CHECK.sub(lambda m: " " * (len(m[0]) - 5) + "check", words)
    found = [(m.start(), m[0]) for m in _WORD.finditer(words)]
    if any(w in CHANGES or w.endswith("n't") for _, w in found):
        return True
    # 2) numbers: each one restates the answer
    pieces = [(m.start(), m[0].strip(" .,;:")) for m in _MATH.finditer(text)
              if any(c.isdigit() for c in m[0])]
    pieces += [(m.start(), _number_word(m)) for m in _NUMBER_WORD.finditer(words)]
    if len(pieces) > MAX_PIECES:
        return True
    operands = set()  # numbers of a calculation of the answer: "3 rows of 4, so 3 * 4 = 12"
    for _, piece in sorted(pieces, reverse=True):
        if _restates(piece, answer, same):
            operands.update(_NUMBER.findall(piece))
        elif not (_NUMBER.fullmatch(piece) and piece in operands):
            return True  # another value; an operand must come before its calculation
    # 3) doubt: resolved by a restatement after it
    doubt = max((i for i, w in found if w in _DOUBT), default=None)
    return doubt is not None and not any(i > doubt for i, _ in pieces)


def hedged(lead, whole=True):
    """Whether `lead`, the text before a final answer in its sentence (whole=True), hedges it;
    or, for the sentence before an answer that opens its own, whether it ends on alternatives
    ("It is 41 or 42. \\boxed{42}"): a "maybe" there is part of the reasoning."""
    lead = _MARKUP.sub(" ", lead).replace("\\approx", "≈").replace("\\sim", "≈")
    lead = _COMMAND.sub(" ", lead)  # "between \\boxed{40} and ": two words
    return bool(whole and _LEAD_HEDGE.search(lead) or _JUST_BEFORE.search(lead))

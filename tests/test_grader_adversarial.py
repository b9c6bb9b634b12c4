"""
The math grader against inputs a policy could exploit: a property test that no string raises,
pathological inputs that must still return a reward, and tables of the false positives a policy
could learn, one class at a time, with the right answers of each class beside them; the hashed
evaluation points of class 5 and the linear time of class 6.
"""

import random
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.grader_cases import PATHOLOGICAL_1MB
from reward import math_reward
from tasks import mathexpr
from tasks.grader import extract_answer, is_equiv
from tasks.mathcompare import same
from tasks.remarks import changes, hedged


# -----------------------------------------------------------------------------
# properties: any string at all gives a reward, never an exception

_PIECES = list("0123456789{}()[]\\^_#$.,/-+=* x\n") + [
    "\\boxed{", "####", "\\frac", "\\sqrt", "\\pi", "\\left(", "<think>", "</think>",
    "The answer is ", " or ", "e9", "\\text{",
]
messy = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), messy), st.one_of(st.text(max_size=20), messy))
def test_any_string_gives_a_reward(completion, gold):
    assert math_reward(completion, gold) in (0.0, 1.0)
    # the parts do not raise either: math_reward's try/except is only a last guard
    assert isinstance(is_equiv(extract_answer(completion), gold), bool)
    assert isinstance(is_equiv(completion, gold), bool)


@settings(max_examples=100, deadline=None)
@given(st.integers(-10**12, 10**12))
def test_integer_with_thousands_separators(n):
    assert math_reward(f"#### {n:,}", str(n)) == 1.0
    assert math_reward(f"#### {n + 1:,}", str(n)) == 0.0


@settings(max_examples=200, deadline=None)
@given(st.integers(-20, 20), st.integers(-20, 20), st.integers(-400, 400))
def test_polynomial_identity(a, b, c):
    # (x+a)(x+b) = x^2 + (a+b)x + ab, so the expansion with constant c is right only if c = ab:
    # a wrong constant changes the value at every point, and no point can hide it
    expanded = f"x^2+({a + b})x+({c})"
    assert math_reward(rf"\boxed{{(x+({a}))(x+({b}))}}", expanded) == (1.0 if c == a * b else 0.0)


# -----------------------------------------------------------------------------
# pathological inputs: each must return a reward (times are printed by `python -m tasks.grader`)

PATHOLOGICAL = {
    "100k-chars": ("Let me think step by step. " * 3700 + "#### 80", "80", 1.0),
    "100k-digits": ("9" * 100_000, "9", 0.0),
    "100k-braces": ("{" * 100_000, "1", 0.0),
    "100k-think-tags": ("<think>" * 15_000, "1", 0.0),
    "10k-deep-box": ("\\boxed{" * 10_000 + "1" + "}" * 10_000, "1", 1.0),  # redundant braces
    "10k-deep-braces": ("\\boxed{" + "{" * 10_000 + "1" + "}" * 10_001, "1", 1.0),
    "10k-deep-unclosed": ("\\boxed{" + "{" * 10_000 + "1", "1", 0.0),
    "10k-boxes": ("\\boxed{1}" * 10_000, "1", 1.0),
    "10k-hash-lines": ("".join(f"#### {i}\n" for i in range(10_000)), "1", 0.0),
    "10k-anchors": ("The answer is 1. " * 10_000, "1", 1.0),
    "9^{9^{9}}": ("\\boxed{9^{9^{9}}}", "1", 0.0),
    "10^{10^{10}}": ("\\boxed{10^{10^{10}}}", "10^{10^{10}}+1", 0.0),
    "huge-factors": ("\\boxed{" + "*".join(["10^{1000}"] * 50) + "}", "1", 0.0),
    "20k-divisions": ("\\boxed{" + "1/" * 20_000 + "1}", "1", 0.0),  # refused for its work
    "100k-char-sum": ("\\boxed{" + "+".join(["1"] * 50_000) + "}", "50000", 1.0),  # judged
    "20k-digits": ("\\boxed{" + "7" * 20_000 + "}", "7" * 20_000, 1.0),
    "long-sign-chain": ("\\boxed{" + "-" * 400 + "1}", "1", 1.0),
}


@pytest.mark.parametrize("completion, gold, expected", PATHOLOGICAL.values(), ids=PATHOLOGICAL)
def test_pathological_inputs_return(completion, gold, expected):
    assert math_reward(completion, gold) == expected


# -----------------------------------------------------------------------------
# false positives a policy could learn, by class: each class has wrong answers that must get 0
# and right answers that must still get 1, so a grader that refuses everything fails too.
# (id, completion, gold, expected, the grader's reason)

FALSE_POSITIVES = {
    # 1. words after the final answer that change it: arithmetic, scale, sign, retraction, hedge,
    #    a second answer in words, a parenthesis that corrects
    1: [
        ("plus-one", "#### 12 plus one", "12", 0, "12 + 1 = 13"),
        ("plus-digit", "#### 12 plus 1", "12", 0, "12 + 1 = 13"),
        ("doubled", r"The total is \boxed{7} doubled.", "7", 0, "2 * 7 = 14"),
        ("times-two", r"\boxed{7}, times two", "7", 0, "14"),
        ("times-digit", r"\boxed{7} \times 2", "7", 0, "14"),
        ("squared-after", "#### 9 squared", "9", 0, "81"),
        ("more-than", "#### 5 more than Ann", "5", 0, "relative to something else"),
        ("thousands", "#### 5 thousands", "5", 0, "5000"),
        ("tenths", "#### 3 tenths", "3", 0, "3/10 = 0.3"),
        ("grand", "#### 2 grand", "2", 0, "2000 dollars"),
        ("dozen", "#### 4 dozen", "4", 0, "4 * 12 = 48"),
        ("k-suffix", r"\boxed{42}k", "42", 0, "42,000"),
        ("million-after-box", r"\boxed{12} million", "12", 0, "12,000,000"),
        ("negative", "#### 8 (negative)", "8", 0, "-8"),
        ("below-zero", "#### 8 below zero", "8", 0, "-8"),
        ("cant-be-right", "#### 42, but that can't be right", "42", 0, "withdrawn"),
        ("thats-wrong", r"\boxed{42}. No, that is wrong.", "42", 0, "withdrawn"),
        ("incorrect", "#### 42 (incorrect)", "42", 0, "withdrawn"),
        ("at-least", "#### at least 42", "42", 0, "a bound, not a value"),
        ("at-most-after", r"\boxed{42} at most", "42", 0, "a bound, not a value"),
        ("roughly-after", "#### 42, roughly", "42", 0, "about 42"),
        ("ish", "#### 42-ish", "42", 0, "about 42"),
        ("or-so", "#### 42 or so", "42", 0, "about 42"),
        ("unless-words", "#### 42 unless it is forty-three", "42", 0, "a second answer in words"),
        ("or-words", r"\boxed{42}, or forty-three", "42", 0, "a second answer in words"),
        ("should-be", "#### 42 (should be 44)", "42", 0, "a correction to 44"),
        ("actually", "#### 42 (actually 44)", "42", 0, "a correction to 44"),
        ("in-total", "#### 42 (44 in total)", "42", 0, "the total it states is 44"),
        ("question", r"\boxed{42} (44?)", "42", 0, "an open alternative"),
        ("is-that-right", r"\boxed{42}. Is that right?", "42", 0, "doubt"),
        ("false-calculation", "#### 42 (6 x 8 = 42)", "42", 0, "6 * 8 = 48: the check is false"),
        ("calculation-elsewhere", "#### 42 (42 + 1 = 43)", "42", 0, "it ends on 43"),
        ("ok-apples", "#### 12 apples", "12", 1, "a unit word"),
        ("ok-calculation", "#### 30 (15 + 15 = 30)", "30", 1, "15 + 15 = 30 restates 30"),
        ("ok-times-words", "#### 42 (6 times 7)", "42", 1, "6 * 7 = 42"),
        ("ok-x-times", r"\boxed{42} (since 6 x 7 = 42)", "42", 1, "6 * 7 = 42"),
        ("ok-km-per-hour", "#### 60 km/h", "60", 1, "a compound unit"),
        ("ok-metres-per-second", r"\boxed{9.5 \text{ m/s}}", "9.5", 1, "a compound unit"),
        ("ok-glued-compound", "#### 60km/h", "60", 1, "a compound unit glued to the number"),
        ("ok-words", "#### 42 (forty-two)", "42", 1, "the same number in words"),
        ("ok-sentence", r"\boxed{42}. That is the number of eggs.", "42", 1, "an explanation"),
        ("ok-hope", r"The final answer is $\boxed{42}$. I hope it is correct.", "42", 1,
         "a closing formula"),
        ("ok-exactly", "#### 42 exactly", "42", 1, "a confirmation"),
        ("ok-each", "#### 42 (6 each)", "42", 1, "a part of the answer"),
        ("ok-per-box", "#### 42 (7 per box)", "42", 1, "a part of the answer"),
        ("ok-bold", "#### **42**", "42", 1, "markdown bold"),
        ("ok-bold-line", "The eggs are counted.\n**42**", "42", 1, "a last line in bold"),
        ("ok-calculation-line", "Janet has 40 apples and buys 2.\n40 + 2 = 42", "42", 1,
         "a last line that is a true calculation: 40 + 2 = 42"),
        ("calculation-line-false", "Janet has 40 apples and buys 2.\n40 + 2 = 43", "42", 0,
         "40 + 2 is 42, not 43: the line states nothing"),
        ("calculation-line-hedged", "Janet has 40 apples.\nMaybe 40 + 2 = 42", "42", 0, "a hedge"),
        ("ok-calculation-on-hash", "#### 40 + 2 = 42", "42", 1, "a true calculation ending in 42"),
        ("ok-fraction-restated", r"\boxed{\frac{3}{4}}, that is 0.75 of the cake", "0.75", 1,
         "0.75 = 3/4"),
    ],
    # 2. lines after the answer's line are read too
    2: [
        ("next-line-or", "#### 42\nor possibly 43", "42", 0, "a hedge on the next line"),
        ("next-line-cant", "#### 42\nHmm, that can't be right.", "42", 0, "withdrawn"),
        ("next-line-wait", "#### 42\nWait.", "42", 0, "doubt that nothing resolves"),
        ("next-line-actually", "\\boxed{42}\n\nActually, it is 43.", "42", 0, "changed to 43"),
        ("next-line-answer", "#### 42\n\nThe answer is 43.", "42", 0, "changed to 43"),
        ("next-line-words", "#### 42\nforty-three", "42", 0, "43 in words"),
        ("anchor-next-line", "The answer is 42.\nMaybe 43.", "42", 0, "a hedge"),
        ("tag-next-line", "<answer>42</answer>\nOr 43.", "42", 0, "a hedge"),
        ("not-sure", "#### 42\nI am not sure about this.", "42", 0, "doubt"),
        ("far-below", "#### 42\n" + "Let me explain the steps.\n" * 20 + "Or it is 43.", "42", 0,
         "a hedge twenty lines later is still read"),
        ("ok-double-check", "#### 42\nLet me double-check: 6 * 7 = 42. Yes.", "42", 1,
         "a check that confirms: 6 * 7 = 42"),
        ("ok-restated", "#### 42\n\nThe answer is 42.", "42", 1, "restated"),
        ("ok-done", "#### 42\nDone.", "42", 1, "nothing that changes it"),
        ("ok-verify", "\\boxed{42}\n\nWait, let me verify: 40 + 2 = 42.", "42", 1,
         "the doubt is resolved by 40 + 2 = 42"),
        ("ok-new-question", "#### 42\n\nQuestion: Tom has 5 apples and eats 2. How many?", "42", 1,
         "the model went on to invent the next exercise: not part of this answer"),
        ("ok-tag-explained", "<answer>42</answer>\nThat is the number of legs.", "42", 1,
         "an explanation"),
    ],
    # 3. a hedge just before a single final answer
    3: [
        ("either-or", r"It is either 41 or \boxed{42}.", "42", 0, "one of two"),
        ("maybe", r"Maybe \boxed{42}.", "42", 0, "a hedge"),
        ("probably", r"The answer is probably $\boxed{42}$.", "42", 0, "a hedge"),
        ("guess", r"I guess \boxed{42}", "42", 0, "a hedge"),
        ("approximately", r"The answer is approximately \boxed{42}", "42", 0, "about 42"),
        ("at-least-before", r"It is at least \boxed{42}", "42", 0, "a bound"),
        ("comma-or", r"41, or \boxed{42}", "42", 0, "one of two"),
        ("between", r"It is between 40 and \boxed{42}", "42", 0, "a range"),
        ("anchor-maybe", "The answer is maybe 42.", "42", 0, "a hedge"),
        ("anchor-not-sure", "I'm not sure, but the answer is 42.", "42", 0, "a hedge"),
        ("could-be", r"It could be \boxed{42}.", "42", 0, "a hedge"),
        ("ok-either-way", r"Either way, \boxed{42}", "42", 1, "'either way' hedges nothing"),
        ("ok-or-far", r"We can take 3 or 4 coins at a time, so the total is \boxed{42}.", "42", 1,
         "the 'or' is about the coins, not the answer"),
        ("ok-about-far", r"Thinking about it again, the answer is \boxed{42}.", "42", 1,
         "'about' does not qualify the answer"),
        ("ok-plain", r"The answer is \boxed{42}.", "42", 1, "plain"),
        ("ok-earlier-sentence", r"\boxed{41} was a slip. So \boxed{42}.", "42", 1,
         "a correction in a new sentence"),
    ],
    # 4. closeness is not equality when the gold is exact
    4: [
        ("sqrt3-decimal", r"\boxed{1.7320508075688772}", r"\sqrt{3}", 0, "a decimal of sqrt(3)"),
        # 665857^2 = 443365544449 and 2 * 470832^2 = 443365544448: they differ by 1, so
        # 665857/470832 - sqrt(2) = 1 / (470832^2 (665857/470832 + sqrt(2))), about 1.6e-12
        ("sqrt2-fraction", r"\boxed{\frac{665857}{470832}}", r"\sqrt{2}", 0, "a fraction near sqrt 2"),
        ("pi-plus-tiny", r"\boxed{\pi + 10^{-11}}", r"\pi", 0, "pi + 1e-11 is not pi"),
        # sqrt(10^30 + 1) - 10^15 = 1 / (sqrt(10^30 + 1) + 10^15), about 5e-16
        ("near-square", r"\boxed{10^{15}}", r"\sqrt{10^{30}+1}", 0, "sqrt(10^30 + 1) > 10^15"),
        ("pi-decimal", r"\boxed{3.14159265358979}", r"\pi", 0, "a decimal of pi"),
        # 103993/33102 is a convergent of pi's continued fraction: |pi - 103993/33102| ~ 5.8e-10
        ("pi-convergent", r"\boxed{\frac{103993}{33102}}", r"\pi", 0, "a fraction near pi"),
        ("ln2-decimal", r"\boxed{0.6931471805599453}", r"\ln 2", 0, "a decimal of ln 2"),
        ("identity-plus-tiny", r"\boxed{\sin^2 x + \cos^2 x + 10^{-12}}", "1", 0,
         "1 + 1e-12 at every point"),
        ("third-decimal", r"\boxed{0.3333333333}", r"\frac{1}{3}", 0, "1/3 - 0.3333333333 = 1/(3e10)"),
        ("coefficient-decimal", r"\boxed{1.4142135623730951 x}", r"\sqrt{2}x", 0, "a decimal coefficient"),
        ("exact-for-decimal-gold", r"\boxed{\sqrt{3}}", "1.732", 0,
         "the gold asks for 1.732; sqrt(3) is not that number"),
        ("ok-quarter", r"\boxed{0.25}", r"\frac{1}{4}", 1, "0.25 = 1/4 exactly"),
        ("ok-sqrt12-half", r"\boxed{\sqrt{12}/2}", r"\sqrt{3}", 1, "sqrt 12 = 2 sqrt 3"),
        ("ok-two-over-sqrt2", r"\boxed{\frac{2}{\sqrt{2}}}", r"\sqrt{2}", 1, "2/sqrt 2 = sqrt 2"),
        ("ok-square-root-of-power", r"\boxed{\sqrt{10^{30}}}", "10^{15}", 1, "exactly 10^15"),
        # (sqrt 3 - 1) / ((sqrt 3 + 1)(sqrt 3 - 1)) = (sqrt 3 - 1) / (3 - 1)
        ("ok-rationalised", r"\boxed{\frac{1}{\sqrt{3}+1}}", r"\frac{\sqrt{3}-1}{2}", 1,
         "1/(sqrt 3 + 1) = (sqrt 3 - 1)/2"),
        ("ok-cube-root", r"\boxed{\sqrt[3]{-8}}", "-2", 1, "(-2)^3 = -8"),
        ("ok-log", r"\boxed{\log_2 8}", "3", 1, "2^3 = 8"),
        ("ok-cos", r"\boxed{\cos\frac{\pi}{3}}", "0.5", 1, "cos 60 degrees = 1/2"),
        ("ok-three-halves", r"\boxed{1.5}", r"\frac{3}{2}", 1, "1.5 = 3/2"),
        # sqrt 3 / sqrt 2 = sqrt 3 sqrt 2 / 2 = sqrt 6 / 2
        ("ok-root-quotient", r"\boxed{\frac{\sqrt{6}}{2}}", r"\frac{\sqrt{3}}{\sqrt{2}}", 1,
         "sqrt 6 / 2 = sqrt 3 / sqrt 2"),
        ("ok-decimal-gold", "#### 1.7320", "1.732", 1, "the gold's decimal, exactly"),
        ("ok-pi-over-sqrt3", r"\boxed{\frac{\pi}{\sqrt{3}}}", r"\frac{\sqrt{3}\pi}{3}", 1,
         "pi/sqrt 3 = sqrt 3 pi / 3"),
    ],
    # 5. algebraic identity at the grader's points
    5: [
        ("sqrt-plus-product", r"\boxed{\sqrt{x} + (x-1)(x-2)}", r"\sqrt{x}", 0,
         "(x-1)(x-2) vanishes at 1 and 2 only"),
        ("cube-off", r"\boxed{(x+1)^3}", "x^3+3x^2+3x", 0, "the constant 1 is missing"),
        ("power-binds-one-letter", r"\boxed{ab^2}", "a^2b^2", 0, "ab^2 = a * b^2, not (ab)^2"),
        ("rational-off", r"\boxed{\frac{x^2-1}{x+1}}", "x+1", 0, "(x^2-1)/(x+1) = x - 1"),
        ("two-letters-off", r"\boxed{(a+b)^2}", "a^2+ab+b^2", 0, "the cross term is 2ab"),
        ("ok-sqrt-4x", r"\boxed{\sqrt{4x}}", r"2\sqrt{x}", 1, "sqrt(4x) = 2 sqrt(x)"),
        ("ok-sqrt-cube", r"\boxed{\sqrt{x^3}}", r"x\sqrt{x}", 1, "sqrt(x^3) = x sqrt(x), x >= 0"),
        ("ok-inverse-root", r"\boxed{\frac{1}{\sqrt{x}}}", r"\frac{\sqrt{x}}{x}", 1,
         "1/sqrt x = sqrt x / x"),
        ("ok-cube", r"\boxed{(a+b)^3}", "a^3+3a^2b+3ab^2+b^3", 1, "the binomial theorem"),
        ("ok-double-angle", r"\boxed{2\sin x\cos x}", r"\sin 2x", 1, "sin 2x = 2 sin x cos x"),
        ("ok-rational", r"\boxed{\frac{x^2-1}{x+1}}", "x-1", 1, "(x-1)(x+1)/(x+1)"),
    ],
}


def _false_positive_cases():
    return [pytest.param(completion, gold, expected, reason, id=f"c{k}-{name}")
            for k, rows in FALSE_POSITIVES.items() for name, completion, gold, expected, reason in rows]


@pytest.mark.parametrize("completion, gold, expected, reason", _false_positive_cases())
def test_false_positive_classes(completion, gold, expected, reason):
    assert math_reward(completion, gold) == expected, reason


def test_each_class_has_wrong_and_right_answers():
    for rows in FALSE_POSITIVES.values():
        assert sum(r[3] == 0 for r in rows) >= 5 and sum(r[3] == 1 for r in rows) >= 5


def test_remark_reads_every_number():
    # the rest of "#### 42 ..." against 42: each number restates 42, or the remark changes it
    same = lambda a, b: is_equiv(a, b, remarks=False)  # noqa: E731
    assert not changes(" (since 6 x 7 = 42)", "42", same)  # 6 * 7 = 42 and 42 = 42
    assert not changes(" apples. Check: 40 + 2 = 42, yes.", "42", same)
    assert changes(" apples. Check: 40 + 3 = 42, yes.", "42", same)  # 40 + 3 = 43
    assert changes(" (18 + 24 = 42 points, 18 of them in the first minute)", "42", same)  # 18
    assert not changes("", "42", same) and not changes("  \n\n ", "42", same)


def test_hedged_lead():
    assert hedged("It is 41 or ") and hedged("The answer is probably ") and hedged("about ")
    assert not hedged("The answer is ") and not hedged("Either way, ")


# -----------------------------------------------------------------------------
# class 5: points an answer cannot anticipate


def test_fixed_points_can_be_gamed_hashed_points_cannot():
    # An answer that differs from the gold sqrt(x) by a product vanishing at the grader's points
    # passes when the points are fixed: here the 6 positive points of one seed (sqrt(x) is
    # undefined at the 6 negative ones, for both answers). The same answer compared with points
    # drawn from a hash of both strings is refused.
    seed = "fixed"
    roots = [mathexpr._point(seed, "x", k) for k in range(mathexpr.N_POINTS // 2)]
    product = "".join(f"(x-\\frac{{{r.numerator}}}{{{r.denominator}}})" for r in roots)
    pred = "\\sqrt{x}+" + product
    assert same(pred, "\\sqrt{x}", seed=seed)  # fixed points: a false positive
    assert not same(pred, "\\sqrt{x}")  # points from the hash of both: refused
    assert math_reward(f"\\boxed{{{pred}}}", "\\sqrt{x}") == 0.0
    # the grader's old fixed points (4 points, seeded by letter and index alone; the 2 positive
    # ones were the only points sqrt(x) was defined at) no longer pass either
    old = []
    for k in range(2):
        rng = random.Random(f"x/{k}")
        old.append(Fraction(rng.randint(1, 10**4), rng.randint(1, 97)))
    pred = "\\sqrt{x}+" + "".join(f"(x-\\frac{{{r.numerator}}}{{{r.denominator}}})" for r in old)
    assert math_reward(f"\\boxed{{{pred}}}", "\\sqrt{x}") == 0.0


def test_point_bound_on_a_small_range(monkeypatch):
    # mathexpr.py: a nonzero difference of degree d vanishes at one point with probability at
    # most d / POINT_RANGE, and at every one of n points with at most (d / POINT_RANGE)^n.
    # Checked where it can be seen, on POINT_RANGE = 10: a point is +-p/q with p, q in 1..10, and
    # the degree-2 difference x^2 - 1 vanishes only at x = +-1, that is p = q: 10 of the 100
    # pairs, probability 1/10 per point, within the bound 2/10.
    monkeypatch.setattr(mathexpr, "POINT_RANGE", 10)
    mathexpr._point.cache_clear()
    try:
        draws = [mathexpr._point(f"seed{i}", "x", k) for i in range(1000) for k in range(12)]
        per_point = sum(abs(x) == 1 for x in draws) / len(draws)
        assert 0.08 < per_point < 0.12 <= 2 / 10
        # two points both vanishing: about (1/10)^2 = 1/100, within (2/10)^2 = 4/100
        pairs = [(draws[i], draws[i + 1]) for i in range(0, len(draws), 12)]
        both = sum(abs(x) == 1 and abs(y) == 1 for x, y in pairs) / len(pairs)
        assert both < 0.03 < (2 / 10) ** 2
    finally:
        mathexpr._point.cache_clear()


def test_wrong_identities_never_pass():
    # 300 wrong answers x^2 + c (x - r)(x - s), c != 0, small r and s, against x^2: each is a
    # degree-2 difference, so each passes with probability at most (2 / 10^6)^6 = 6.4e-35
    rng = random.Random(0)
    for _ in range(300):
        c, r, s = rng.choice([-2, -1, 1, 3]), rng.randint(-9, 9), rng.randint(-9, 9)
        assert not is_equiv(f"x^2+({c})(x-({r}))(x-({s}))", "x^2")


# -----------------------------------------------------------------------------
# class 6: every call linear in its input. 1 MB inputs of each pathological pattern, each of
# which must return; the bound is generous for a shared machine (the times themselves, about
# 60 ms at most on a quiet one, are printed by `python -m benchmarks.grader`).



@pytest.mark.parametrize("name", PATHOLOGICAL_1MB)
def test_1mb_inputs_are_linear(name):
    make, gold, expected = PATHOLOGICAL_1MB[name]
    completion = make() if callable(make) else make
    gold = gold() if callable(gold) else gold
    t0 = time.perf_counter()
    reward = math_reward(completion, gold)
    assert time.perf_counter() - t0 < 2.0  # a quadratic pattern takes minutes on 1 MB
    assert reward == expected

"""
Tests for the math grader (tasks/grader.py, reward.math_reward): a table of graded completions and
the extraction rules one by one. The cases graded as a careful human grader would are in
test_grader_graded.py; inputs that must not raise and the false positives a policy could learn, by
class, in test_grader_adversarial.py.
"""

import pytest

from reward import math_reward
from tasks.grader import extract_answer, is_equiv

GSM8K_GOLD = (
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n"
    "#### 72"
)

# (id, completion, gold, expected reward)
CASES = [
    # --- GSM8K and the toy task: the answer follows "####" ---
    ("toy", "23+45=68, 68+12=80 #### 80", "80", 1),
    ("toy-wrong", "23+45=68, 68+12=81 #### 81", "80", 0),
    ("hash-own-line", "The total is 80 apples.\n#### 80\n", "80", 1),
    ("hash-no-space", "####80", "80", 1),
    ("hash-period", "#### 80.", "80", 1),
    ("hash-dollar", "#### $80", "80", 1),
    ("hash-dollar-cents", "#### $80.00", "80", 1),
    ("hash-thousands", "#### 1,200", "1200", 1),
    ("hash-negative", "#### -5", "-5", 1),
    ("hash-sign-wrong", "#### 5", "-5", 0),
    ("hash-units", "#### 80 apples", "80", 1),
    ("hash-empty", "The total is 80.\n####", "80", 0),
    ("hash-later-line-explains", "#### 80\nThen I checked: 8 * 10 = 80.", "80", 1),
    ("hash-later-line-other-number", "#### 80\nThen I checked that 81 is wrong.", "80", 0),
    ("hash-repeated", "#### 80\n#### 80", "80", 1),
    ("hash-decimal", "#### 2.50", "2.5", 1),
    ("gold-gsm8k-solution", "48 + 24 = 72 #### 72", GSM8K_GOLD, 1),
    ("gold-gsm8k-solution-wrong", "48 + 23 = 71 #### 71", GSM8K_GOLD, 0),
    ("gold-gsm8k-thousands", "#### 1200", "So 1,000 + 200 = 1,200.\n#### 1,200", 1),
    # --- how numbers are written ---
    ("comma-pred", r"\boxed{1,000}", "1000", 1),
    ("comma-gold", r"\boxed{1000}", "1,000", 1),
    ("comma-millions", "#### 1,234,567", "1234567", 1),
    ("comma-latex-group", r"\boxed{1{,}000}", "1000", 1),
    ("thin-space-thousands", r"\boxed{1\,000}", "1000", 1),
    ("comma-bad-grouping", r"\boxed{1,00}", "100", 0),
    ("dollar-latex", r"\boxed{\$42}", "42", 1),
    ("dollar-math-mode", "The answer is $42$.", "42", 1),
    ("percent", "#### 25%", "25", 1),
    ("percent-latex", r"\boxed{25\%}", "25", 1),
    ("percent-gold", "#### 25", r"25\%", 1),
    ("unit-word", "#### 42 dollars", "42", 1),
    ("unit-text", r"\boxed{42 \text{ cm}}", "42", 1),
    ("unit-squared", r"\boxed{9 \text{ m}^2}", "9", 1),
    ("unit-words-and-period", "#### 42 red apples.", "42", 1),
    ("degrees-latex", r"\boxed{30^\circ}", "30", 1),
    ("degrees-unicode", r"\boxed{30°}", "30", 1),
    ("unicode-minus", "#### −7", "-7", 1),
    ("fullwidth-digits", "#### ４２", "42", 1),
    ("fullwidth-minus", "#### －３", "-3", 1),
    ("leading-zeros", "#### 007", "7", 1),
    ("leading-dot", "#### .5", "0.50", 1),
    ("trailing-zeros", "#### 42.000", "42", 1),
    ("decimal-wrong", "#### 42.01", "42", 0),
    ("plus-sign", "#### +5", "5", 1),
    ("markdown-bold-anchor", "**Final Answer:** 42", "42", 1),
    ("space-thousands", "#### 1 000 000", "1000000", 1),
    # --- decimals, fractions, mixed numbers, scientific notation ---
    ("decimal-vs-fraction", "#### 0.75", "3/4", 1),
    ("fraction-vs-decimal", "#### 3/4", "0.75", 1),
    ("frac-vs-decimal", r"\boxed{\frac{1}{2}}", "0.5", 1),
    ("dfrac-shorthand", r"\boxed{\dfrac12}", "1/2", 1),
    ("tfrac", r"\boxed{\tfrac{1}{2}}", "0.5", 1),
    ("frac-short-denominator", r"\boxed{\frac{3}4}", "0.75", 1),
    ("frac-unreduced", r"\boxed{\frac{2}{4}}", "1/2", 1),
    ("frac-negative", r"\boxed{-\frac{1}{2}}", "-0.5", 1),
    ("frac-negative-numerator", r"\boxed{\frac{-1}{2}}", r"-\frac{1}{2}", 1),
    ("frac-wrong", r"\boxed{\frac{1}{3}}", "0.5", 0),
    ("third-rounded-is-wrong", "#### 0.333", "1/3", 0),
    ("third-exact", r"\boxed{\frac{1}{3}}", "2/6", 1),
    ("mixed-latex", r"\boxed{2\frac{1}{2}}", "2.5", 1),
    ("mixed-plain", "#### 2 1/2", "5/2", 1),
    ("mixed-negative", "#### -1 3/4", "-1.75", 1),
    ("mixed-vs-improper", r"\boxed{3\frac{1}{3}}", r"\frac{10}{3}", 1),
    ("mixed-wrong", "#### 2 1/2", "2", 0),
    ("sci-e", "#### 1.5e3", "1500", 1),
    ("sci-E-negative", "#### 2.5E-3", "0.0025", 1),
    ("sci-times", r"\boxed{1.5 \times 10^{3}}", "1500", 1),
    ("sci-cdot", r"\boxed{3 \cdot 10^{-2}}", "0.03", 1),
    ("sci-wrong", "#### 1.5e4", "1500", 0),
    ("divide-by-zero", r"\boxed{\frac{1}{0}}", "0", 0),
    # --- LaTeX: roots, pi, powers, spacing commands, text ---
    ("sqrt-simplified", r"\boxed{\sqrt{8}}", r"2\sqrt{2}", 1),
    ("sqrt-perfect-square", r"\boxed{\sqrt{16}}", "4", 1),
    ("sqrt-shorthand", r"\boxed{\sqrt2}", r"\sqrt{2}", 1),
    ("sqrt-rationalised", r"\boxed{\frac{\sqrt{2}}{2}}", r"\frac{1}{\sqrt{2}}", 1),
    ("sqrt-cube-root", r"\boxed{\sqrt[3]{27}}", "3", 1),
    ("sqrt-wrong", r"\boxed{\sqrt{3}}", r"\sqrt{2}", 0),
    ("sqrt-rounded-is-wrong", r"\boxed{1.414}", r"\sqrt{2}", 0),
    ("sqrt-many-digits", r"\boxed{1.41421356237}", r"\sqrt{2}", 0),  # a decimal is never \sqrt{2}
    ("sqrt-negative", r"\boxed{\sqrt{-4}}", "2", 0),
    ("pi-frac", r"\boxed{\frac{\pi}{2}}", r"\pi/2", 1),
    ("pi-product", r"\boxed{2\pi}", r"\pi \cdot 2", 1),
    ("pi-unicode", r"\boxed{2π}", r"2\pi", 1),
    ("pi-rounded-is-wrong", "#### 3.14", r"\pi", 0),
    ("pi-and-sqrt", r"\boxed{\frac{\sqrt{3}\pi}{6}}", r"\frac{\pi}{2\sqrt{3}}", 1),
    ("power-braces", r"\boxed{2^{10}}", "1024", 1),
    ("power-plain", r"\boxed{3^4}", "81", 1),
    ("power-negative", r"\boxed{2^{-2}}", "0.25", 1),
    ("power-fractional", r"\boxed{8^{2/3}}", "4", 1),
    ("power-right-associative", r"\boxed{2^3^2}", "512", 1),
    ("power-before-minus", r"\boxed{-2^2}", "-4", 1),
    ("power-big-exact", r"\boxed{2^{100}}", "1267650600228229401496703205376", 1),
    ("power-big-off-by-one", r"\boxed{2^{100}}", "1267650600228229401496703205377", 0),
    ("left-right", r"\boxed{\left(\frac{1}{2}\right)^2}", "0.25", 1),
    ("displaystyle", r"\boxed{\displaystyle \frac{3}{5}}", "0.6", 1),
    ("cdot-product", r"\boxed{4 \cdot 5}", "20", 1),
    ("implicit-product", r"\boxed{2(3+4)}", "14", 1),
    ("sum-evaluated", r"\boxed{68+12}", "80", 1),
    ("text-number", r"\boxed{\text{12}}", "12", 1),
    ("text-word", r"\boxed{\text{Monday}}", "Monday", 1),
    ("text-word-wrong", r"\boxed{\text{Tuesday}}", "Monday", 0),
    ("mathbf", r"\boxed{\mathbf{7}}", "7", 1),
    ("choice-letter", r"\boxed{\text{(B)}}", "(B)", 1),
    ("expression-same", r"\boxed{2x + 3}", "2x+3", 1),
    ("expression-commuted", r"\boxed{3+2x}", "2x+3", 1),  # the same polynomial
    ("box-in-box", r"\boxed{\boxed{12}}", "12", 1),
    # --- tuples, intervals, sets, equations ---
    ("tuple", r"\boxed{(1, 2)}", "(1,2)", 1),
    ("tuple-values", r"\boxed{(0.5, \sqrt{4})}", r"\left(\frac{1}{2}, 2\right)", 1),
    ("tuple-order", r"\boxed{(2, 1)}", "(1,2)", 0),
    ("tuple-length", r"\boxed{(1, 2, 3)}", "(1,2)", 0),
    ("tuple-unbalanced", r"\boxed{(1, 2}", "(1,2)", 0),
    ("interval", r"\boxed{[1, 2)}", "[1,2)", 1),
    ("interval-brackets-differ", r"\boxed{(1, 2]}", "[1,2]", 0),
    ("interval-infinity", r"\boxed{(-\infty, 3]}", r"(-\infty,3]", 1),
    ("interval-vs-tuple", r"\boxed{[1, 2]}", "(1,2)", 0),
    ("set-any-order", r"\boxed{\{3, 1, 2\}}", r"\{1,2,3\}", 1),
    ("set-values", r"\boxed{\{0.5, 2\}}", r"\{2, \frac{1}{2}\}", 1),
    ("set-missing-element", r"\boxed{\{1, 2\}}", r"\{1,2,3\}", 0),
    ("set-duplicate-element", r"\boxed{\{1, 1\}}", r"\{1,2\}", 0),
    ("list-any-order", r"\boxed{3, -1}", "-1, 3", 1),
    ("list-vs-set", r"\boxed{-1, 3}", r"\{3, -1\}", 1),
    ("set-of-tuples", r"\boxed{\{(1,2), (3,4)\}}", r"\{(3,4), (1,2)\}", 1),
    ("equation", r"\boxed{x = 5}", "5", 1),
    ("equation-in-gold", "#### 5", "x=5", 1),
    ("equation-subscript", r"\boxed{x_1 = 5}", "5", 1),
    ("equation-greek", r"\boxed{\theta = \frac{\pi}{4}}", r"\frac{\pi}{4}", 1),
    ("equation-list", r"\boxed{x = 1, y = 2}", "1, 2", 1),
    ("equation-wrong", r"\boxed{x = 6}", "5", 0),
    ("equation-chain", r"\boxed{x = 5 = 6}", "6", 0),
    ("equation-of-numbers", r"\boxed{5 = 5}", "5", 0),
    ("inequality", r"\boxed{x > 7}", "7", 0),
    # --- where the answer is: boxes, anchors, think blocks ---
    ("box-beats-anchor", r"The answer is 7. \boxed{8}", "8", 1),
    ("box-beats-anchor-wrong", r"The answer is 8. \boxed{7}", "8", 0),
    ("hash-beats-anchor", "The answer is 7.\n#### 8", "8", 1),
    ("box-nested-braces", r"\boxed{\frac{1}{\sqrt{4}}}", "0.5", 1),
    ("fbox", r"\fbox{12}", "12", 1),
    ("box-space", r"\boxed {12}", "12", 1),
    ("box-math-mode", r"so $\boxed{12}$.", "12", 1),
    ("anchor-the-answer-is", "So the answer is 12.", "12", 1),
    ("anchor-final-answer", "Final answer: 12", "12", 1),
    ("anchor-answer", "Answer: 12", "12", 1),
    ("anchor-uppercase", "THE ANSWER IS 12", "12", 1),
    ("anchor-last-wins", "The answer is 11. Wait, that is wrong. The answer is 12.", "12", 1),
    ("anchor-last-wins-wrong", "The answer is 12. Hmm, no: the answer is 11.", "12", 0),
    ("anchor-sentence-end", "The answer is 3.5. That is all.", "3.5", 1),
    ("anchor-line-end", "The answer is 12\nsince 3 * 4 = 12.", "12", 1),
    ("anchor-later-line-other-number", "The answer is 12\nand 13 is not.", "12", 0),
    ("no-marker", "I think it is 12", "12", 0),
    ("no-marker-bare-number", "12", "12", 0),
    ("think-ignored", r"<think>\boxed{7}</think> #### 8", "8", 1),
    ("think-box-only", r"<think>\boxed{8}</think> I am not sure.", "8", 0),
    ("think-unclosed", "<think> so it is 8\n#### 8", "8", 0),
    ("think-closing-tag-only", "maybe it is 7? </think> #### 8", "8", 1),
    ("think-anchor-inside", "<think>The answer is 8.</think>", "8", 0),
    ("think-two-blocks", "<think>a</think> <think>b #### 7</think> #### 8", "8", 1),
    ("think-reopened", "</think> #### 8 <think> #### 9", "8", 1),
    # --- anti-gaming: hedges, broken boxes, disagreeing final answers ---
    ("hedge-or-anchor", "The answer is 7 or 8.", "7", 0),
    ("hedge-or-text", r"\boxed{7 \text{ or } 8}", "7", 0),
    ("hedge-or-word-number", r"\boxed{7 or eight}", "7", 0),
    ("hedge-or-uppercase", "#### 7 OR 8", "7", 0),
    ("hedge-and", r"\boxed{7 and 8}", "7", 0),
    ("hedge-either", "#### either 7", "7", 0),
    ("hedge-between", "#### between 7 and 8", "7", 0),
    ("hedge-parenthetical", r"\boxed{7 \text{ (or 8)}}", "7", 0),
    ("hedge-equations", r"\boxed{x = 7 \text{ or } x = 8}", "7", 0),
    ("hedge-anchor-comma", "The final answer is 7, or maybe 8.", "7", 0),
    ("hedge-pm", r"\boxed{\pm 5}", "5", 0),
    ("hedge-pm-unicode", r"\boxed{±5}", "5", 0),
    ("hedge-mp", r"\boxed{\mp 5}", "-5", 0),
    ("hedge-pm-expression", r"\boxed{7 \pm 1}", "7", 0),
    ("pm-when-gold-has-it", r"\boxed{\pm 5}", r"\pm 5", 1),
    ("hedge-two-values", r"\boxed{5, 6}", "5", 0),
    ("hedge-set", r"\boxed{\{5, 6\}}", "5", 0),
    ("hedge-candidate-list", "#### 5, 6, 7, 8", "6", 0),
    ("hedge-interval", r"\boxed{[7, 8]}", "7", 0),
    ("hedge-range", r"\boxed{7 \le x \le 8}", "7", 0),
    ("hedge-approx", r"\boxed{\approx 7}", "7", 0),
    ("two-boxes-last-counts", r"\boxed{7} \boxed{8}", "8", 1),  # the last box is the answer
    ("two-boxes-disagree-first-right", r"\boxed{8} \boxed{7}", "8", 0),
    ("two-boxes-same", r"\boxed{8} so again \boxed{8}", "8", 1),
    ("two-boxes-equivalent", r"\boxed{0.5} that is \boxed{\frac{1}{2}}", "1/2", 1),
    ("box-and-hash-disagree", "\\boxed{8}\n#### 7", "8", 0),
    ("box-and-hash-agree", "\\boxed{8}\n#### 8", "8", 1),
    ("hash-lines-last-counts", "#### 7\n#### 8", "8", 1),
    ("ten-boxes", "".join(rf"\boxed{{{i}}}" for i in range(10)), "3", 0),
    ("malformed-box-no-fallback-to-hash", r"#### 8 and then \boxed{8", "8", 0),
    ("malformed-box-no-fallback-to-box", r"\boxed{8} then \boxed{\frac{1}{2}", "8", 0),
    ("malformed-box-no-fallback-to-anchor", r"The answer is 8. \boxed{8", "8", 0),
    ("empty-box", r"\boxed{}", "8", 0),
    ("no-last-number-by-default", "23+45=68, 68+12=80", "80", 0),
    # --- gold answers given as solutions or LaTeX ---
    ("gold-boxed-solution", "#### 1/2", r"We get $\boxed{\frac{1}{2}}$.", 1),
    ("gold-boxed-solution-wrong", "#### 1/3", r"We get $\boxed{\frac{1}{2}}$.", 0),
    ("gold-latex", r"\boxed{0.5}", r"\frac{1}{2}", 1),
    ("gold-dfrac", "#### 0.5", r"\dfrac12", 1),
    # --- garbage and huge values: wrong, never an exception ---
    ("empty-completion", "", "8", 0),
    ("empty-gold", "#### 8", "", 0),
    ("empty-both", "####", "", 0),
    ("frac-empty-args", r"\boxed{\frac{}{}}", "1", 0),
    ("huge-power", r"\boxed{9^{9^{9}}}", "1", 0),
    ("huge-power-vs-plus-one", r"\boxed{10^{10^{10}}}", r"10^{10^{10}}+1", 0),
    ("huge-sci-exponent", "#### 1e999999999", "1", 0),
    ("zero-negative-power", r"\boxed{0^{-1}}", "0", 0),
    ("parens-20-deep", r"\boxed{" + "(" * 20 + "1" + ")" * 20 + "}", "1", 1),
    ("parens-200-deep-refused", r"\boxed{" + "(" * 200 + "1" + ")" * 200 + "}", "1", 0),
    ("answer-2000-digits", "#### " + "1" * 2000, "1" * 2000, 1),  # judged, not refused
    ("answer-2000-digits-off-by-one", "#### " + "1" * 1999 + "2", "1" * 2000, 0),
]


@pytest.mark.parametrize(
    "completion, gold, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_table(completion, gold, expected):
    assert math_reward(completion, gold) == expected


def test_table_is_large_and_ids_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) >= 150
    assert len(set(ids)) == len(ids)


def test_numeric_gold():
    # a dataset may store the gold answer as a number: 4 is "4", 0.5 is "0.5"
    assert math_reward("#### 4", 4) == 1.0
    assert math_reward(r"\boxed{\frac{1}{2}}", 0.5) == 1.0
    assert math_reward("#### 5", 4) == 0.0
    assert math_reward("#### 1", True) == 0.0  # a bool is not a number here
    assert math_reward("#### nan", float("nan")) == 0.0


def test_signed_reward():
    # the official FlowRL code scores +1 / -1; 1 / 0 gives the same r_hat after the group z-score
    assert math_reward("#### 80", "80", signed=True) == 1.0
    assert math_reward("#### 81", "80", signed=True) == -1.0
    assert math_reward(r"\boxed{8", "8", signed=True) == -1.0


# -----------------------------------------------------------------------------
# extract_answer, one rule at a time


def test_extract_box_beats_hash_and_anchor():
    assert extract_answer(r"Answer: 8. \boxed{8}") == "8"
    assert extract_answer("#### 8\n\\boxed{8.0}") == "8.0"  # they agree; the box is returned


def test_extract_nested_and_escaped_braces():
    assert extract_answer(r"so \boxed{\frac{1}{\sqrt{2}}} ok") == r"\frac{1}{\sqrt{2}}"
    assert extract_answer(r"\boxed{\{1, 2\}}") == r"\{1, 2\}"  # \{ does not open a group
    assert extract_answer(r"\boxed{{{{7}}}}") == "{{{7}}}"


def test_extract_hash_line():
    # the rest of the line after ####, stripped; later lines are read (tasks/remarks.py) but are
    # not part of it
    assert extract_answer("work\n#### 72 \nThat is all.") == "72"
    assert extract_answer("23+45=68, 68+12=80 #### 80") == "80"


@pytest.mark.parametrize(
    "text, answer",
    [
        ("So the answer is 12.", "12"),
        ("The final answer is $3.5$. Done.", "$3.5$"),
        ("Final answer: 12 apples", "12 apples"),
        ("**Answer:** 42", "42"),
        ("Answer: 1\nAnswer: 2", "2"),
    ],
)
def test_extract_anchor(text, answer):
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    "text, answer",
    [
        ("<think>#### 1</think>#### 2", "2"),  # a closed block is skipped
        ("<think>#### 1", None),  # an unclosed block hides the rest: no answer
        ("#### 1 <think> #### 2", "1"),  # ... but not what came before it
        ("#### 1 <think>x</think>", None),  # only the text after the last </think> counts
        ("#### 1 </think> #### 2", "2"),  # a closing tag alone: the template opened the block
        ("</think> #### 2 <think> #### 3", "2"),  # a block reopened and left open
    ],
)
def test_extract_think(text, answer):
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    "text",
    [
        "The sum is 80",  # no marker
        r"#### 8 \boxed{8",  # a box that never closes
        "",
    ],
)
def test_extract_none(text):
    assert extract_answer(text) is None


def test_extract_last_number_fallback_is_opt_in():
    text = "23+45=68, 68+12=1,080"
    assert extract_answer(text) is None
    assert extract_answer(text, last_number_fallback=True) == "1,080"
    # the fallback never overrides a broken box or a disagreement
    assert extract_answer(r"80 \boxed{80", last_number_fallback=True) is None
    assert extract_answer(r"\boxed{7}\boxed{8}", last_number_fallback=True) == "8"


def test_is_equiv_worked_example():
    # pred "\$1{,}000.50 \text{ dollars}." against gold "2001/2", step by step:
    #   \text{ dollars} -> " dollars", "\$" -> "", "{,}" -> ","   "1,000.50 dollars."
    #   drop the trailing "." and the unit word "dollars"          "1,000.50"
    #   a lone number drops its thousands separators               "1000.50"
    #   exact value: 1000.50 = 100050/100 = 2001/2, the gold's value: equal
    assert is_equiv(r"\$1{,}000.50 \text{ dollars}.", "2001/2")
    assert not is_equiv(r"\$1{,}000.51 \text{ dollars}.", "2001/2")


def test_is_equiv_none_is_never_correct():
    assert not is_equiv(None, "1")
    assert not is_equiv("", "")

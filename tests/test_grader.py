"""
Tests for the math grader (tasks/grader.py, reward.math_reward): a table of graded completions,
the extraction rules one by one, a property test that no input raises, pathological inputs
that must still return a reward, and tables of the false positives a policy could learn, one
class at a time, with the right answers of each class beside them.
"""

import random
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.grader import PATHOLOGICAL_1MB
from reward import math_reward
from tasks import mathexpr
from tasks.grader import extract_answer, is_equiv
from tasks.mathcompare import same
from tasks.remarks import changes, hedged

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


# -----------------------------------------------------------------------------
# graded like a careful human grader: (id, completion, gold, expected, the grader's reason)

GRADED = [
    # --- 1. self-correction: the LAST final answer counts; hedging inside one answer is wrong ---
    ("sc-box-then-box", r"\boxed{3}. Wait, actually it's \boxed{5}", "5", 1, "corrected to 5"),
    ("sc-box-then-box-gold-first", r"\boxed{3}. Wait, actually it's \boxed{5}", "3", 0,
     "the correction 5 is the answer, not the 3 it replaced"),
    ("sc-hash-then-hash", "#### 10\nI made an error in step 2.\n#### 12", "12", 1, "corrected to 12"),
    ("sc-hash-then-hash-wrong", "#### 10\nI made an error in step 2.\n#### 12", "10", 0,
     "10 was withdrawn"),
    ("sc-box-then-hash", "\\boxed{7}\nLet me recheck: 3*3 = 9.\n#### 9", "9", 1, "box corrected by ####"),
    ("sc-hash-then-box", "#### 7\nWait, let me recheck.\n\\boxed{9}", "9", 1, "#### corrected by a box"),
    ("sc-hash-then-box-wrong", "#### 9\nWait, let me recheck.\n\\boxed{7}", "9", 0,
     "a right answer changed to a wrong one is wrong"),
    ("sc-three-boxes", r"\boxed{1} no \boxed{2} no \boxed{3}", "3", 1, "the last of three"),
    ("sc-three-boxes-middle", r"\boxed{1} no \boxed{2} no \boxed{3}", "2", 0, "2 was withdrawn"),
    ("sc-equivalent-restated", r"\boxed{0.5}, i.e. \boxed{\frac{1}{2}}", "1/2", 1, "same value twice"),
    ("sc-recheck-same", "#### 42\nWait, let me recheck: 6*7 = 42. Yes.\n#### 42", "42", 1,
     "reflection that confirms the answer"),
    ("sc-anchor-after-box", r"\boxed{5}. Hmm, the answer is 6.", "5", 0,
     "a box is the final answer, and the words after it give another one"),
    ("sc-anchor-after-box-agrees", r"\boxed{5}. So the answer is 5.", "5", 1,
     "the words after the box restate it"),
    ("sc-hedge-in-last", r"\boxed{3} wait \boxed{5 \text{ or } 6}", "5", 0, "the last answer hedges"),
    ("sc-hedge-pm-in-last", r"\boxed{2} so \boxed{\pm 2}", "2", 0, "\\pm is two answers"),
    ("sc-between-in-last", "#### 1\n#### between 5 and 6", "5", 0, "a range is not an answer"),
    ("sc-last-box-unclosed", r"\boxed{5} wait \boxed{6", "5", 0, "a broken box: no answer"),
    ("sc-think-then-correct", "<think>\\boxed{3}</think> Actually \\boxed{5}", "5", 1,
     "reasoning is skipped"),
    ("sc-many-corrections", "".join(rf"\boxed{{{i}}} no, " for i in range(20)) + r"\boxed{99}",
     "99", 1, "twenty withdrawn answers, then 99"),
    ("sc-aside-or-between", r"\boxed{5} or possibly \boxed{6}", "6", 0,
     "two boxes offered as alternatives: a hedge, not a correction"),
    ("sc-aside-or-after", r"so $\boxed{3}$ (or $-3$)", "3", 0, "an alternative right after the box"),
    ("sc-aside-maybe-after", "#### 7\n#### 8 maybe", "8", 0, "the last answer is hedged"),
    ("sc-aside-far-before", r"\boxed{5}. " + "Let me redo this more carefully. " * 4
     + r"Either way, \boxed{6}", "6", 1, "reasoning between two answers is not an aside"),
    # --- 2. algebra without a CAS ---
    ("alg-square", r"\boxed{(x+1)^2}", "x^2+2x+1", 1, "expanded square"),
    ("alg-square-wrong", r"\boxed{(x+1)^2}", "x^2+2x+2", 0, "constant term differs"),
    ("alg-square-wrong-sign", r"\boxed{(x-1)^2}", "x^2+2x+1", 0, "middle term sign"),
    ("alg-frac-split", r"\boxed{\frac{x+2}{7}}", r"\frac{x}{7}+\frac{2}{7}", 1, "fraction split"),
    ("alg-frac-split-wrong", r"\boxed{\frac{x+2}{7}}", r"\frac{x}{7}+2", 0, "2 not divided by 7"),
    ("alg-commute", r"\boxed{2x+1}", "1+2x", 1, "terms commuted"),
    ("alg-sign-wrong", r"\boxed{2x+1}", "2x-1", 0, "sign of the constant"),
    ("alg-complex", r"\boxed{4i+3}", "3+4i", 1, "complex number, parts commuted"),
    ("alg-complex-conjugate", r"\boxed{3-4i}", "3+4i", 0, "the conjugate"),
    ("alg-product-expanded", r"\boxed{(x-2)(x+3)}", "x^2+x-6", 1, "factored and expanded"),
    ("alg-product-wrong", r"\boxed{(x-2)(x+3)}", "x^2-x-6", 0, "roots swapped"),
    ("alg-two-letters", r"\boxed{(a+b)^2}", "a^2+2ab+b^2", 1, "two variables"),
    ("alg-two-letters-wrong", r"\boxed{(a+b)^2}", "a^2+b^2", 0, "cross term missing"),
    ("alg-rational", r"\boxed{\frac{x^2-1}{x-1}}", "x+1", 1, "cancelled factor (equal where both are defined)"),
    ("alg-cubic", r"\boxed{x^3-8}", "(x-2)(x^2+2x+4)", 1, "difference of cubes"),
    ("alg-cubic-wrong", r"\boxed{x^3-8}", "(x-2)(x^2-2x+4)", 0, "wrong middle sign"),
    ("alg-sqrt-coefficient", r"\boxed{2\sqrt{2}x}", r"\sqrt{8}x", 1, "irrational coefficient"),
    ("alg-abs-is-not-x", r"\boxed{\sqrt{x^2}}", "x", 0, "|x| differs from x for x < 0"),
    ("alg-abs", r"\boxed{\sqrt{x^2}}", "|x|", 1, "|x|"),
    ("alg-sqrt-then-square", r"\boxed{\sqrt{x}^2}", "|x|", 0,
     "(\\sqrt{x})^2 is x where it is defined, and undefined for x < 0"),
    ("alg-trig-identity", r"\boxed{\sin^2 x + \cos^2 x}", "1", 1, "Pythagorean identity"),
    ("alg-trig-wrong", r"\boxed{\sin^2 x - \cos^2 x}", "1", 0, "not an identity"),
    ("alg-greek", r"\boxed{2\theta+\pi}", r"\pi+2\theta", 1, "Greek letter variable"),
    ("alg-subscripts", r"\boxed{a_1+a_2}", "a_2+a_1", 1, "subscripted variables"),
    ("alg-subscripts-differ", r"\boxed{a_1+a_2}", "a_1+a_3", 0, "different variables"),
    ("alg-different-variable", r"\boxed{2y+1}", "2x+1", 0, "y is not x"),
    ("alg-power-of-power", r"\boxed{(x^2)^3}", "x^6", 1, "power rule"),
    ("alg-power-wrong", r"\boxed{(x^2)^3}", "x^5", 0, "exponents added instead of multiplied"),
    ("alg-exp-log", r"\boxed{e^{2\ln x}}", "x^2", 0,
     "undefined for x <= 0 while x^2 is defined: the grader does not assume x > 0"),
    ("eq-line", r"\boxed{y = 2x+1}", "2x - y + 1 = 0", 1, "the same line"),
    ("eq-line-scaled", r"\boxed{4x - 2y + 2 = 0}", "y = 2x+1", 1, "scaled by -2"),
    ("eq-line-wrong", r"\boxed{y = 2x-1}", "2x - y + 1 = 0", 0, "a parallel line"),
    ("eq-square-vs-root", r"\boxed{x^2 = 1}", "x = 1", 0, "x^2 = 1 has two roots"),
    ("eq-circle", r"\boxed{x^2+y^2=4}", "x^2 + y^2 - 4 = 0", 1, "the same circle"),
    ("eq-circle-wrong", r"\boxed{x^2+y^2=2}", "x^2+y^2=4", 0, "another radius"),
    ("eq-name-value", r"\boxed{x = \frac{7}{2}}", "3.5", 1, "x = 7/2"),
    ("eq-chain-last-side", r"\boxed{x = 2+3 = 5}", "5", 1, "a worked chain ending in 5"),
    ("eq-chain-false-step", r"\boxed{x = 2+3 = 6}", "6", 0, "2+3 is not 6"),
    ("eq-chain-area", r"\boxed{A = \pi r^2 = 9\pi}", r"9\pi", 1, "chain with letters, last side 9π"),
    ("eq-of-constants", r"\boxed{3 = 3}", "3", 0, "an identity, not an answer"),
    ("eq-y-not-value", r"\boxed{y = 5}", "x = 5", 1, "a value named differently"),
    ("eq-gold-function", r"\boxed{2x+1}", "f(x) = 2x+1", 1, "the function's expression"),
    ("eq-value-first", r"\boxed{17 = a+b}", "17", 1, "the value, then its name"),
    ("eq-value-first-wrong", r"\boxed{16 = a+b}", "17", 0, "another value"),
    ("alg-sin-argument", r"\boxed{\sin x \cos x}", r"\frac{\sin 2x}{2}", 1,
     "\\sin 2x is sin(2x): double-angle identity"),
    ("alg-sin-argument-wrong", r"\boxed{\sin x \cos x}", r"\sin 2x", 0, "missing the factor 1/2"),
    ("list-or", r"\boxed{x = 2 \text{ or } x = -3}", "-3, 2", 1,
     "'or' joins the two roots the gold lists, it does not hedge"),
    ("list-or-wrong", r"\boxed{x = 2 \text{ or } x = 3}", "-3, 2", 0, "one root wrong"),
    ("list-or-single-gold", r"\boxed{x = 2 \text{ or } x = -3}", "2", 0, "a hedge against one value"),
    ("list-pm", r"\boxed{1 \pm \sqrt{2}}", r"1+\sqrt{2}, 1-\sqrt{2}", 1, "\\pm for both roots"),
    ("list-pm-frac", r"\boxed{\frac{1 \pm \sqrt{5}}{2}}", r"\frac{1+\sqrt5}{2}, \frac{1-\sqrt5}{2}", 1,
     "\\pm inside a fraction"),
    ("list-pm-wrong", r"\boxed{1 \pm \sqrt{3}}", r"1+\sqrt{2}, 1-\sqrt{2}", 0, "another root"),
    ("list-pm-maybe", r"\boxed{1 \pm \sqrt{2} \text{ maybe}}", r"1+\sqrt{2}, 1-\sqrt{2}", 0, "a hedge"),
    # --- 3. intervals, inequalities, unions ---
    ("int-plus-infinity", r"\boxed{[0, +\infty)}", r"[0, \infty)", 1, "+∞ is ∞"),
    ("int-open-vs-closed", r"\boxed{[0, \infty)}", r"(0, \infty)", 0, "0 included or not"),
    ("int-union-order", r"\boxed{(2, \infty) \cup (-\infty, 1)}", r"(-\infty, 1) \cup (2, \infty)",
     1, "union parts in any order"),
    ("int-union-missing", r"\boxed{(-\infty, 1)}", r"(-\infty, 1) \cup (2, \infty)", 0, "half the set"),
    ("int-union-wrong-bracket", r"\boxed{(-\infty, 1] \cup (2, \infty)}",
     r"(-\infty, 1) \cup (2, \infty)", 0, "1 included"),
    ("int-ge", r"\boxed{x \ge 3}", r"[3, \infty)", 1, "x ≥ 3"),
    ("int-geq", r"\boxed{x \geq 3}", r"[3, \infty)", 1, "\\geq"),
    ("int-ge-vs-open", r"\boxed{x \ge 3}", r"(3, \infty)", 0, "3 included in one only"),
    ("int-gt-vs-closed", r"\boxed{x > 3}", r"[3, \infty)", 0, "3 excluded in one only"),
    ("int-double", r"\boxed{-1 < x < 2}", "(-1, 2)", 1, "a double inequality"),
    ("int-double-closed", r"\boxed{-1 \le x < 2}", "[-1, 2)", 1, "half-open"),
    ("int-double-wrong", r"\boxed{-1 < x \le 2}", "(-1, 2)", 0, "2 included"),
    ("int-reversed", r"\boxed{3 < x}", "x > 3", 1, "3 < x is x > 3"),
    ("int-reversed-wrong", r"\boxed{3 > x}", "x > 3", 0, "the other side"),
    ("int-descending", r"\boxed{5 > x > 2}", "(2, 5)", 1, "written downwards"),
    ("int-le", r"\boxed{x \le -2}", r"(-\infty, -2]", 1, "x ≤ -2"),
    ("int-gold-inequality", r"\boxed{(-\infty, 4)}", "x < 4", 1, "gold as an inequality"),
    ("int-in", r"\boxed{x \in [3, \infty)}", r"[3, \infty)", 1, "x ∈ [3, ∞)"),
    ("int-endpoint-value", r"\boxed{(\frac{1}{2}, 3]}", "(0.5, 3]", 1, "endpoints compared as values"),
    ("int-endpoint-wrong", r"\boxed{(\frac{1}{3}, 3]}", "(0.5, 3]", 0, "another endpoint"),
    ("int-not-a-value", r"\boxed{x \ge 3}", "3", 0, "an interval is not the number 3"),
    ("int-unicode", r"\boxed{x ≥ 3}", r"[3, \infty)", 1, "unicode ≥"),
    ("int-unicode-infinity", r"\boxed{[3, ∞)}", r"[3, \infty)", 1, "unicode ∞"),
    ("int-hedge-or", r"\boxed{x < 1 \text{ or } x > 2}", r"(-\infty, 1) \cup (2, \infty)", 0,
     "'or' between two inequalities is read as a hedge (conservative)"),
    # --- 4. notation ---
    ("not-cfrac", r"\boxed{\cfrac{3}{4}}", "0.75", 1, "\\cfrac"),
    ("not-tfrac", r"\boxed{\tfrac{3}{4}}", "3/4", 1, "\\tfrac"),
    ("not-over", r"\boxed{{3 \over 4}}", "0.75", 1, "{a \\over b}"),
    ("not-over-wrong", r"\boxed{{4 \over 3}}", "0.75", 0, "upside down"),
    ("not-display-brackets", r"\boxed{\[ \frac{1}{2} \]}", "0.5", 1, "\\[ \\]"),
    ("not-inline-parens", r"\boxed{\( \frac{1}{2} \)}", "0.5", 1, "\\( \\)"),
    ("not-double-dollar", r"\boxed{$$\frac{1}{2}$$}", "0.5", 1, "$$ $$"),
    ("not-bare-brackets", r"\boxed{[ 12 ]}", "12", 1, "bare brackets around one value"),
    ("not-bare-interval-kept", r"\boxed{[1, 2]}", "1", 0, "an interval, not a value"),
    ("not-unicode-half", "#### ½", "0.5", 1, "½"),
    ("not-unicode-mixed", "#### 3½", "3.5", 1, "3½ is a mixed number"),
    ("not-unicode-mixed-negative", "#### -3½", "-3.5", 1, "-3½ is -3.5, not -2.5"),
    ("not-unicode-mixed-wrong", "#### -3½", "-2.5", 0, "-3½ is not -2.5"),
    ("not-unicode-three-quarters", r"\boxed{¾}", "0.75", 1, "¾"),
    ("not-unicode-sqrt", r"\boxed{√2}", r"\sqrt{2}", 1, "√"),
    ("not-unicode-pi", r"\boxed{π/2}", r"\frac{\pi}{2}", 1, "π"),
    ("not-unicode-minus-times", r"\boxed{−2 × 3}", "-6", 1, "− and ×"),
    ("not-braces-3", r"\boxed{{{{7}}}}", "7", 1, "redundant braces"),
    ("not-braces-wrong", r"\boxed{{{{8}}}}", "7", 0, "8 in braces is still 8"),
    ("not-braces-in-frac", r"\boxed{\frac{{{1}}}{{2}}}", "0.5", 1, "braces inside arguments"),
    ("not-degree", r"\boxed{45\degree}", "45", 1, "\\degree"),
    ("not-circ", r"\boxed{45^\circ}", "45", 1, "^\\circ"),
    ("not-circ-wrong", r"\boxed{45^\circ}", "135", 0, "another angle"),
    ("not-power-braces", r"\boxed{x^{2}}", "x^2", 1, "x^{2}"),
    ("not-binom", r"\boxed{\binom{5}{2}}", "10", 1, "5 choose 2"),
    ("not-binom-wrong", r"\boxed{\binom{5}{3}}", "20", 0, "5 choose 3 is 10"),
    ("not-factorial", r"\boxed{10!}", "3628800", 1, "10!"),
    ("not-factorial-ratio", r"\boxed{\frac{6!}{4!2!}}", "15", 1, "a ratio of factorials"),
    ("not-factorial-wrong", r"\boxed{9!}", "3628800", 0, "9! is 362880"),
    ("not-repeating", r"\boxed{0.\overline{3}}", r"\frac{1}{3}", 1, "0.333... = 1/3"),
    ("not-repeating-tail", r"\boxed{0.1\overline{6}}", r"\frac{1}{6}", 1, "0.1666... = 1/6"),
    ("not-repeating-wrong", r"\boxed{0.\overline{3}}", "0.3", 0, "0.333... is not 0.3"),
    ("not-emptyset", r"\boxed{\varnothing}", r"\emptyset", 1, "two spellings of ∅"),
    ("not-emptyset-unicode", r"\boxed{∅}", r"\emptyset", 1, "∅"),
    ("not-base", r"\boxed{1010_{2}}", "1010_2", 1, "base subscript with braces"),
    ("not-base-wrong", r"\boxed{1011_{2}}", "1010_2", 0, "another numeral"),
    ("not-base-vs-decimal", r"\boxed{1010}", "1010_2", 0, "the base is part of the answer"),
    ("not-plain-sqrt", r"\boxed{sqrt(2)}", r"\sqrt{2}", 1, "plain-text sqrt"),
    ("not-plain-pi", r"\boxed{pi/2}", r"\frac{\pi}{2}", 1, "plain-text pi"),
    ("not-plain-pi-wrong", r"\boxed{pi/3}", r"\frac{\pi}{2}", 0, "another angle"),
    ("not-plain-sqrt-wrong", r"\boxed{sqrt(3)}", r"\sqrt{2}", 0, "another root"),
    # --- 5. text and multiple choice ---
    ("txt-case", r"\boxed{\text{monday}}", r"\text{Monday}", 1, "case does not matter in words"),
    ("txt-case-upper", r"\boxed{\text{MONDAY}}", "Monday", 1, "case does not matter in words"),
    ("txt-other-word", r"\boxed{\text{Sunday}}", "Monday", 0, "another day"),
    ("txt-anagram", r"\boxed{\text{dog}}", r"\text{god}", 0, "words are not products of letters"),
    ("mc-paren-vs-bare", r"\boxed{B}", "(B)", 1, "the same choice"),
    ("mc-text", r"\boxed{\text{(B)}}", "B", 1, "the same choice"),
    ("mc-lower-paren", r"\boxed{(b)}", "(B)", 1, "(b) names choice B"),
    ("mc-other", r"\boxed{(C)}", "(B)", 0, "another choice"),
    ("mc-two-choices", r"\boxed{B, C}", "(B)", 0, "two choices"),
    ("mc-hedge", r"\boxed{B \text{ or } C}", "(B)", 0, "hedged choice"),
    # --- 6. GSM8K lines ---
    ("gsm-trailing-words", "#### 42 apples", "42", 1, "unit word"),
    ("gsm-trailing-sentence", "#### 42 apples in total", "42", 1, "trailing words"),
    ("gsm-parenthetical", "#### 42 (since 6 x 7 = 42)", "42", 1, "a closing explanation"),
    ("gsm-parenthetical-wrong", "#### 41 (since 6 x 7 = 42)", "42", 0, "the answer given is 41"),
    ("gsm-correction-in-line", "#### 42 wait no 43", "42", 0, "the line ends on another number"),
    ("gsm-maybe", "#### 42 apples, maybe 43", "42", 0, "a hedge"),
    ("gsm-dollar", "#### $1,250", "1250", 1, "dollar and thousands"),
    ("gsm-euro", "#### €30", "30", 1, "euro sign"),
    ("gsm-pound", "#### £7.50", "7.5", 1, "pound sign"),
    ("gsm-usd-before", "#### USD 300", "300", 1, "currency code before"),
    ("gsm-usd-after", "#### 300 USD", "300", 1, "currency code after"),
    ("gsm-usd-wrong", "#### USD 301", "300", 0, "another amount"),
    ("gsm-glued-cm", "#### 5cm", "5", 1, "unit glued to the number"),
    ("gsm-glued-kg", "#### 12.5kg", "12.5", 1, "unit glued to the number"),
    ("gsm-glued-wrong", "#### 6cm", "5", 0, "another length"),
    ("gsm-glued-variable", "#### 5x", "5", 0, "5x is an expression, not 5 with a unit"),
    ("gsm-dollar-words", "#### $18 per day", "18", 1, "currency and trailing words"),
    ("gsm-minutes", "#### 90 minutes", "90", 1, "unit word"),
    ("gsm-percent-words", "#### 25% of the class", "25", 1, "percent and words"),
    ("gsm-anchor-words", "So the answer is 42 apples (6 x 7).", "42", 1, "anchor with explanation"),
    ("gsm-digits-apart", "#### 1 2", "12", 0, "two numbers, not 12 (1 000 is a thousand)"),
    ("gsm-two-letter-word", r"\boxed{5 xy}", "5", 0, "5xy, not 5 with a unit"),
    ("gsm-letter-squared", r"\boxed{5 x^2}", "5", 0, "5x^2, not 5 with a unit"),
    ("gsm-tilde", "#### ~42", "42", 0, "about 42"),
    ("gsm-approx", r"\boxed{\approx 42}", "42", 0, "about 42"),
    ("gsm-hash-anchor", "#### Final Answer: 42", "42", 1, "an anchor phrase on the #### line"),
    ("gsm-hash-anchor-bold", "#### **The answer is** 42", "42", 1, "bold anchor on the #### line"),
    ("gsm-hash-anchor-wrong", "#### Final Answer: 41", "42", 0, "another number"),
    ("gsm-thousand", "#### 5 thousand", "5", 0, "5 thousand is 5000, not 5"),
    ("gsm-thousand-in-words", "#### 5 thousand dollars", "5", 0, "5000 dollars"),
    ("gsm-more", "#### 10 more", "10", 0, "a difference stated relative to something"),
    ("gsm-squared", r"\boxed{5 \text{ squared}}", "5", 0, "25, not 5"),
    ("gsm-numeric-gold-int", "#### 4", 4, 1, "an int gold answer"),
    ("gsm-numeric-gold-float", "#### 2.50", 2.5, 1, "a float gold answer"),
    ("gsm-numeric-gold-wrong", "#### 5", 4, 0, "another number"),
    # --- 7. answer tags ---
    ("tag-plain", "<answer>7</answer>", "7", 1, "an answer tag"),
    ("tag-wrong", "<answer>8</answer>", "7", 0, "another number"),
    ("tag-boxed-inside", r"<answer>\boxed{7}</answer>", "7", 1, "a box in the tag"),
    ("tag-after-box", r"\boxed{6} then <answer>7</answer>", "7", 1, "the tag is last"),
    ("tag-before-box", r"<answer>7</answer> then \boxed{6}", "7", 0, "the box is last"),
    ("tag-unclosed", "<answer>7", "7", 0, "an unclosed tag gives no answer"),
    ("tag-hash-inside", "<answer>\n#### 7</answer>", "7", 1, "a #### line in the tag"),
    ("tag-spaces", "<answer>  x = 3  </answer>", "3", 1, "spaces and a name"),
    ("tag-hedge", "<answer>3 or 4</answer>", "3", 0, "a hedge"),
    # --- 8. long exact answers ---
    ("long-20k-digits", r"\boxed{" + "7" * 20_000 + "}", "7" * 20_000, 1, "judged exactly"),
    ("long-20k-digits-last-differs", r"\boxed{" + "7" * 19_999 + "8}", "7" * 20_000, 0,
     "the last digit differs"),
    ("long-sum", r"\boxed{" + "+".join(["2"] * 20_000) + "}", "40000", 1, "a long sum, added up"),
    ("long-sum-wrong", r"\boxed{" + "+".join(["2"] * 20_000) + "}", "40001", 0, "off by one"),
    ("long-power-exact", r"\boxed{2^{10000}}", str(2**10000), 1, "3011 digits, exact"),
    ("long-power-off-by-one", r"\boxed{2^{10000}}", str(2**10000 + 1), 0, "off by one"),
]


@pytest.mark.parametrize(
    "completion, gold, expected, reason", [c[1:] for c in GRADED], ids=[c[0] for c in GRADED]
)
def test_graded(completion, gold, expected, reason):
    assert math_reward(completion, gold) == expected, reason


def test_graded_is_large_and_has_wrong_answers():
    ids = [c[0] for c in GRADED]
    assert len(ids) >= 150 and len(set(ids)) == len(ids) and not set(ids) & {c[0] for c in CASES}
    assert sum(c[3] == 0 for c in GRADED) >= 60  # enough wrong answers to catch a false positive


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

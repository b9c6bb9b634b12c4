"""
How often reward.math_reward agrees with a careful human grader, beside math_verify, and how
long a call takes.

    python -m benchmarks.grader

TABLE and FRESH hold MATH- and GSM8K-style completions, each with its gold answer and the
verdict a careful human grader gives (1 right, 0 wrong), with the reason. None of them is a
test case (tests/test_grader.py holds those). The grader's rules (tasks/grader.py) were tuned
on TABLE; FRESH is the held-out measure, on which they were not. ADVERSARIAL holds completions
written to draw a false positive, by class (words after the answer, later lines, a hedge
before it, closeness, identities, long inputs), with right answers of each class beside them.
A false positive is a wrong answer given reward 1, the worst error a reward can make.
PATHOLOGICAL_1MB holds 1 MB completions of each slow pattern; their times are printed last.
math_verify (pip install math-verify, a dev-only requirement) is graded on the same table when
it is installed; without it the script says so and grades ours alone.
"""

import logging
import statistics
import time

from tasks import mathexpr
from reward import math_reward

# (completion, gold, human verdict, reason)
TABLE = [
    # --- GSM8K style: reasoning, then "#### n" ---
    ("Each box holds 12 eggs, so 5 boxes hold 5 * 12 = 60 eggs. She sells 60 - 8 = 52.\n#### 52",
     "Janet has 5*12=<<5*12=60>>60 eggs.\nShe sells 60-8=<<60-8=52>>52.\n#### 52", 1, "plain"),
    ("He pays 3 * $15 = $45 for the shirts.\n#### $45", "45", 1, "dollar sign"),
    ("Total distance: 2 * 37.5 = 75 miles.\n#### 75 miles", "75", 1, "unit word"),
    ("She saves 20% of 1500, that is 0.2 * 1500 = 300 dollars.\n#### 300 dollars", "300", 1,
     "unit word"),
    ("So the team scored 18 + 24 = 42 points.\n#### 42 points (18 in the first half)", "42", 1,
     "explanation after the number"),
    ("The tank holds 1,500 liters.\n#### 1,500", "1500", 1, "thousands separator"),
    ("Each ticket costs €12, and 4 tickets cost €48.\n#### €48", "48", 1, "euro sign"),
    ("The cost in total is USD 2,400.\n#### USD 2,400", "2400", 1, "currency code"),
    ("The rope is 3 * 45 = 135cm long.\n#### 135cm", "135", 1, "unit glued to the number"),
    ("The price after the discount is 80 * 0.75 = $60.00\n#### 60.00", "60", 1, "cents"),
    ("She needs 7/2 = 3.5 cups.\n#### 3.5", "7/2", 1, "decimal against a fraction"),
    ("Let me compute: 14 + 9 = 23. Wait, I misread, it is 14 + 19 = 33.\n#### 33", "33", 1,
     "corrected within the reasoning"),
    ("#### 23\nHmm, I misread the question: it asks for both days, 23 + 10 = 33.\n#### 33", "33", 1,
     "corrected after a first final answer"),
    ("#### 33\nLet me double-check: 23 + 10 = 33. Yes.\n#### 33", "33", 1, "reflection that confirms"),
    ("#### 33\nActually the second day was 12, so 23 + 12 = 35.\n#### 35", "33", 0,
     "changed a right answer to a wrong one"),
    ("So she has 12 - 5 = 7 left.\n#### 7", "8", 0, "arithmetic slip"),
    ("They need 4 buses.\n#### 4 buses", "5", 0, "wrong count"),
    ("The answer is between 40 and 45.\n#### 40 or 45", "45", 0, "hedge"),
    ("I think it is 25, maybe 26.\n#### 25, 26", "25", 0, "two answers"),
    ("Total: 6 * 7 = 42\n#### 42 (or 43 if we count the teacher)", "42", 0, "hedge in the line"),
    ("Altogether 120 + 35 = 155 minutes.\n#### 155 minutes", "155", 1, "unit word"),
    ("The average is 245 / 5 = 49.\n#### 49.0", "49", 1, "trailing zero"),
    ("The farmer has 3 * 24 = 72 legs to count.\n#### 72", "74", 0, "wrong"),
    ("The car travels 60 mph for 2.5 hours = 150 miles.\n#### 150", "150", 1, "plain"),
    ("So the answer is 16 dollars.", "16", 1, "anchor phrase, no ####"),
    ("Therefore the final answer is: 1,024", "1024", 1, "anchor phrase"),
    ("5 * 9 = 45. He needs 45 more stickers.", "45", 1,
     "no final answer marked, but a human reads 45 as the answer"),
    ("<answer>18</answer>", "18", 1, "answer tag"),
    ("Working: 3 * 6 = 18.\n<answer>The total is 18 apples</answer>", "18", 1,
     "a sentence in the tag that states 18"),
    ("<answer>\n#### 27\n</answer>", "27", 1, "#### inside a tag"),
    ("She earns $9.50 per hour, 9.50 * 8 = 76.\n#### $76", 76, 1, "numeric gold"),
    ("#### 0.25", 0.25, 1, "numeric float gold"),
    ("She spends 2 1/2 hours.\n#### 2 1/2", "2.5", 1, "mixed number"),
    ("#### 1200\nWait, the price was per dozen, so 1200 / 12 = 100.\n#### 100", "100", 1,
     "corrected"),
    ("#### -15", "-15", 1, "negative"),
    ("The temperature fell to −15 degrees.\n#### −15", "-15", 1, "unicode minus"),
    ("#### 15", "-15", 0, "sign"),
    # --- MATH style: reasoning, then \boxed{...} ---
    (r"Expanding, $(2x-3)^2 = 4x^2 - 12x + 9$. So the answer is $\boxed{4x^2-12x+9}$.",
     "4x^2-12x+9", 1, "identical"),
    (r"The product simplifies to $\boxed{(2x-3)^2}$.", "4x^2-12x+9", 1, "factored form, equal"),
    (r"We get $\boxed{4x^2-12x-9}$.", "4x^2-12x+9", 0, "sign error"),
    (r"So $f(x) = \boxed{3x + 7}$.", "7+3x", 1, "commuted"),
    (r"Thus $\boxed{\frac{x+3}{2}}$.", r"\frac{x}{2}+\frac{3}{2}", 1, "split fraction"),
    (r"Thus $\boxed{\frac{x+3}{2}}$.", r"\frac{x+3}{3}", 0, "wrong denominator"),
    (r"The quotient is $\boxed{x^2+x+1}$.", "x^2+x+1", 1, "identical"),
    (r"Hence $z = \boxed{5-2i}$.", "-2i+5", 1, "complex, commuted"),
    (r"Hence $z = \boxed{5+2i}$.", "5-2i", 0, "conjugate"),
    (r"The line is $\boxed{y = -\frac{1}{2}x + 3}$.", "x + 2y - 6 = 0", 1, "same line"),
    (r"The line is $\boxed{y = -\frac{1}{2}x + 3}$.", "x + 2y + 6 = 0", 0, "another line"),
    (r"The circle is $\boxed{(x-1)^2 + (y+2)^2 = 9}$.", "x^2 - 2x + y^2 + 4y - 4 = 0", 1,
     "expanded circle"),
    (r"So $x = \boxed{\frac{5}{3}}$.", r"\frac{5}{3}", 1, "identical"),
    (r"So $\boxed{x = \frac{5}{3}}$.", r"\frac53", 1, "named, shorthand gold"),
    (r"The answer is $\boxed{1.6667}$.", r"\frac{5}{3}", 0, "rounded"),
    (r"So the probability is $\boxed{\dfrac{3}{8}}$.", "0.375", 1, "dfrac against decimal"),
    (r"So the probability is $\boxed{\tfrac{3}{8}}$.", r"\frac38", 1, "tfrac"),
    (r"The probability is $\boxed{{3 \over 8}}$.", r"\frac{3}{8}", 1, "over"),
    (r"The probability is $\boxed{\frac{3}{7}}$.", r"\frac{3}{8}", 0, "wrong"),
    (r"The distance is $\boxed{2\sqrt{5}}$.", r"\sqrt{20}", 1, "simplified root"),
    (r"The distance is $\boxed{\sqrt{20}}$.", r"2\sqrt{5}", 1, "unsimplified root"),
    (r"The distance is $\boxed{4.47}$.", r"2\sqrt{5}", 0, "rounded"),
    (r"The area is $\boxed{16\pi}$.", r"16\pi", 1, "identical"),
    (r"The area is $\boxed{16 \pi \text{ square units}}$.", r"16\pi", 1, "unit words"),
    (r"The area is $\boxed{8\pi}$.", r"16\pi", 0, "wrong"),
    (r"The angle is $\boxed{60^\circ}$.", "60", 1, "degrees"),
    (r"The angle measures $\boxed{60\degree}$.", "60", 1, "degree command"),
    (r"So $\theta = \boxed{\frac{\pi}{3}}$.", r"\frac{\pi}{3}", 1, "radians"),
    (r"So $\theta = \boxed{\frac{\pi}{6}}$.", r"\frac{\pi}{3}", 0, "wrong angle"),
    (r"The domain is $\boxed{[2, \infty)}$.", r"[2,\infty)", 1, "interval"),
    (r"The domain is $\boxed{x \geq 2}$.", r"[2,\infty)", 1, "inequality for an interval"),
    (r"The domain is $\boxed{(2, \infty)}$.", r"[2,\infty)", 0, "2 excluded"),
    (r"The solution set is $\boxed{(-\infty, -3) \cup (3, \infty)}$.",
     r"(3,\infty)\cup(-\infty,-3)", 1, "union in another order"),
    (r"The solution set is $\boxed{(-\infty, -3] \cup [3, \infty)}$.",
     r"(-\infty,-3)\cup(3,\infty)", 0, "endpoints included"),
    (r"We need $\boxed{-2 < x < 5}$.", "(-2,5)", 1, "double inequality"),
    (r"We need $\boxed{-2 \le x \le 5}$.", "(-2,5)", 0, "closed instead of open"),
    (r"The range is $\boxed{[0, +\infty)}$.", r"[0,\infty)", 1, "+infinity"),
    (r"The roots are $\boxed{2, -3}$.", "-3, 2", 1, "list in another order"),
    (r"The roots are $\boxed{\{-3, 2\}}$.", "-3, 2", 1, "set against list"),
    (r"The roots are $\boxed{2, 3}$.", "-3, 2", 0, "a sign"),
    (r"The roots are $x = 2$ and $x = -3$, so $\boxed{x = 2 \text{ or } x = -3}$.", "-3, 2", 1,
     "both roots, joined by 'or' (not a hedge: the gold has two values)"),
    (r"The solutions are $\boxed{1 \pm \sqrt{2}}$.", r"1+\sqrt{2}, 1-\sqrt{2}", 1,
     "both roots written with \\pm"),
    (r"So $x = \boxed{1 + \sqrt{2}}$.", r"1+\sqrt{2}, 1-\sqrt{2}", 0, "one of two roots"),
    (r"The vertex is at $\boxed{(1, -4)}$.", "(1,-4)", 1, "point"),
    (r"The vertex is at $\boxed{(-4, 1)}$.", "(1,-4)", 0, "coordinates swapped"),
    (r"The midpoint is $\boxed{\left(\frac{1}{2}, 3\right)}$.", "(0.5, 3)", 1, "point with a fraction"),
    (r"The number of ways is $\boxed{\binom{8}{3}}$.", "56", 1, "binomial coefficient"),
    (r"The number of ways is $\boxed{8!/(3!5!)}$.", "56", 1, "factorials"),
    (r"The number of ways is $\boxed{336}$.", "56", 0, "ordered count"),
    (r"As a fraction, $0.\overline{36} = \boxed{\frac{4}{11}}$.", r"\frac{4}{11}", 1, "fraction"),
    (r"So the decimal is $\boxed{0.\overline{36}}$.", r"\frac{4}{11}", 1, "repeating decimal"),
    (r"So the decimal is $\boxed{0.36}$.", r"\frac{4}{11}", 0, "truncated"),
    (r"In base 2 this is $\boxed{11011_2}$.", "11011_2", 1, "base"),
    (r"In base 2 this is $\boxed{11011_{2}}$.", "11011_2", 1, "base with braces"),
    (r"In base 2 this is $\boxed{11001_2}$.", "11011_2", 0, "wrong digits"),
    (r"The day is $\boxed{\text{Thursday}}$.", r"\text{Thursday}", 1, "text"),
    (r"The day is $\boxed{\text{thursday}}$.", r"\text{Thursday}", 1, "text, lower case"),
    (r"The day is $\boxed{\text{Friday}}$.", r"\text{Thursday}", 0, "another day"),
    (r"The correct option is $\boxed{\text{(C)}}$.", r"\text{(C)}", 1, "choice"),
    (r"The correct option is $\boxed{C}$.", r"\text{(C)}", 1, "bare choice letter"),
    (r"The correct option is $\boxed{(D)}$.", r"\text{(C)}", 0, "another choice"),
    (r"There is no solution: $\boxed{\varnothing}$.", r"\emptyset", 1, "empty set spellings"),
    (r"The sum is $\boxed{\frac{n(n+1)}{2}}$.", r"\frac{n^2+n}{2}", 1, "expanded numerator"),
    (r"The sum is $\boxed{\frac{n(n-1)}{2}}$.", r"\frac{n^2+n}{2}", 0, "off by one"),
    (r"So the answer is $\boxed{\sqrt{3}/2}$.", r"\frac{\sqrt{3}}{2}", 1, "slash form"),
    (r"So the answer is $\boxed{\frac{\sqrt{3}}{3}}$.", r"\frac{1}{\sqrt{3}}", 1, "rationalised"),
    (r"We get $\boxed{\frac{1}{2}}$. Wait, I dropped a factor of 2: $\boxed{1}$.", "1", 1,
     "corrected box"),
    (r"We get $\boxed{1}$. Hmm, checking again, it should be $\boxed{\frac12}$.", "1", 0,
     "changed to a wrong answer"),
    (r"The answer is $\boxed{5}$ or possibly $\boxed{6}$.", "6", 0,
     "two boxes offered as alternatives: the text hedges"),
    (r"So $\boxed{7}$", "7", 1, "plain"),
    (r"So $\boxed{7 \text{ or } 8}$", "7", 0, "hedge"),
    (r"So $\boxed{\pm 3}$", "3", 0, "\\pm for a single value"),
    (r"So $\boxed{3}$ (or $-3$)", "3", 0, "the remark after the box offers another answer"),
    (r"The value is $\boxed{\frac{1}{2}", r"\frac{1}{2}", 0, "unclosed box"),
    (r"The value is $\boxed{\sin x \cos x}$.", r"\frac{\sin 2x}{2}", 1, "double-angle identity"),
    (r"The limit is $\boxed{e^2}$.", "e^{2}", 1, "braces in the exponent"),
    (r"The limit is $\boxed{e^{-2}}$.", "e^{2}", 0, "sign of the exponent"),
    (r"The sum equals $\boxed{2^{20} - 1}$.", "1048575", 1, "power expression"),
    (r"The sum equals $\boxed{2^{20}}$.", "1048575", 0, "off by one"),
    (r"The answer is \[ \boxed{\frac{7}{12}} \]", r"\frac{7}{12}", 1, "display math"),
    (r"Final answer: \( \frac{7}{12} \)", r"\frac{7}{12}", 1, "inline math after an anchor"),
    (r"The perimeter is $\boxed{12 + 4\sqrt{2}}$.", r"4\sqrt{2}+12", 1, "commuted surd"),
    (r"The perimeter is $\boxed{12 + 2\sqrt{2}}$.", r"4\sqrt{2}+12", 0, "wrong coefficient"),
    (r"Thus $a + b = \boxed{17}$.", "17", 1, "expression name before the box"),
    (r"$\boxed{a+b=17}$", "17", 1, "named value in the box"),
    (r"$\boxed{17 = a+b}$", "17", 1, "the value first, then its name"),
]


# Written after the rules above were added, and not used to add rules: the held-out measure.
FRESH = [
    ("Mark buys 3 packs of 8 pencils: 3 * 8 = 24 pencils. He gives away 9, so 24 - 9 = 15.\n#### 15",
     "15", 1, "plain"),
    ("Mark has 24 - 9 = 15 pencils left.\n#### 15 pencils.", "15", 1, "unit word and period"),
    ("The weekly cost is 7 * $4.25 = $29.75\n#### $29.75", "29.75", 1, "dollars and cents"),
    ("The weekly cost is 7 * $4.25 = $29.75\n#### 29.70", "29.75", 0, "wrong cents"),
    ("Half of 86 is 43.\n#### 43.", "43", 1, "period"),
    ("So the garden is 12 * 15 = 180 square feet.\n#### 180 sq ft", "180", 1, "unit words"),
    ("He runs 3 laps of 400m, 1200m in all.\n#### 1200m", "1200", 1, "metres glued"),
    ("Together they have 45 + 38 = 83 marbles.\n#### 83", "84", 0, "off by one"),
    ("First I got 56. Checking: 8 * 7 = 56. Correct.\n#### 56", "56", 1, "reflection"),
    ("#### 120\nOops, the question asked per person: 120 / 4 = 30.\n#### 30", "30", 1, "corrected"),
    ("#### 30\nOops, the question asked for the total: 30 * 4 = 120.\n#### 120", "30", 0,
     "corrected to a wrong answer"),
    ("It takes 2.5 hours, i.e. 150 minutes.\n#### 150", "150", 1, "plain"),
    ("It takes 150 minutes.\n#### 2.5 hours", "150", 0, "another unit: 2.5 is not 150"),
    ("The fraction eaten is 3/8.\n#### 3/8", "0.375", 1, "fraction against decimal"),
    ("She is 14 years old now.\n#### 14 years old", "14", 1, "trailing words"),
    ("The answer is 14 or 15 depending on the month.\n#### 14 or 15", "14", 0, "hedge"),
    ("In total 1,234,500 people.\n#### 1,234,500", "1234500", 1, "millions"),
    ("#### 1.2345 million", "1234500", 0, "a different spelling a grader would not compute"),
    ("The profit is $-50, a loss.\n#### -50", "-50", 1, "negative"),
    ("Answer: 64", "64", 1, "anchor"),
    ("**Final Answer:** $\\boxed{64}$", "64", 1, "markdown and box"),
    ("<answer>\\frac{3}{4}</answer>", "0.75", 1, "fraction in a tag"),
    ("<answer>0.7</answer>", "0.75", 0, "rounded"),
    (r"The sum of the roots is $-\frac{b}{a} = \boxed{-\frac{5}{2}}$.", "-2.5", 1, "negative fraction"),
    (r"The sum of the roots is $\boxed{\frac{5}{2}}$.", r"-\frac{5}{2}", 0, "sign"),
    (r"Simplifying gives $\boxed{\frac{2x+6}{4}}$.", r"\frac{x+3}{2}", 1, "unreduced rational expression"),
    (r"Simplifying gives $\boxed{\frac{2x+6}{4}}$.", r"\frac{x+6}{2}", 0, "wrong reduction"),
    (r"The polynomial is $\boxed{x^3 - 6x^2 + 11x - 6}$.", "(x-1)(x-2)(x-3)", 1, "expanded cubic"),
    (r"The polynomial is $\boxed{x^3 - 6x^2 + 11x + 6}$.", "(x-1)(x-2)(x-3)", 0, "constant sign"),
    (r"Thus $\boxed{y = 3x - 4}$.", "3x - y - 4 = 0", 1, "same line"),
    (r"Thus $\boxed{y = 3x + 4}$.", "3x - y - 4 = 0", 0, "another line"),
    (r"The inverse is $f^{-1}(x) = \boxed{\frac{x-3}{2}}$.", r"\frac{x}{2}-\frac{3}{2}", 1, "split"),
    (r"The solution is $\boxed{x < -1}$.", r"(-\infty, -1)", 1, "inequality"),
    (r"The solution is $\boxed{x \le -1}$.", r"(-\infty, -1)", 0, "closed end"),
    (r"The solution set is $\boxed{[-2, 3]}$.", r"-2 \le x \le 3", 1, "interval against inequality"),
    (r"The solution set is $\boxed{[-2, 3)}$.", r"-2 \le x \le 3", 0, "3 excluded"),
    (r"It is increasing on $\boxed{(-\infty, 0) \cup (2, \infty)}$.",
     r"(2, \infty) \cup (-\infty, 0)", 1, "union order"),
    (r"The solutions are $\boxed{-1, 4}$.", r"4, -1", 1, "order"),
    (r"The solutions are $x = -1$ and $x = 4$: $\boxed{-1 \text{ and } 4}$.", "4, -1", 1,
     "two roots joined by 'and'"),
    (r"The solutions are $\boxed{-1 \text{ and } 5}$.", "4, -1", 0, "one root wrong"),
    (r"$x = \boxed{\frac{-3 \pm \sqrt{17}}{4}}$", r"\frac{-3+\sqrt{17}}{4}, \frac{-3-\sqrt{17}}{4}", 1,
     "quadratic formula"),
    (r"$x = \boxed{\frac{-3 + \sqrt{17}}{4}}$", r"\frac{-3+\sqrt{17}}{4}, \frac{-3-\sqrt{17}}{4}", 0,
     "one root of two"),
    (r"The point is $\boxed{(2, -\frac{1}{3})}$.", r"\left(2, -\frac13\right)", 1, "point"),
    (r"The point is $\boxed{(2, \frac{1}{3})}$.", r"\left(2, -\frac13\right)", 0, "sign"),
    (r"The probability is $\boxed{\frac{5}{36}}$.", r"\frac{5}{36}", 1, "plain"),
    (r"The probability is $\boxed{0.139}$.", r"\frac{5}{36}", 0, "rounded"),
    (r"The number of arrangements is $\boxed{\frac{7!}{2!2!}}$.", "1260", 1, "factorials"),
    (r"The number of arrangements is $\boxed{5040}$.", "1260", 0, "repeats not divided out"),
    (r"The remainder is $\boxed{3}$.", "3", 1, "plain"),
    (r"$\boxed{\sqrt{50}}$", r"5\sqrt{2}", 1, "unsimplified surd"),
    (r"$\boxed{5\sqrt{5}}$", r"5\sqrt{2}", 0, "another surd"),
    (r"The volume is $\boxed{\frac{32\pi}{3}}$ cubic units.", r"\frac{32}{3}\pi", 1, "π placement"),
    (r"The volume is $\boxed{\frac{32}{3}}$.", r"\frac{32}{3}\pi", 0, "π missing"),
    (r"$\cos 120^\circ = \boxed{-\frac{1}{2}}$", "-0.5", 1, "chain outside the box"),
    (r"The answer is $\boxed{\text{even}}$.", r"\text{even}", 1, "text"),
    (r"The answer is $\boxed{\text{Even}}$.", r"\text{even}", 1, "text, case"),
    (r"The answer is $\boxed{\text{odd}}$.", r"\text{even}", 0, "other word"),
    (r"The correct choice is $\boxed{\textbf{(E)}}$.", "E", 1, "bold choice"),
    (r"The correct choice is $\boxed{A}$.", "E", 0, "other choice"),
    (r"In base 5: $\boxed{1243_5}$.", "1243_5", 1, "base"),
    (r"$\boxed{0.\overline{142857}}$", r"\frac{1}{7}", 1, "repeating block"),
    (r"$\boxed{\frac{1}{7}}$", r"0.\overline{142857}", 1, "gold as repeating decimal"),
    (r"$\boxed{\frac{2}{7}}$", r"0.\overline{142857}", 0, "double"),
    (r"We find $\boxed{a = 3, b = -2}$.", "(3, -2)", 0,
     "named values against an ordered pair: the pair's order is not stated by names alone"),
    (r"So $\boxed{k = 6}$.", "6", 1, "named value"),
    (r"So $\boxed{k = 6}$. Hmm wait, I should double check: $k = 6$ works.", "6", 1, "reflection after"),
    (r"So $\boxed{k=6}$ and also $\boxed{k=-6}$.", "6, -6", 0,
     "two boxes: only the last is the answer, and it is one of two values"),
    (r"$\boxed{2^{2023}}$", r"2^{2023}", 1, "identical power"),
    (r"$\boxed{2^{2022}}$", r"2^{2023}", 0, "exponent off by one"),
    (r"Let me box it: \boxed{\dfrac{9}{4}}", "2.25", 1, "dfrac"),
    (r"Let me box it: \boxed{\dfrac{4}{9}}", "2.25", 0, "inverse"),
]

# Written to catch false positives a policy could learn, one class at a time (none of them is a
# test case: tests/test_grader.py has its own): (class, completion, gold, verdict, reason).
# 1: words after the answer that change it; 2: later lines; 3: a hedge before the answer;
# 4: closeness taken for equality; 5: an identity at the grader's points; 6: long inputs. Each
# class has right answers (verdict 1) beside its wrong ones, so refusing everything fails.
ADVERSARIAL = [
    (1, "#### 12 + 1", "12", 0, "12 + 1"),
    (1, "#### 12, plus one more", "12", 0, "13"),
    (1, "\\boxed{12}+1", "12", 0, "13"),
    (1, "#### 12 (minus 2)", "12", 0, "10"),
    (1, "#### 7 (times 3)", "7", 0, "21"),
    (1, "\\boxed{7} halved", "7", 0, "3.5"),
    (1, "#### 7 (twice)", "7", 0, "14"),
    (1, "#### 6 hundred", "6", 0, "600"),
    (1, "#### 3 millions", "3", 0, "3,000,000"),
    (1, "#### 2 thousandths", "2", 0, "0.002"),
    (1, "#### 3 quarters", "3", 0, "0.75"),
    (1, "\\boxed{5}\\text{ thousand}", "5", 0, "5000"),
    (1, "#### $5M", "5", 0, "5 million"),
    (1, "#### 5K", "5", 0, "5000"),
    (1, "#### 5, negative", "5", 0, "-5"),
    (1, "#### -12 (positive)", "-12", 0, "contradicts"),
    (1, "#### 42 (wrong)", "42", 0, "withdrawn"),
    (1, "#### 42. Hmm, that doesn't look right.", "42", 0, "withdrawn"),
    (1, "#### 42, I think", "42", 0, "hedge"),
    (1, "#### 42 approx.", "42", 0, "about 42"),
    (1, "#### 42 give or take", "42", 0, "about 42"),
    (1, "#### 42 or more", "42", 0, "a bound"),
    (1, "#### 42 (43 with the teacher)", "42", 0, "another total"),
    (1, "#### 42 (typo: 44)", "42", 0, "corrected"),
    (1, "#### 42 (i.e. 44)", "42", 0, "corrected"),
    (1, "#### 42 (44)", "42", 0, "another number"),
    (1, "#### 42 -> 44", "42", 0, "corrected"),
    (1, "#### 42 (or forty-three)", "42", 0, "second answer"),
    (1, "#### 42 (low confidence)", "42", 0, "hedge"),
    (1, "#### 12 (reciprocal)", "12", 0, "1/12"),
    (1, "#### 12 (±1)", "12", 0, "a range"),
    (1, "#### 12 (3 \\times 4)", "12", 1, "3 * 4 = 12"),
    (1, "#### 12 (twelve)", "12", 1, "in words"),
    (1, "#### 12 miles per hour", "12", 1, "unit"),
    (1, "#### 12 m/s", "12", 1, "compound unit"),
    (1, "#### 12 square meters", "12", 1, "unit"),
    (1, "#### 12 (12 = 3 * 4)", "12", 1, "restated"),
    (1, "#### 1200 (1,200)", "1200", 1, "restated"),
    (1, "#### 12 (exactly)", "12", 1, "confirmed"),
    (1, "\\boxed{12} is the answer.", "12", 1, "plain"),
    (1, "**Answer: 12**", "12", 1, "bold anchor"),
    (1, "So the total is:\n**12**", "12", 1, "bold line"),
    (1, "Total: 6 + 6 = 12 apples", "12", 1, "a calculation as the last line"),
    (1, "#### 12</s>", "12", 1, "an end token"),
    (1, "\\boxed{12}<|im_end|>", "12", 1, "an end token"),
    (2, "#### 42\n44", "42", 0, "a second answer"),
    (2, "#### 42\nscratch that, 44", "42", 0, "withdrawn"),
    (2, "#### 42\nOops, it's 44.", "42", 0, "corrected"),
    (2, "#### 42\nCorrection: 44", "42", 0, "corrected"),
    (2, "#### 42\nI mean 44", "42", 0, "corrected"),
    (2, "#### 42\nthe answer is forty-four", "42", 0, "corrected"),
    (2, "#### 42\nHmm.", "42", 0, "unresolved doubt"),
    (2, "#### 42\nWait, let me recheck.", "42", 0, "unresolved doubt"),
    (2, "\\boxed{42}\n\nBut wait, is it?", "42", 0, "doubt"),
    (2, "#### 12\nthirteen", "12", 0, "13"),
    (2, "#### 42\nLet me reconsider.", "42", 0, "withdrawn"),
    (2, "#### 12\nThe answer is 12.", "12", 1, "restated"),
    (2, "#### 12\n\nVerification: 3 * 4 = 12 ✓", "12", 1, "a check"),
    (2, "\\boxed{12}\nWait, let me double check: 3 * 4 = 12. Yes.", "12", 1, "doubt resolved"),
    (2, "#### 12\n\nExplanation: There are 3 rows of 4, so 3 * 4 = 12.", "12", 1, "an explanation"),
    (2, "\\boxed{12}\n\nQuestion 2: What is 5 + 5?", "12", 1, "the next exercise"),
    (2, "\\boxed{12}\n\nI hope this helps! Let me know if you have any other questions.", "12", 1,
     "a closing"),
    (3, "Possibly \\boxed{42}", "42", 0, "hedge"),
    (3, "Perhaps $\\boxed{42}$", "42", 0, "hedge"),
    (3, "It's likely \\boxed{42}.", "42", 0, "hedge"),
    (3, "roughly \\boxed{42}", "42", 0, "about"),
    (3, "x \\approx \\boxed{42}", "42", 0, "about"),
    (3, "more than \\boxed{42}", "42", 0, "a bound"),
    (3, "It might be \\boxed{42}.", "42", 0, "hedge"),
    (3, "41 or maybe \\boxed{42}", "42", 0, "one of two"),
    (3, "\\boxed{41} or \\boxed{42}", "42", 0, "one of two"),
    (3, "I think it's 41 or 42. \\boxed{42}", "42", 0, "one of two, then boxed"),
    (3, "Estimated answer: \\boxed{42}", "42", 0, "an estimate"),
    (3, "Between $\\boxed{40}$ and $\\boxed{42}$", "42", 0, "a range"),
    (3, "It's not 41, so \\boxed{42}", "42", 1, "a decision"),
    (3, "41? No: \\boxed{42}", "42", 1, "a correction"),
    (3, "Either way, the answer is \\boxed{12}.", "12", 1, "no hedge"),
    (3, "We get 3 or 4 per row, so \\boxed{12}.", "12", 1, "the 'or' is in the reasoning"),
    (4, "\\boxed{2.2360679775}", "\\sqrt{5}", 0, "decimal"),
    (4, "\\boxed{\\frac{99}{70}}", "\\sqrt{2}", 0, "fraction near sqrt 2"),
    (4, "\\boxed{\\frac{355}{113}}", "\\pi", 0, "fraction near pi"),
    (4, "\\boxed{\\pi + 10^{-20}}", "\\pi", 0, "pi + 1e-20"),
    (4, "\\boxed{\\sqrt{10^{20}+1}}", "10^{10}", 0, "near square"),
    (4, "\\boxed{\\sqrt{2}+10^{-15}}", "\\sqrt{2}", 0, "tiny term"),
    (4, "\\boxed{0.33333333333333}", "\\frac{1}{3}", 0, "decimal"),
    (4, "\\boxed{1.0000000001}", "1", 0, "close to 1"),
    (4, "\\boxed{0.7071067811865476}", "\\frac{\\sqrt{2}}{2}", 0, "decimal"),
    (4, "\\boxed{1.5849625007211563}", "\\log_2 3", 0, "decimal of a log"),
    (4, "\\boxed{\\frac{1}{\\pi + 10^{-12}}}", "\\frac{1}{\\pi}", 0, "tiny term"),
    (4, "\\boxed{\\cos(10^{-8})}", "1", 0, "1 - 5e-17"),
    (4, "\\boxed{2^{0.5000000001}}", "\\sqrt{2}", 0, "exponent off"),
    (4, "\\boxed{0.125}", "\\frac{1}{8}", 1, "exact decimal"),
    (4, "\\boxed{\\sqrt{18}}", "3\\sqrt{2}", 1, "same root"),
    (4, "\\boxed{\\sqrt[3]{54}}", "3\\sqrt[3]{2}", 1, "cube root"),
    (4, "\\boxed{\\frac{5\\sqrt{3}}{3}}", "\\frac{5}{\\sqrt{3}}", 1, "rationalised"),
    (4, "\\boxed{2+\\sqrt{3}}", "\\frac{1}{2-\\sqrt{3}}", 1, "rationalised"),
    (4, "\\boxed{\\sqrt{2}+\\sqrt{3}}", "\\sqrt{5+2\\sqrt{6}}", 1, "nested root"),
    (4, "\\boxed{\\sin(\\pi)}", "0", 1, "exactly 0"),
    (4, "\\boxed{2^{0.5}}", "\\sqrt{2}", 1, "same"),
    (4, "\\boxed{3.\\overline{142857}}", "\\frac{22}{7}", 1, "repeating decimal"),
    (5, "\\boxed{\\sqrt{x}+(x-3)(x-7)}", "\\sqrt{x}", 0, "vanishes at 3 and 7"),
    (5, "\\boxed{x + (x-1)(x-2)(x-3)(x-4)(x-5)(x-6)(x-7)(x-8)}", "x", 0, "vanishes at 1..8"),
    (5, "\\boxed{\\frac{x^3-1}{x-1}}", "x^2+x", 0, "x^2 + x + 1"),
    (5, "\\boxed{\\frac{|x|}{x}}", "1", 0, "-1 for x < 0"),
    (5, "\\boxed{x^{100}}", "x^{100}+1", 0, "off by one"),
    (5, "\\boxed{\\sqrt{(x-1)^2}}", "x-1", 0, "|x-1|"),
    (5, "\\boxed{e^{x}e^{y}}", "e^{x+y}", 1, "powers"),
    (5, "\\boxed{\\frac{2x+2}{2}}", "x+1", 1, "cancelled"),
    (5, "\\boxed{|x|^2}", "x^2", 1, "same"),
    (5, "\\boxed{\\sqrt{4x^2}}", "2|x|", 1, "same"),
    (6, "#### 42" + " " * 2000 + "x", "42", 0, "42 ... x"),
    (6, "\\boxed{42" + " " * 2000 + "7}", "42", 0, "42 ... 7"),
    (6, "#### 42" + " " * 2000, "42", 1, "trailing spaces"),
    (6, "\\boxed{42}" + "\n" * 2000, "42", 1, "trailing newlines"),
    (6, "\\boxed{" * 500 + "42" + "}" * 500, "42", 1, "nested boxes"),
    (6, "#### 42 " + "maybe " * 300, "42", 0, "hedged"),
]


MB = 1_000_000


def _fill(unit, n=MB):
    return (unit * (n // len(unit) + 1))[:n]


# 1 MB completions of each pathological pattern, with the reward a careful grader gives: every
# call must be linear in its input (tests/test_grader.py checks that each returns; the times are
# printed here)
PATHOLOGICAL_1MB = {
    "hash-then-spaces-then-text": (lambda: "#### 42" + " " * MB + "x", "42", 0.0),
    "hash-then-spaces": (lambda: "#### 42" + " " * MB, "42", 1.0),
    "box-then-spaces": (lambda: "\\boxed{42}" + " " * MB, "42", 1.0),
    "hash-then-newlines": (lambda: "#### 42" + "\n" * MB, "42", 1.0),
    "many-hashes": (lambda: _fill("#### "), "42", 0.0),
    "many-hash-lines": (lambda: _fill("#### 1\n"), "42", 0.0),
    "hash-run": (lambda: "#" * MB, "42", 0.0),
    "unclosed-box-spaces": (lambda: "\\boxed{42" + " " * MB + "7}", "42", 0.0),
    "unclosed-box": (lambda: "\\boxed{" + _fill("1"), "1", 0.0),
    "nested-braces": (lambda: "\\boxed{" + "{" * (MB // 2) + "1" + "}" * (MB // 2) + "}", "1", 0.0),
    "alternating-braces": (lambda: "\\boxed{" + _fill("{}") + "}", "1", 0.0),
    "many-boxes": (lambda: _fill("\\boxed{1}"), "1", 0.0),
    "box-words": (lambda: _fill("\\boxed "), "1", 0.0),
    "digits": (lambda: _fill("9"), "9", 0.0),
    "digits-in-box": (lambda: "\\boxed{" + _fill("9", MB - 10) + "}", "9", 0.0),
    "long-word": (lambda: _fill("a"), "1", 0.0),
    "hedge-words-on-line": (lambda: "#### 42 " + _fill("maybe "), "42", 0.0),
    "hedge-words-after": (lambda: "\\boxed{42}\n" + _fill("maybe "), "42", 0.0),
    "numbers-after": (lambda: "\\boxed{42}\n" + _fill("42 "), "42", 0.0),
    "answer-tags": (lambda: "<answer>1</answer>" * (MB // 18), "1", 1.0),
    "answer-tags-cut": (lambda: _fill("<answer>1</answer>"), "1", 0.0),  # the last never closes
    "open-answer-tags": (lambda: _fill("<answer>"), "1", 0.0),
    "think-tags": (lambda: _fill("<think>"), "1", 0.0),
    "anchors": (lambda: _fill("The answer is 1. "), "1", 1.0),
    "answer-colons": (lambda: _fill("answer:"), "1", 0.0),
    "anchor-then-dots": (lambda: "The answer is 4" + "." * MB, "4", 0.0),
    "parentheses": (lambda: "#### 42 " + _fill("()"), "42", 0.0),
    "long-sum": (lambda: "\\boxed{" + _fill("1+", MB - 10) + "1}", "1", 0.0),
    "letters-sum": (lambda: "\\boxed{" + _fill("x+", MB - 10) + "x}", "x", 0.0),
    "fractions": (lambda: "\\boxed{" + _fill("\\frac{1}{2}", MB - 10) + "}", "1", 0.0),
    "roots": (lambda: "\\boxed{" + _fill("\\sqrt{2}+", MB - 10) + "1}", "1", 0.0),
    "dollars": (lambda: _fill("$"), "1", 0.0),
    "unicode": (lambda: _fill("½√π"), "1", 0.0),
    "bold": (lambda: "**" + _fill("4") + "**", "4", 0.0),
    "calculation-line": (lambda: "4" + "=4" * (MB // 2), "4", 0.0),
    "new-questions": (lambda: "#### 42\n" + _fill("Question: 1\n"), "42", 1.0),
    "hedge-words-before": (lambda: _fill("maybe or ") + "\\boxed{42}", "42", 0.0),
    "gold-1mb": (lambda: "#### 1", "\\boxed{" + _fill("1+", MB - 10) + "1}", 0.0),
}


def agreement(grade, table, rounds=5):
    """(agreed, false positives, false negatives, seconds per call) of grade over a table.

    A call's time is its median over `rounds` calls, each with our caches cleared first: the
    work of one call, without a busy machine's pauses and without a cached gold answer.
    """
    agreed = fp = fn = 0
    times = []
    for completion, gold, verdict, _ in table:
        runs = []
        for _ in range(rounds):
            mathexpr.evaluate.cache_clear()
            t0 = time.perf_counter()
            got = grade(completion, gold)
            runs.append(time.perf_counter() - t0)
        times.append(statistics.median(runs))
        agreed += got == verdict
        fp += got == 1 and verdict == 0
        fn += got == 0 and verdict == 1
    return agreed, fp, fn, times


def math_verify_grade():
    """math_verify's verdict as a function like math_reward, or None if it is not installed."""
    try:
        from math_verify import parse, verify
    except ImportError:
        return None

    def grade(completion, gold):
        try:
            gold_parsed = parse(gold if isinstance(gold, str) and "$" in gold else f"${gold}$")
            return int(bool(verify(gold_parsed, parse(completion))))
        except Exception:
            return 0

    return grade


def report(name, grade, table):
    agreed, fp, fn, times = agreement(grade, table)
    times_ms = sorted(t * 1000 for t in times)
    p99 = times_ms[min(len(times_ms) - 1, int(0.99 * len(times_ms)))]
    print(f"  {name:>11}: {agreed}/{len(table)} agree ({agreed / len(table):.1%}), "
          f"{fp} false positives, {fn} false negatives, "
          f"{statistics.mean(times_ms):.3f} ms mean, {p99:.3f} ms p99 per call")


def report_by_class(grades, table):
    """Agreement per class of ADVERSARIAL, for each grader: the third table of docs/GRADER.md."""
    names = {1: "words after", 2: "later lines", 3: "hedge before", 4: "closeness",
             5: "identities", 6: "long inputs"}
    for k, name in names.items():
        rows = [row[1:] for row in table if row[0] == k]
        right = sum(row[2] for row in rows)
        print(f"  {k} {name}: {len(rows)} ({right} right, {len(rows) - right} wrong)")
        for grader, grade in grades.items():
            agreed, fp, fn, _ = agreement(grade, rows, rounds=1)
            print(f"    {grader:>11}: {agreed}/{len(rows)} agree, {fp} false positives, {fn} false negatives")


def time_1mb():
    """ms per call of math_reward on each 1 MB pathological completion: the best of 3."""
    worst = 0.0
    for name, (make, gold, _) in PATHOLOGICAL_1MB.items():
        completion, gold = make(), gold() if callable(gold) else gold
        runs = []
        for _ in range(3):
            mathexpr.evaluate.cache_clear()
            t0 = time.perf_counter()
            math_reward(completion, gold)
            runs.append(time.perf_counter() - t0)
        worst = max(worst, min(runs))
        print(f"  {name:>26}: {min(runs) * 1000:6.1f} ms")
    print(f"  worst: {worst * 1000:.1f} ms per 1 MB call")


if __name__ == "__main__":
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its timeouts print whole inputs
    mv = math_verify_grade()
    if mv is None:
        print("math_verify: not installed (pip install math-verify), not compared")
    for name, table in (("FRESH (held out)", FRESH), ("TABLE", TABLE), ("both", TABLE + FRESH)):
        right = sum(row[2] for row in table)
        print(f"{name}: {len(table)} hand-graded completions, {right} right, {len(table) - right} wrong")
        for completion, gold, verdict, reason in table:  # the disagreements, to read
            if name != "both" and math_reward(completion, gold) != verdict:
                print(f"    ours disagrees (human {verdict}): {reason}: {completion[-50:]!r}")
        report("reward.py", math_reward, table)
        if mv is not None:
            report("math_verify", mv, table)
    right = sum(row[3] for row in ADVERSARIAL)
    print(f"ADVERSARIAL by class: {len(ADVERSARIAL)} completions, {right} right, "
          f"{len(ADVERSARIAL) - right} wrong")
    graders = {"reward.py": math_reward} if mv is None else {"reward.py": math_reward, "math_verify": mv}
    report_by_class(graders, ADVERSARIAL)
    for name, grade in graders.items():
        report(name, grade, [row[1:] for row in ADVERSARIAL])
    print("1 MB pathological completions (reward.py only):")
    time_1mb()

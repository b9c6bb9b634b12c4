"""
Countdown, the task TinyZero, GRPO-Zero and nano-aha-moment train on: given a few numbers and a
target, write an arithmetic expression that uses each number exactly once, with + - * / and
parentheses, and equals the target. Many structurally different expressions usually solve a
problem, which makes it a test of FlowRL's claim to keep them.

    prompt      "Numbers: 3, 5, 7, 11. Target: 38. Write an expression ..."
    completion  "... <answer>(11 - 7) * 5 + 3 * 6</answer>"   (the last <answer> counts)

countdown_reward(completion, (nums, target)) is 1.0 for a correct expression and 0.0 for none or
a malformed one; a well-formed expression that is wrong (a wrong value, or not each number once)
gets format_score (TinyZero's option: 0.1; 0.0 by default). Arithmetic is exact (fractions), so
7 / 2 * 2 is 7; a unary minus is not allowed (it would make a number the problem does not give);
a division by zero is malformed. The parser reads each character once: linear time, and an
answer of more than MAX_CHARS characters is refused unread.

Problems come from a seeded generator (CountdownTask: nums from 1 to max_number, combined by a
random expression into a positive integer target of at most max_target, so every problem has a
solution) or from a JSONL file of {"nums": [...], "target": N} lines, checked reachable.
"""
import random
import re
from fractions import Fraction
from itertools import combinations

from tasks.jsonl import hold_out, json_lines
from tasks.sums import EVAL_SEED

MAX_CHARS = 1000  # longest answer read (a 5-number expression needs a few dozen)
MAX_NUMS = 5      # most numbers a problem may have: reachable() tries every split of them
NUMBERS, HI, TARGET_MAX = 4, 99, 99  # the generator's default sizes: 4 numbers from 1 to 99, targets to 99
_TOKEN = re.compile(r"\s*(?:(\d+)|([-+*/()=]))")
PROMPT = ("Numbers: {nums}. Target: {target}. Write an arithmetic expression that uses each of the "
          "numbers exactly once, with + - * / and parentheses, and equals the target. Think it "
          "through, then give the expression alone between <answer> and </answer>, for example "
          "<answer>(3 + 5) * 2</answer>.")


class _Malformed(Exception):
    pass


def parse(expression):
    """(value, numbers used) of an expression of integers, + - * / and parentheses, optionally
    followed by "= N" with N its value; raises _Malformed. Fractions, so exact."""
    tokens, pos, end = [], 0, len(expression.rstrip())
    while pos < end:
        m = _TOKEN.match(expression, pos)
        if not m:
            raise _Malformed(f"unexpected {expression[pos:pos + 10]!r}")
        tokens.append(int(m[1]) if m[1] else m[2])
        pos = m.end()
    if "=" in tokens:  # "3 * 5 + 7 = 22": the right side must be one number, the left side's value
        i = tokens.index("=")
        if i != len(tokens) - 2 or not isinstance(tokens[-1], int):
            raise _Malformed("'=' must be followed by one number at the end")
        value, used = parse_tokens(tokens[:i])
        if value != tokens[-1]:
            raise _Malformed("the two sides of '=' differ")
        return value, used
    return parse_tokens(tokens)


def parse_tokens(tokens):
    used, pos, depth = [], 0, 0

    def expr():  # term (('+' | '-') term)*
        nonlocal pos
        value = term()
        while pos < len(tokens) and tokens[pos] in ("+", "-"):
            op, pos = tokens[pos], pos + 1
            value = value + term() if op == "+" else value - term()
        return value

    def term():  # factor (('*' | '/') factor)*
        nonlocal pos
        value = factor()
        while pos < len(tokens) and tokens[pos] in ("*", "/"):
            op, pos = tokens[pos], pos + 1
            right = factor()
            if op == "/" and right == 0:
                raise _Malformed("division by zero")
            value = value * right if op == "*" else value / right
        return value

    def factor():  # number | '(' expr ')'
        nonlocal pos, depth
        if pos >= len(tokens):
            raise _Malformed("the expression ends early")
        token, pos = tokens[pos], pos + 1
        if isinstance(token, int):
            used.append(token)
            return Fraction(token)
        if token != "(" or depth >= 50:
            raise _Malformed(f"unexpected {token!r}")
        depth += 1
        value = expr()
        if pos >= len(tokens) or tokens[pos] != ")":
            raise _Malformed("a parenthesis is not closed")
        pos, depth = pos + 1, depth - 1
        return value

    value = expr()
    if pos != len(tokens):
        raise _Malformed(f"unexpected {tokens[pos]!r}")
    return value, used


def countdown_reward(completion, gold, *, format_score=0.0):
    """1.0, format_score or 0.0 (module docstring); gold = (nums, target). Never raises."""
    nums, target = gold
    end = completion.rfind("</answer>")  # the last answer: rfind, not a regex, so always linear
    start = completion.rfind("<answer>", 0, end)
    if end == -1 or start == -1 or end - start > MAX_CHARS or completion.rfind("<answer>") > end:
        return 0.0
    try:
        value, used = parse(completion[start + len("<answer>"):end])
    except (_Malformed, RecursionError):
        return 0.0
    return 1.0 if value == target and sorted(used) == sorted(nums) else format_score


def reachable(nums, target):
    """Whether some expression using each of nums once equals target: the values every subset of
    the numbers can make, built from the values of its two parts (every expression tree splits so)."""
    n = len(nums)
    values = {1 << i: {Fraction(x)} for i, x in enumerate(nums)}
    for size in range(2, n + 1):
        for subset in combinations(range(n), size):
            mask, made = sum(1 << i for i in subset), set()
            for k in range(1, size):
                for left in combinations(subset, k):
                    a = sum(1 << i for i in left)
                    if a < mask ^ a:  # each split once
                        for x in values[a]:
                            for y in values[mask ^ a]:
                                made |= {x + y, x - y, y - x, x * y}
                                made |= {x / y} if y else set()
                                made |= {y / x} if x else set()
            values[mask] = made
    return Fraction(target) in values[(1 << n) - 1]


def countdown_problem(rng, n_numbers, max_number, max_target):
    """(nums, target): n_numbers from 1 to max_number, and the value of a random expression over
    them that is a positive integer of at most max_target (drawn again until it is)."""
    while True:
        nums = [rng.randint(1, max_number) for _ in range(n_numbers)]
        pool = [Fraction(x) for x in nums]
        while len(pool) > 1:
            x, y = pool.pop(rng.randrange(len(pool))), pool.pop(rng.randrange(len(pool)))
            op = rng.choice("+-*/" if y else "+-*")
            pool.append(x + y if op == "+" else x - y if op == "-" else x * y if op == "*" else x / y)
        if pool[0].denominator == 1 and 0 < pool[0] <= max_target:
            return nums, int(pool[0])


def question(nums, target):
    return PROMPT.format(nums=", ".join(map(str, nums)), target=target)


class CountdownTask:
    """Endless generated problems and n_eval held-out ones (a fixed set, apart from training's), or
    a JSONL file's problems, a fifth of them at most held out. Problems are (question, (nums, target))."""

    def __init__(self, n_eval, path=None, n_numbers=NUMBERS, max_number=HI, max_target=TARGET_MAX, format_score=0.0,
                 eval_path=None):
        self.reward = lambda completion, gold: countdown_reward(completion, gold, format_score=format_score)
        self.sizes = (n_numbers, max_number, max_target)
        if path:
            problems = [(question(*p), p) for p in read_countdown(path)]
            held = [(question(*p), p) for p in read_countdown(eval_path)] if eval_path else None
            self.eval_set, self.train_set, split = hold_out(path, problems, n_eval, key=problem_key,
                                                            eval_path=eval_path, held=held)
            self.describe = "countdown, " + split
        else:
            eval_rng, self.eval_set, self.train_set = random.Random(EVAL_SEED), [], None
            while len(self.eval_set) < n_eval:
                nums, target = countdown_problem(eval_rng, *self.sizes)
                self.eval_set.append((question(nums, target), (nums, target)))
            self.describe = (f"countdown, {n_eval} held-out problems of {n_numbers} numbers up to {max_number}, "
                             f"targets up to {max_target}")
        self.held_out = {problem_key(p) for p in self.eval_set}

    def train_problem(self, rng):
        if self.train_set:
            return rng.choice(self.train_set)
        while True:
            p = (question(*(gold := countdown_problem(rng, *self.sizes))), gold)
            if problem_key(p) not in self.held_out:
                return p


def problem_key(problem):
    """The same numbers in any order, and the same target, are the same problem."""
    _, (nums, target) = problem
    return tuple(sorted(nums)), target


def read_countdown(path):
    """[(nums, target)] from a JSONL file of {"nums": [...], "target": N}; a bad line (a missing
    field, a number that is not a positive integer, an unreachable target) is one error naming
    the file and the line."""
    problems = []
    for i, row in json_lines(path):
        nums, target = (row.get("nums"), row.get("target")) if isinstance(row, dict) else (None, None)
        if not (isinstance(nums, list) and 2 <= len(nums) <= MAX_NUMS and all(type(x) is int and x > 0 for x in nums)):
            raise ValueError(f"{path} line {i}: 'nums' must be a list of 2 to {MAX_NUMS} positive integers")
        if type(target) is not int:
            raise ValueError(f"{path} line {i}: 'target' must be an integer")
        if not reachable(nums, target):
            raise ValueError(f"{path} line {i}: no expression of {nums} reaches the target {target}")
        problems.append((nums, target))
    return problems

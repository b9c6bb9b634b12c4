"""
Countdown for a model trained from scratch (`python train.py --task countdown`): reach the target
(by default at most 10) from three numbers from 1 to 9 (--countdown_numbers, --countdown_max,
--countdown_target_max), one step at a time, each step combining two of the numbers left
into a new one with + - * /, until one number is left; results stay positive integers, as in the
game. The completion writes the steps, then " #### " and the target:

    prompt      "4 3 2:10\n"                      "5 4 3 2:21\n" (with --countdown_numbers 4)
    completion  "3*4=12,12-2=10 #### 10"            "5*4=20,20+3=23,23-2=21 #### 21"

Unlike the sums, whose paths all compute one sum, a problem here has structurally different
solutions. Two derivations are one solution when their expressions are equal after flattening
sums and products and sorting their operands, as written, subtraction and division kept as they
are (`solutions`): "3*5=15,15+2=17" and "5*3=15,2+15=17" are one solution, (3*5)+2, while
"5*4=20,20+3=23,23-2=21" and "5*4=20,20-2=18,18+3=21" are two, ((4*5)+3)-2 and ((4*5)-2)+3.

The SFT teacher picks uniformly among a problem's distinct solutions, then uniformly among the
derivations of the one it picked, so pi_ref spreads over structurally different solutions; with
probability `slip` its final "#### N" is off by one, as the sums teacher's (tasks/sums.py).

The reward reads exactly this format (numbers without leading zeros, one space each side of
"####"), so the completions it rewards are exactly the derivations `solutions` enumerates.
"""
import functools
import itertools
import random
import re
from collections import Counter

from tasks.sums import EVAL_SEED, char_tokenizer

NUMBERS, HI, TARGET_MAX = 3, 9, 10  # the default sizes: three numbers from 1 to 9, targets up to 10 (docs/TASKS.md: why)
MAX_NUMBERS, MAX_TARGET = 4, 99  # the largest sizes: every derivation is enumerated (solutions)
MAX_CHARS = 200  # longest completion read: three steps of 4-digit numbers need under 60
_NUM = r"[1-9]\d*"
_STEP = rf"{_NUM}[-+*/]{_NUM}={_NUM}"
_FORM = re.compile(rf"((?:{_STEP},)*{_STEP}) #### ({_NUM})")
_PARTS = re.compile(rf"({_NUM})([-+*/])({_NUM})=({_NUM})")


def combine(a, op, b):
    """a op b when it is a positive integer (the game's rule), else None."""
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "-":
        return a - b if a > b else None
    return a // b if a % b == 0 else None


def toy_countdown_reward(completion, gold, *, format_score=0.0):
    """1.0 when the steps are right and use each of gold's numbers once to end at its target,
    format_score for a well-formed derivation that is wrong, 0.0 for anything else. gold =
    (nums, target). Linear time: a completion longer than MAX_CHARS is refused unread."""
    nums, target = gold
    m = _FORM.fullmatch(completion) if len(completion) <= MAX_CHARS else None
    if not m:
        return 0.0
    left = Counter(nums)  # the numbers not yet combined
    for step in m[1].split(","):
        a, op, b, c = _PARTS.fullmatch(step).groups()
        a, b, c = int(a), int(b), int(c)
        left[a] -= 1
        left[b] -= 1
        if left[a] < 0 or left[b] < 0 or combine(a, op, b) != c:
            return format_score
        left[c] += 1
    done = +left == Counter([target]) and int(m[2]) == target
    return 1.0 if done else format_score


def _node(op, x, y):
    """The canonical form of x op y, as (op, parts): a sum or product flattened, its operands
    sorted; a difference or quotient kept in order. A number is (None, (its text,))."""
    if op in "+*":
        parts = [p for t in (x, y) for p in (t[1] if t[0] == op else (_text(t, nested=True),))]
        return op, tuple(sorted(parts))
    return op, (_text(x, nested=True), _text(y, nested=True))


def _text(t, nested=False):
    op, parts = t
    if op is None:
        return parts[0]
    return f"({op.join(parts)})" if nested else op.join(parts)


@functools.lru_cache(maxsize=None)
def _derivations(nums):
    """{target: {derivation: solution}} for a sorted tuple of numbers: every way to combine them,
    one step at a time, into one number of at most MAX_TARGET, whatever a run's targets. A
    derivation that reads two ways (it uses a 4 when a 4 was given and another made) could be
    either expression; it is counted as the solution of its smallest reading, so that each
    derivation belongs to one solution."""
    readings = {}  # (target, derivation) -> every canonical expression it can be read as

    def walk(pool, steps):  # pool: [(value, canonical form)] of the numbers left
        if len(pool) == 1:
            value, form = pool[0]
            if value <= MAX_TARGET:
                readings.setdefault((value, ",".join(steps)), set()).add(_text(form))
            return
        for i, j in itertools.permutations(range(len(pool)), 2):
            (a, fa), (b, fb) = pool[i], pool[j]
            rest = [p for k, p in enumerate(pool) if k not in (i, j)]
            for op in "+-*/":
                c = combine(a, op, b)
                if c is not None:
                    walk(rest + [(c, _node(op, fa, fb))], steps + [f"{a}{op}{b}={c}"])

    walk([(n, (None, (str(n),))) for n in nums], [])
    out = {}
    for (target, derivation), forms in sorted(readings.items()):
        out.setdefault(target, {})[f"{derivation} #### {target}"] = min(forms)
    return out


def solutions(nums, target):
    """{canonical solution: [each of its derivations, as a completion]}, both sorted; {} when the
    target cannot be reached."""
    found = {}
    for derivation, solution in _derivations(tuple(sorted(nums))).get(target, {}).items():
        found.setdefault(solution, []).append(derivation)
    return dict(sorted(found.items()))


def solution_of(completion, nums, target):
    """The solution a correct completion writes, or None when the reward would not give it 1."""
    return _derivations(tuple(sorted(nums))).get(target, {}).get(completion)


def teacher(nums, target, rng, slip=0.0):
    """A demonstration: a solution drawn uniformly, then one of its derivations; with
    probability slip the final "#### N" is off by one."""
    sols = solutions(nums, target)
    derivation = rng.choice(sols[rng.choice(list(sols))])
    if rng.random() < slip:
        body, answer = derivation.rsplit(" #### ", 1)
        off = int(answer) + (1 if int(answer) == 1 else rng.choice((-1, 1)))  # stays positive
        derivation = f"{body} #### {off}"
    return derivation


def toy_countdown_problem(rng, numbers=NUMBERS, hi=HI, target_max=TARGET_MAX):
    """(nums, target): `numbers` numbers from 1 to hi, and where random steps over them end, drawn
    again until that is at most target_max (so every problem has a solution)."""
    while True:
        nums = [rng.randint(1, hi) for _ in range(numbers)]
        pool = list(nums)
        while len(pool) > 1:
            a, b = pool.pop(rng.randrange(len(pool))), pool.pop(rng.randrange(len(pool)))
            c = None
            while c is None:
                c = combine(a, rng.choice("+-*/"), b)  # + and * always combine
            pool.append(c)
        if pool[0] <= target_max:
            return nums, pool[0]


def question(nums, target):
    return " ".join(map(str, nums)) + f":{target}"


def problem_key(problem):
    _, (nums, target) = problem
    return tuple(sorted(nums)), target


class ToyCountdownTask:
    """Endless training problems from rng, and n_eval fixed held-out ones (the same for every
    --seed); no training problem has the numbers and target of a held-out one."""
    MAX_EVAL = 300  # of the 853 distinct problems at the default sizes (sets of numbers and a target)

    def __init__(self, n_eval, format_score=0.0, numbers=NUMBERS, hi=HI, target_max=TARGET_MAX):
        for bad, message in [(n_eval > self.MAX_EVAL, f"--eval_prompts {n_eval}: the toy countdown task holds out "
                                                      f"at most {self.MAX_EVAL}"),
                             (not 2 <= numbers <= MAX_NUMBERS, f"--countdown_numbers {numbers}: the toy takes 2 to "
                                                               f"{MAX_NUMBERS} (its solutions are enumerated)"),
                             (target_max > MAX_TARGET, f"--countdown_target_max {target_max}: the toy's targets "
                                                       f"are at most {MAX_TARGET}")]:
            if bad:
                raise ValueError(message)
        self.sizes = numbers, hi, target_max
        self.longest = question([hi] * numbers, target_max)
        self.reward = functools.partial(toy_countdown_reward, format_score=format_score)
        eval_rng, self.eval_set, self.held_out = random.Random(EVAL_SEED), [], set()
        for _ in range(100 * n_eval):  # draws; each new problem is held out
            if len(self.eval_set) == n_eval:
                break
            nums, target = toy_countdown_problem(eval_rng, *self.sizes)
            p = (question(nums, target), (nums, target))
            if problem_key(p) not in self.held_out:
                self.eval_set.append(p)
                self.held_out.add(problem_key(p))
        if len(self.eval_set) < n_eval:
            raise ValueError(f"--eval_prompts {n_eval}: toy countdown with {numbers} numbers from 1 to {hi} and "
                             f"targets up to {target_max} drew only {len(self.eval_set)} distinct problems; hold out "
                             f"fewer, or widen the sizes")
        self.describe = (f"toy countdown ({numbers} numbers from 1 to {hi}, targets up to {target_max}), "
                         f"{n_eval} held-out problems")

    def train_problem(self, rng):
        while True:
            nums, target = toy_countdown_problem(rng, *self.sizes)
            p = (question(nums, target), (nums, target))
            if problem_key(p) not in self.held_out:
                return p

    @staticmethod
    def demonstration(problem, rng, slip):
        return teacher(*problem[1], rng, slip)

    @staticmethod
    def derivations(problem):
        """Every correct completion, solution by solution (the exact metrics, tasks/paths.py)."""
        return [d for ds in solutions(*problem[1]).values() for d in ds]

    @staticmethod
    def solutions(problem):
        """(the canonical text of each solution, the solution index of each of derivations(problem))."""
        found = solutions(*problem[1])
        return list(found), [i for i, ds in enumerate(found.values()) for _ in ds]


def toy_countdown_tokenizer():
    """One token per character of the task's text (digits, + - * / = , space # : newline),
    plus <pad>, <eos> and <unk>; ids by frequency in problems of fixed sizes (4 numbers from 1 to 5,
    targets up to 50), so that every size shares one tokenizer."""
    rng, text = random.Random(0), []
    for _ in range(200):
        nums, target = toy_countdown_problem(rng, 4, 5, 50)
        text.append(question(nums, target) + "\n" + teacher(nums, target, rng))
    text.append("+-*/=,#: \n0123456789")  # every character, whatever the draws
    return char_tokenizer(text)

"""
The built-in toy task, "sums": the problems train.py learns on by default, its demonstrations,
and the tokenizer and model size it is learned with. Its reward is reward.sums_reward.

Toy task: add 4 or 5 one-digit numbers, one step at a time, in any order. Every order is a valid
solution path, so a problem has up to 4! = 24 or 5! = 120 correct completions, all ending in
"#### N":

    prompt      "3+5+2+7\n"
    completion  "5+2=7,7+3=10,10+7=17 #### 17"   (or "3+5=8,8+2=10,10+7=17 #### 17", ...)

Why one-digit numbers: with two-digit ones, the 0.8M-parameter model needs about twice the SFT
steps before its errors become ones that reward can fix (after 600 steps it still garbles the
numbers it copies and is right partly by luck, and RL at any learning rate did not lift it);
one-digit sums reach that point in 600 steps, a few minutes on a laptop CPU.

SFT demonstrations draw the order uniformly, so the starting policy spreads over the paths;
reward-maximising RL is free to collapse onto one of them, distribution matching should not.
A fraction of the demonstrations (train.py --sft_slip) come from a careless teacher whose final
"#### N" is off by one: imitation learns to make that slip too, and only the reward can tell the
policy that it is wrong. This is what leaves RL a clear job after a few minutes of SFT.
Evaluation problems are a fixed set (the same for every --seed) and no training problem adds the
same numbers as one of them.
"""
import itertools
import random

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from reward import sums_reward

PAD, EOS = "<pad>", "<eos>"
EVAL_SEED = 1234  # the held-out problems do not move with --seed, so runs compare on the same set
TERMS, LO, HI = (4, 5), 1, 9  # 4 or 5 numbers from 1 to 9
# the model train.py trains on this task: 4 layers of width 128, about 0.8M parameters with the
# character vocabulary of train_toy_tokenizer
TOY_MODEL = dict(n_embd=128, n_layer=4, n_head=4, n_kv_head=2, intermediate_size=384, max_seq_len=128)


def toy_problem(rng):
    """A random problem: (question, gold answer), e.g. ("3+5+2+7", "17")."""
    nums = [rng.randint(LO, HI) for _ in range(rng.choice(TERMS))]
    return "+".join(map(str, nums)), str(sum(nums))


def toy_solution(question, rng, slip=0.0):
    """A completion adding the numbers in an order drawn uniformly. With probability `slip` the
    teacher is careless: the "#### N" line is off by one from the sum just computed."""
    nums = [int(n) for n in question.split("+")]
    rng.shuffle(nums)
    slip_by = rng.choice((-1, 1)) if rng.random() < slip else 0  # sums are at least 4: stays positive
    return toy_derivation(nums, slip_by)


def toy_derivation(nums, slip_by=0):
    """The completion that adds nums in the given order, e.g. [5, 2, 3, 7] ->
    "5+2=7,7+3=10,10+7=17 #### 17"; slip_by shifts the final answer (0: correct)."""
    total, steps = nums[0], []
    for n in nums[1:]:
        steps.append(f"{total}+{n}={total + n}")
        total += n
    return ",".join(steps) + f" #### {total + slip_by}"


def toy_derivations(question):
    """Every correct completion of a question, one per distinct order of its numbers, sorted.
    Each number is written out in the text, so distinct orders give distinct texts: "1+1+2+2"
    has 4!/(2! 2!) = 6, a question of 5 different numbers 5! = 120."""
    nums = [int(n) for n in question.split("+")]
    return sorted({toy_derivation(list(order)) for order in itertools.permutations(nums)})


def toy_key(question):
    return tuple(sorted(question.split("+")))  # the same numbers in any order are the same problem


class ToyTask:
    """Endless training problems from rng, and n_eval fixed held-out ones."""
    reward = staticmethod(sums_reward)  # (completion, gold) -> 1.0 or 0.0
    LONGEST = "+".join(["9"] * max(TERMS))  # the longest question
    MAX_EVAL = 500  # of the 1,782 distinct problems (sets of numbers), most stay for training

    def __init__(self, n_eval):
        if n_eval > self.MAX_EVAL:
            raise ValueError(f"--eval_prompts {n_eval}: the toy task holds out at most {self.MAX_EVAL}")
        eval_rng = random.Random(EVAL_SEED)
        self.eval_set = []
        while len(self.eval_set) < n_eval:
            p = toy_problem(eval_rng)
            if toy_key(p[0]) not in {toy_key(q) for q, _ in self.eval_set}:
                self.eval_set.append(p)
        self.held_out = {toy_key(q) for q, _ in self.eval_set}
        self.describe = f"toy task (sums), {n_eval} held-out problems"

    def train_problem(self, rng):
        while True:
            p = toy_problem(rng)
            if toy_key(p[0]) not in self.held_out:
                return p

    @staticmethod
    def demonstration(problem, rng, slip):  # an SFT completion of (question, gold)
        return toy_solution(problem[0], rng, slip)

    @staticmethod
    def derivations(problem):  # every correct completion (the exact metrics, tasks/paths.py)
        return toy_derivations(problem[0])


def train_toy_tokenizer(seed=0):
    """A character-level tokenizer, trained by `tokenizers` on toy-task text: one token per
    character (digits, '+', '=', ',', ' ', '#', newline), plus <pad> (id 0), <eos> (id 1) and
    <unk> (id 2)."""
    rng = random.Random(seed)
    text = []
    for _ in range(200):
        q, _ = toy_problem(rng)
        text.append(q + "\n" + toy_solution(q, rng))
    return char_tokenizer(text)


def char_tokenizer(text):
    """A tokenizer trained by `tokenizers` on a list of strings, one token per character, ids
    ordered by frequency after <pad> (0), <eos> (1) and <unk> (2)."""
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r".|\n"), "isolated")  # every character alone
    tok.decoder = decoders.Fuse()  # decode by concatenation, no spaces between tokens
    tok.train_from_iterator(text, trainers.WordLevelTrainer(special_tokens=[PAD, EOS, "<unk>"]))
    return tok

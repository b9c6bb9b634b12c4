"""The toy Countdown task (tasks/countdown_toy.py): derivations and solutions counted by hand, the
grouping of derivations into solutions, the reward (exactly the enumerated derivations earn 1),
the teacher's distribution against its sampling frequencies, the problems, and a run from scratch."""
import json
import math
import os
import random
from collections import Counter

import pytest

import train
from conftest import TINY
from tasks.countdown import parse
from tasks.countdown_toy import (MAX_TARGET, TARGET_MAX, ToyCountdownTask, solution_of, solutions, teacher,
                                 toy_countdown_problem, toy_countdown_reward, toy_countdown_tokenizer)


def test_two_numbers_by_hand():
    # 1 and 2 make 3 only by 1+2, written in two orders; 2 and 2 make 4 by 2+2 or 2*2 (each
    # written one way: the two 2s look alike), 1 by 2/2 (2-2 = 0 is not positive); 7 not at all
    assert solutions([1, 2], 3) == {"1+2": ["1+2=3 #### 3", "2+1=3 #### 3"]}
    assert solutions([2, 2], 4) == {"2*2": ["2*2=4 #### 4"], "2+2": ["2+2=4 #### 4"]}
    assert solutions([2, 2], 1) == {"2/2": ["2/2=1 #### 1"]}
    assert solutions([2, 2], 7) == {}


def test_three_numbers_by_hand():
    # 1, 2, 3 -> 6. The last step is x op y, x made from two numbers, y the third:
    #   sums: (1+2)+3: "1+2=3"/"2+1=3", then "3+3=6" (one text: the 3s look alike)    2
    #         (1+3)+2: 2 orders x 2 orders                                           4
    #         (2+3)+1: 2 x 2                                                         4
    #     all flatten to 1+2+3: one solution, 10 derivations
    #   products: (1*2)*3, (1*3)*2, (2*3)*1, 2 x 2 orders each: 1*2*3, 12 derivations
    #   (2*3)/1: "2*3=6"/"3*2=6", then "6/1=6"                                       2
    #   (2/1)*3: "2/1=2", then "2*3=6"/"3*2=6"                                       2
    #   (3/1)*2: "3/1=3", then 2 orders                                              2
    # nothing else reaches 6 (differences reach at most 5, 3/1 times 2 is counted, 12/2
    # and 18/3 need a 12 or an 18): 5 solutions, 10 + 12 + 2 + 2 + 2 = 28 derivations
    found = solutions([1, 2, 3], 6)
    assert {s: len(d) for s, d in found.items()} == {
        "(2*3)/1": 2, "(2/1)*3": 2, "(3/1)*2": 2, "1*2*3": 12, "1+2+3": 10}
    assert found["1+2+3"] == sorted(["1+2=3,3+3=6 #### 6", "2+1=3,3+3=6 #### 6", "1+3=4,4+2=6 #### 6",
                                     "1+3=4,2+4=6 #### 6", "3+1=4,4+2=6 #### 6", "3+1=4,2+4=6 #### 6",
                                     "2+3=5,5+1=6 #### 6", "2+3=5,1+5=6 #### 6", "3+2=5,5+1=6 #### 6",
                                     "3+2=5,1+5=6 #### 6"])
    assert solutions([3, 2, 1], 6) == found  # the order the numbers are given in does not matter


@pytest.mark.parametrize("nums, target, same, different", [
    # 3*5+7: the product's operands in either order, the sum's too: one solution
    ([3, 5, 7, 2], 44, ["3*5=15,15+7=22,22*2=44 #### 44", "5*3=15,7+15=22,2*22=44 #### 44"], []),
    # sums flatten: (1+2)+4+5 is 1+2+4+5 whichever pair is added first
    ([1, 2, 4, 5], 12, ["1+2=3,3+4=7,7+5=12 #### 12", "4+5=9,2+9=11,11+1=12 #### 12", "5+1=6,2+4=6,6+6=12 #### 12"],
     ["1*2=2,2+4=6,6+5=11 #### 11"]),
    # independent steps in either order: (1+2)*(4+5)
    ([1, 2, 4, 5], 27, ["1+2=3,4+5=9,3*9=27 #### 27", "4+5=9,1+2=3,9*3=27 #### 27"], []),
    # subtraction kept as written: ((2*3)+4)-1 and ((2*3)-1)+4 are two solutions
    ([2, 3, 4, 1], 9, ["2*3=6,6+4=10,10-1=9 #### 9"], ["2*3=6,6-1=5,5+4=9 #### 9"]),
    # division too: (8/2)*3 and (3*8)/2, and (9-3)*4 against 9*4-3*4
    ([8, 2, 3, 1], 12, ["8/2=4,4*3=12,12*1=12 #### 12"], ["8*3=24,24/2=12,12*1=12 #### 12"]),
    ([9, 3, 4, 4], 24, ["9*4=36,3*4=12,36-12=24 #### 24", "4*3=12,4*9=36,36-12=24 #### 24"],
     ["9-3=6,6*4=24,24*4=96 #### 96"]),
])
def test_derivations_group_into_solutions(nums, target, same, different):
    first = solution_of(same[0], nums, target)
    assert first is not None and all(solution_of(c, nums, target) == first for c in same)
    for c in different:
        assert solution_of(c, nums, target) != first


def test_a_derivation_that_reads_two_ways_belongs_to_one_solution():
    # after 2+2=4 the numbers left are 4 (made), 4 (given) and 3: "4-3=1" may take either 4, so
    # the derivation is ((2+2)-3)*4 or (4-3)*(2+2); it counts once, as the smaller text
    c = "2+2=4,4-3=1,4*1=4 #### 4"
    assert solution_of(c, [2, 2, 4, 3], 4) == "((2+2)-3)*4" < "(2+2)*(4-3)"
    assert sum(c in ds for ds in solutions([2, 2, 4, 3], 4).values()) == 1


def test_every_solution_is_an_expression_of_the_numbers_equal_to_the_target():
    # checked with the Countdown parser (fractions, each number once), another code path
    rng = random.Random(0)
    for _ in range(30):
        nums, target = toy_countdown_problem(rng)
        found = solutions(nums, target)
        assert found, (nums, target)  # the generator only makes reachable problems
        for s, ds in found.items():
            value, used = parse(s)
            assert value == target and sorted(used) == sorted(nums), s
        every = [d for ds in found.values() for d in ds]
        assert len(every) == len(set(every))  # each derivation in one solution


def test_the_reward_pays_exactly_the_enumerated_derivations():
    # for a problem's numbers, every derivation that ends anywhere (any target) is well formed;
    # it earns 1 exactly when it is one of the target's derivations, format_score otherwise
    rng = random.Random(1)
    for _ in range(5):
        nums, target = toy_countdown_problem(rng)
        mine = {d for ds in solutions(nums, target).values() for d in ds}
        others = {d.replace(f" #### {t}", f" #### {target}") for t in range(1, MAX_TARGET + 1) if t != target
                  for ds in solutions(nums, t).values() for d in ds}
        assert mine and others and not mine & others
        assert all(toy_countdown_reward(d, (nums, target)) == 1.0 for d in mine)
        assert all(toy_countdown_reward(d, (nums, target), format_score=0.1) == 0.1 for d in others)


@pytest.mark.parametrize("completion, why", [
    ("6*4=24,24-3=21,21+2=23 #### 22", "the answer is not the last result"),
    ("6*4=24,24-3=21,21+2=23 #### 23 ", "text after the answer"),
    ("6*4=24,24-3=21,21+2=23  #### 23", "two spaces before ####"),
    ("6*4=24,24-3=21,21+2=23 ####23", "no space after ####"),
    ("6*4=24,24-3=21,21+2=23", "no answer"),
    ("6*4=24,24-3=21,21+2=24 #### 24", "a wrong step"),
    ("6*4=24,24-3=21 #### 21", "a number left unused"),
    ("6*4=24,24-3=21,21+3=24 #### 24", "a number used twice"),
    ("6*4=24,24-5=19,19+4=23 #### 23", "a number not given"),
    ("06*4=24,24-3=21,21+2=23 #### 23", "a leading zero"),
    ("6*4=24, 24-3=21,21+2=23 #### 23", "a space between steps"),
    ("3-6=-3 #### -3", "a negative result"),
    ("", "nothing"),
    ("#### 23", "no steps"),
])
def test_the_reward_refuses(completion, why):
    assert toy_countdown_reward(completion, ([6, 4, 3, 2], 23)) == 0.0, why


def test_the_game_rules():
    # results stay positive integers: 3-3 = 0, 2-3 and 3/2 are not steps
    assert toy_countdown_reward("3-3=0,0+4=4 #### 4", ([3, 3, 4], 4)) == 0.0
    assert toy_countdown_reward("7/2=3,3+1=4 #### 4", ([7, 2, 1], 4)) == 0.0
    assert toy_countdown_reward("8/2=4,4+1=5 #### 5", ([8, 2, 1], 5)) == 1.0
    assert toy_countdown_reward("6*4=24,24-3=21,21+2=23 #### 23", ([6, 4, 3, 2], 23)) == 1.0
    # well formed but wrong: format_score; malformed: 0 even with format_score
    assert toy_countdown_reward("6*4=24,24-3=21,21+2=23 #### 23", ([6, 4, 3, 2], 22), format_score=0.1) == 0.1
    assert toy_countdown_reward("6*4=24 then done", ([6, 4, 3, 2], 23), format_score=0.1) == 0.0


def test_the_reward_never_raises_and_refuses_long_text_unread():
    rng = random.Random(2)
    alphabet = "0123456789+-*/=, #:\n"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert toy_countdown_reward(text, ([6, 4, 3, 2], 23)) in (0.0, 1.0)
    assert toy_countdown_reward("1+1=2," * 200_000 + "2+2=4 #### 4", ([1, 1, 2], 4)) == 0.0


def test_the_teacher_is_uniform_over_solutions_then_derivations():
    # 1, 2, 3 -> 6 has 5 solutions (test_three_numbers_by_hand): each drawn with probability
    # 1/5; within 1+2+3 each of its 10 derivations with 1/5 * 1/10 = 1/50. With n = 20,000
    # draws a frequency's standard error is sqrt(p (1 - p) / n): 0.0028 for 1/5, 0.0010 for
    # 1/50; each must lie within 4 of them
    rng, n = random.Random(3), 20_000
    draws = [teacher([1, 2, 3], 6, rng) for _ in range(n)]
    by_solution = Counter(solution_of(d, [1, 2, 3], 6) for d in draws)
    assert set(by_solution) == set(solutions([1, 2, 3], 6))
    for count in by_solution.values():
        assert abs(count / n - 1 / 5) < 4 * math.sqrt(0.2 * 0.8 / n)
    by_derivation = Counter(draws)
    for d in solutions([1, 2, 3], 6)["1+2+3"]:
        assert abs(by_derivation[d] / n - 1 / 50) < 4 * math.sqrt(0.02 * 0.98 / n)


def test_the_teachers_slips():
    # with slip 0.25 a quarter of the demonstrations end one off the target: reward 0; slip 0.0 never
    rng, n = random.Random(4), 4000
    slipped = sum(toy_countdown_reward(teacher([6, 4, 3, 2], 23, rng, 0.25), ([6, 4, 3, 2], 23)) == 0.0
                  for _ in range(n))
    assert abs(slipped / n - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n)
    assert all(toy_countdown_reward(teacher([6, 4, 3, 2], 23, rng), ([6, 4, 3, 2], 23)) == 1.0 for _ in range(200))
    assert teacher([1, 1], 1, random.Random(0), slip=1.0).endswith(" #### 2")  # 1 - 1 would be no target


def test_problems_and_the_held_out_set():
    task = ToyCountdownTask(128)
    assert task.eval_set == ToyCountdownTask(128).eval_set  # the same for every run
    keys = {(tuple(sorted(nums)), t) for _, (nums, t) in task.eval_set}
    assert len(keys) == 128
    rng = random.Random(5)
    for _ in range(2000):
        q, (nums, t) = task.train_problem(rng)
        assert (tuple(sorted(nums)), t) not in keys and 1 <= t <= TARGET_MAX and solutions(nums, t)
        assert q == " ".join(map(str, nums)) + f":{t}"
    # most held-out problems have several distinct solutions (the point of the task)
    counts = [len(solutions(nums, t)) for _, (nums, t) in task.eval_set]
    assert sum(c >= 3 for c in counts) / len(counts) > 0.6
    with pytest.raises(ValueError, match="holds out at most 300"):
        ToyCountdownTask(301)


def test_other_sizes():
    # three numbers from 1 to 9, targets up to 20: every problem, held out or not, has these sizes
    task, rng = ToyCountdownTask(50, numbers=3, hi=9, target_max=20), random.Random(7)
    for _, (nums, t) in task.eval_set + [task.train_problem(rng) for _ in range(300)]:
        assert len(nums) == 3 and all(1 <= n <= 9 for n in nums) and 1 <= t <= 20 and solutions(nums, t)
    assert task.longest == "9 9 9:20" and "3 numbers from 1 to 9, targets up to 20" in task.describe
    # two numbers from 1 to 2 make 7 distinct problems: 1 and 1 reach 1 (1*1, 1/1) and 2; 1 and 2
    # reach 1, 2 and 3; 2 and 2 reach 1 and 4 (1 - 1 = 0 and 1 - 2 are not positive). 8 cannot be held out
    assert len(ToyCountdownTask(7, numbers=2, hi=2, target_max=4).eval_set) == 7
    with pytest.raises(ValueError, match="drew only 7 distinct problems"):
        ToyCountdownTask(8, numbers=2, hi=2, target_max=4)
    with pytest.raises(ValueError, match="the toy takes 2 to 4"):
        ToyCountdownTask(8, numbers=5)
    with pytest.raises(ValueError, match="targets are at most 99"):
        ToyCountdownTask(8, target_max=100)


def test_the_tokenizer_reads_every_demonstration():
    tok, rng = toy_countdown_tokenizer(), random.Random(6)
    unk = tok.token_to_id("<unk>")
    for sizes in [(), (4, 9, 99), (2, 30, 60)]:  # one tokenizer for every size
        for _ in range(100):
            nums, t = toy_countdown_problem(rng, *sizes)
            text = " ".join(map(str, nums)) + f":{t}\n" + teacher(nums, t, rng, 0.25)
            ids = tok.encode(text).ids
            assert unk not in ids and tok.decode(ids) == text


def test_a_run_from_scratch_trains_and_resumes(tmp_path, capsys):
    out = str(tmp_path / "run")
    train.main(["--out_dir", out, "--task", "countdown", *TINY])
    assert "toy countdown (3 numbers from 1 to 9, targets up to 10), 3 held-out problems" in capsys.readouterr().out
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert ":" in rows[-2]["sample"].split(" -> ")[0]  # a countdown prompt "n n n n:t"
    train.main(["--out_dir", out, "--resume", "--rl_steps", "5"])
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", out, "--resume", "--countdown_format", "answer"])
    assert "--resume: --countdown_format answer differs from the saved run's derivation" in str(e.value.code)
    with pytest.raises(SystemExit) as e:  # the sizes are saved resolved
        train.main(["--out_dir", out, "--resume", "--countdown_target_max", "50"])
    assert "--resume: --countdown_target_max 50 differs from the saved run's 10" in str(e.value.code)

"""tasks/countdown.py: the reward by a table worked out by hand, reachability counted by hand, the
generator's problems solvable and apart from the held-out ones, and a JSONL file's bad lines."""
import random

import pytest

from tasks.countdown import CountdownTask, countdown_problem, countdown_reward, reachable, read_countdown

GOLD = ([3, 5, 7, 11], 38)  # the first four answers below miss it: each number must be used once

CASES = [  # (completion, gold, reward, why)
    ("<answer>(11 - 7) * 5 + 3 * 6</answer>", GOLD, 0.0, "6 is not given (and 7 is used, 11 once): wrong numbers"),
    ("<answer>3 * 11 + 5</answer>", GOLD, 0.0, "38, but 7 unused"),
    ("<answer>3 * 11 + 5 * (7 - 7 + 1)</answer>", GOLD, 0.0, "7 used twice"),
    ("<answer>(7 - 5) * 11 + 3 * 5</answer>", GOLD, 0.0, "2 * 11 + 15 = 37, and 5 twice"),
    ("<answer>11 * 3 + 7 - 5 + 3</answer>", ([3, 3, 5, 7, 11], 38), 1.0, "33 + 7 - 5 + 3 = 38, each once"),
    ("<answer>(11 + 7) * 3 - 5 * 3</answer>", ([3, 3, 5, 7, 11], 39), 1.0, "54 - 15 = 39"),
    ("I think <answer>3 + 5</answer>. No: <answer>3 * 5</answer>", ([3, 5], 15), 1.0, "the last answer counts"),
    ("<answer>3 * 5</answer> then <answer>3 + 5</answer>", ([3, 5], 15), 0.0, "the last answer counts"),
    ("<answer> 3*5 = 15 </answer>", ([3, 5], 15), 1.0, "a trailing '= target' is read"),
    ("<answer>3*5 = 16</answer>", ([3, 5], 15), 0.0, "'=' a value the left side is not: malformed"),
    ("<answer>7 / 2 * 2</answer>", ([7, 2, 2], 7), 1.0, "exact: 7/2 * 2 = 7, not 6 as in integer division"),
    ("<answer>(7 - 7) / 2</answer>", ([7, 7, 2], 0), 1.0, "0 / 2 = 0"),
    ("<answer>2 / (7 - 7)</answer>", ([7, 7, 2], 0), 0.0, "division by zero: malformed"),
    ("<answer>-3 + 8</answer>", ([3, 8], 5), 0.0, "unary minus: malformed"),
    ("<answer>8 - 3</answer>", ([3, 8], 5), 1.0, ""),
    ("<answer>8 - 3", ([3, 8], 5), 0.0, "no closing tag: no answer"),
    ("<answer>8 - 3</answer> or <answer>8 + 3", ([3, 8], 5), 0.0, "the last answer is not closed: no answer"),
    ("8 - 3 = 5", ([3, 8], 5), 0.0, "no answer tags"),
    ("<answer>(8 - 3</answer>", ([3, 8], 5), 0.0, "an unclosed parenthesis"),
    ("<answer>8 x 3</answer>", ([3, 8], 24), 0.0, "x is not an operator here"),
    ("<answer>83</answer>", ([3, 8], 83), 0.0, "digits glued: the number 83 is not given"),
    ("<answer></answer>", ([3, 8], 5), 0.0, "empty"),
]


@pytest.mark.parametrize("completion, gold, reward, why", CASES)
def test_reward(completion, gold, reward, why):
    assert countdown_reward(completion, gold) == reward, why


def test_format_score_goes_to_well_formed_wrong_answers_only():
    # TinyZero's option: 0.1 for an expression that parses but is wrong (value or numbers)
    gold = ([3, 8], 5)
    assert countdown_reward("<answer>8 + 3</answer>", gold, format_score=0.1) == 0.1  # wrong value
    assert countdown_reward("<answer>8 - 3 - 3</answer>", gold, format_score=0.1) == 0.1  # 3 twice
    assert countdown_reward("<answer>8 - 3</answer>", gold, format_score=0.1) == 1.0
    assert countdown_reward("<answer>8 -</answer>", gold, format_score=0.1) == 0.0  # malformed
    assert countdown_reward("no answer", gold, format_score=0.1) == 0.0


def test_pathological_answers_get_a_reward():
    assert countdown_reward("<answer>" + "(" * 100_000 + "1" + ")" * 100_000 + "</answer>", ([1], 1)) == 0.0
    assert countdown_reward("<answer>" + "1+" * 400 + "1</answer>", ([1] * 401, 401)) == 1.0  # 801 characters
    assert countdown_reward("<answer>" + "1+" * 600 + "1</answer>", ([1] * 601, 601)) == 0.0  # past MAX_CHARS
    assert countdown_reward("<answer>" * 200_000, ([1], 1)) == 0.0


def test_reachable_by_hand():
    # from 3 and 5: 8, -2, 2, 15, 3/5, 5/3
    assert all(reachable([3, 5], t) for t in (8, 2, -2, 15))
    assert not any(reachable([3, 5], t) for t in (16, 1, 0, 7))
    # from 1, 2, 3: 6 = 1 + 2 + 3 = 1 * 2 * 3; 9 = (1 + 2) * 3; 7 = 1 + 2 * 3; 10 is not reachable:
    # the largest value is (1 + 2) * 3 = 9
    assert all(reachable([1, 2, 3], t) for t in (6, 9, 7, 0, 5))
    assert not reachable([1, 2, 3], 10)


def test_generated_problems_are_solvable_and_held_out_ones_never_train():
    rng = random.Random(0)
    for _ in range(50):
        nums, target = countdown_problem(rng, 4, 20, 50)
        assert len(nums) == 4 and all(1 <= x <= 20 for x in nums) and 0 < target <= 50
        assert reachable(nums, target)
    task = CountdownTask(n_eval=20, n_numbers=3, max_number=9, max_target=30)
    assert len(task.eval_set) == 20 and task.eval_set == CountdownTask(20, n_numbers=3, max_number=9,
                                                                          max_target=30).eval_set  # fixed
    held = {(tuple(sorted(n)), t) for _, (n, t) in task.eval_set}
    rng = random.Random(1)
    for _ in range(300):
        q, (nums, target) = task.train_problem(rng)
        assert (tuple(sorted(nums)), target) not in held and q.startswith(f"Numbers: {', '.join(map(str, nums))}. ")


@pytest.mark.parametrize("line, message", [
    ('{"nums": [3, 5], "target": 16}', "line 2: no expression of [3, 5] reaches the target 16"),
    ('{"nums": [3, 5.5], "target": 8}', "line 2: 'nums' must be a list of 2 to 5 positive integers"),
    ('{"nums": [3], "target": 3}', "line 2: 'nums' must be a list of 2 to 5 positive integers"),
    ('{"nums": [3, 5], "target": "8"}', "line 2: 'target' must be an integer"),
    ('{"nums": [3, 5]', "line 2: invalid JSON"),
    ('[3, 5]', "line 2: 'nums' must be a list of 2 to 5 positive integers"),
])
def test_bad_countdown_lines(tmp_path, line, message):
    path = tmp_path / "cd.jsonl"
    path.write_text('{"nums": [3, 5], "target": 8}\n' + line + "\n")
    with pytest.raises(ValueError, match=r"cd\.jsonl " + message.replace("[", r"\[").replace("]", r"\]")):
        read_countdown(str(path))


def test_a_countdown_file_is_split_and_graded(tmp_path):
    path = tmp_path / "cd.jsonl"
    path.write_text("".join(f'{{"nums": [{a}, {10 + b}], "target": {a + 10 + b}}}\n' for a in range(1, 6) for b in range(1, 3)))
    task = CountdownTask(n_eval=64, path=str(path))
    assert len(task.eval_set) == 2 and len(task.train_set) == 8  # a fifth of 10 held out
    q, (nums, target) = task.eval_set[0]
    assert task.reward(f"<answer>{nums[0]} + {nums[1]}</answer>", (nums, target)) == 1.0

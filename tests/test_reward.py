"""
Tests for reward.py: the toy task's sums_reward by a table, and each task grading with its own
reward (the math grader's tests are in tests/test_grader*.py, the user's reward in test_tasks.py).
"""
import pytest

from reward import math_reward, sums_reward
from tasks.jsonl import FileTask
from tasks.sums import ToyTask, toy_derivation

# (completion, gold, sums_reward): the text after the last "####", spaces around it aside, must be
# the gold sum exactly as the task writes it
SUMS_CASES = [
    ("5+2=7,7+3=10,10+7=17 #### 17", "17", 1.0),   # the task's own format
    ("5+2=7,7+3=10,10+7=17 #### 18", "17", 0.0),   # the slip SFT teaches: off by one
    ("#### 17", "17", 1.0),                        # the derivation is not graded, only the answer
    ("####17", "17", 1.0),                         # no space
    ("#### 17 ", "17", 1.0),                       # trailing space
    ("#### 16 #### 17", "17", 1.0),                # the last "####" counts
    ("#### 17 #### 16", "17", 0.0),
    ("5+2=7,7+3=10,10+7=17", "17", 0.0),           # no "####": no answer
    ("#### ", "17", 0.0),                          # an empty answer
    ("#### 017", "17", 0.0),                       # not as the task writes it
    ("#### 1", "17", 0.0),                         # a prefix of the gold
    ("#### 177", "17", 0.0),                       # the gold as a prefix
    ("#### 17,3+4=7", "17", 0.0),                  # text after the answer
    ("#### 17\n3", "17", 0.0),                     # a line after the answer
    ("#### 17\n", "17", 0.0),                      # a newline, not a space
    ("##### 17", "17", 0.0),                       # five hashes: not the task's format
    ("17 #### 17", "17", 1.0),
    ("", "17", 0.0),
]


@pytest.mark.parametrize("completion, gold, expected", SUMS_CASES)
def test_sums_reward(completion, gold, expected):
    assert sums_reward(completion, gold) == expected


def test_each_task_grades_with_its_own_reward():
    assert ToyTask.reward is sums_reward and FileTask.reward is math_reward
    assert ToyTask(1).reward(toy_derivation([5, 2, 3, 7]), "17") == 1.0

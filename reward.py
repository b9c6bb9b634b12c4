"""
Rewards: the only supervision RL gets. A reward maps a completion and the problem's gold answer
to a number; flowrl.group_normalize then turns each group's rewards into r_hat.

A reward that can be fooled teaches the policy to fool it, so each reward here is strict:

- sums_reward, the toy task's (tasks/sums.py, the default run): 1.0 when the text after the
  completion's last "####" (four, not five), spaces around it aside, is the gold sum as the task
  writes it ("5+2=7,7+3=10 #### 10" for gold "10"), else 0.0: nothing may follow the answer.
- math_reward, free-form math answers (GSM8K's "#### 72", MATH's \\boxed{...}), graded as a careful
  human grader grades: the reward of a --data run. Its rules, and what it refuses, are in
  tasks/grader.py, which holds it; tasks/mathcompare.py and tasks/mathexpr.py compare values.
"""
from tasks.grader import math_reward  # noqa: F401  (the reward of --data runs, used from here)


def sums_reward(completion, gold):
    """1.0 if the completion ends in "#### <gold>", else 0.0 (module docstring)."""
    before, hashes, answer = completion.rpartition("####")
    return 1.0 if hashes and not before.endswith("#") and answer.strip(" ") == gold else 0.0

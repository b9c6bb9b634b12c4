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
- countdown_reward (tasks/countdown.py): 1.0 for an expression in <answer>...</answer> that uses
  each given number once and equals the target.

Any function reward(completion, gold) -> number of a user's own file replaces the task's reward
with `--reward FILE.py:FUNCTION` (load_reward); rewards_of calls a reward on each response and
turns what it must not do (raise, return something other than a finite number) into one error
naming the function and the response.
"""
import importlib.util
import math
import numbers
import os

from tasks.grader import math_reward  # noqa: F401  (the reward of --task math, used from here)


def sums_reward(completion, gold):
    """1.0 if the completion ends in "#### <gold>", else 0.0 (module docstring)."""
    before, hashes, answer = completion.rpartition("####")
    return 1.0 if hashes and not before.endswith("#") and answer.strip(" ") == gold else 0.0


def load_reward(spec):
    """The function FUNCTION of the file FILE.py, from spec = "FILE.py:FUNCTION" (--reward)."""
    path, _, name = spec.rpartition(":")
    if not path.endswith(".py") or not name.isidentifier():
        raise ValueError(f"--reward {spec}: expected FILE.py:FUNCTION")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--reward {spec}: {path} not found")
    module_spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:  # the user's file, whatever it raises
        raise ValueError(f"--reward {spec}: {path} failed to load ({type(e).__name__}: {e})") from None
    if not callable(getattr(module, name, None)):
        raise ValueError(f"--reward {spec}: {path} defines no function {name!r}")
    return getattr(module, name)


def rewards_of(reward, completions, golds):
    """[float(reward(completion, gold))] over the responses (module docstring)."""
    name, out = getattr(reward, "__name__", "the reward"), []
    for i, (completion, gold) in enumerate(zip(completions, golds)):
        try:
            r = reward(completion, gold)
        except Exception as e:  # a user's reward, whatever it raises
            raise ValueError(f"reward {name} raised {type(e).__name__} on response {i} ({e})") from None
        if not isinstance(r, numbers.Real) or not math.isfinite(r):
            raise ValueError(f"reward {name} returned {r!r} on response {i}: expected a finite number")
        out.append(float(r))
    return out

"""
A user's problems: a JSONL file of {"question": ..., "answer": ...} objects, one per line,
graded by the math-answer grader (tasks/grader.py) through reward.math_reward.
"""
import json
import os
import random

from reward import math_reward
from tasks.sums import EVAL_SEED


class FileTask:
    """Problems from a JSONL file of {"question": ..., "answer": ...} objects, one per line.

    GSM8K's answers (a worked solution ending in "#### N") are fine: math_reward (tasks/grader.py)
    grades against the part after "####". The first n_eval problems of a seed-independent shuffle
    are held out, at most a fifth of the file, and no training problem repeats a held-out
    question; `describe` says how the split was made."""
    reward = staticmethod(math_reward)  # (completion, gold) -> 1.0 or 0.0

    def __init__(self, path, n_eval, too_long=None):
        problems = read_jsonl(path, too_long)
        if len(problems) < 2:
            raise ValueError(f"{path}: needs at least 2 problems (1 to train on, 1 held out), "
                             f"found {len(problems)}")
        random.Random(EVAL_SEED).shuffle(problems)
        asked, n_eval = n_eval, max(1, min(n_eval, len(problems) // 5))
        self.eval_set = problems[:n_eval]
        held_out = {q for q, _ in self.eval_set}
        self.train_set = [p for p in problems[n_eval:] if p[0] not in held_out]
        if not self.train_set:
            raise ValueError(f"{path}: every problem repeats a held-out question: nothing to train on")
        self.describe = (f"data {path}: {len(self.train_set)} problems to train on, {n_eval} held out"
                         + (f" (--eval_prompts {asked} cut to a fifth of the file)" if asked > n_eval else "")
                         + (f", {len(problems) - n_eval - len(self.train_set)} repeats of held-out questions"
                            f" left out of training" if len(problems) - n_eval > len(self.train_set) else ""))

    def train_problem(self, rng):
        return rng.choice(self.train_set)


def read_jsonl(path, too_long=None):
    """[(question, answer)] from a JSONL file; a bad line is an error naming the file and line.
    too_long(question) returns why a question's prompt cannot fit the model, or None."""
    problems = []
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory, expected a JSONL file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: not found")
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            try:  # utf-8-sig on the first line: a byte-order mark there is skipped
                line = raw.decode("utf-8-sig" if i == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path} line {i}: not UTF-8 text (byte {e.start} of the line)") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} line {i}: invalid JSON ({e.msg})") from None
            except RecursionError:
                raise ValueError(f"{path} line {i}: JSON nested too deeply to read") from None
            for field in ("question", "answer"):
                if not isinstance(obj, dict) or not isinstance(obj.get(field), (str, int, float)) \
                        or isinstance(obj.get(field), bool):
                    raise ValueError(f"{path} line {i}: missing field {field!r} (a string)")
                try:
                    str(obj[field]).encode("utf-8")
                except UnicodeEncodeError:  # JSON's "\ud800" escapes decode to a lone surrogate
                    raise ValueError(f"{path} line {i}: field {field!r} holds a lone surrogate escape, "
                                     f"not text") from None
            if not str(obj["answer"]).strip():
                raise ValueError(f"{path} line {i}: field 'answer' is empty: no completion could be rewarded")
            question = str(obj["question"])
            if too_long and too_long(question):
                raise ValueError(f"{path} line {i}: {too_long(question)}")
            problems.append((question, str(obj["answer"])))
    return problems

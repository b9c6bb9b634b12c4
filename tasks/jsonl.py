"""
A user's problems: a JSONL file of {"question": ..., "answer": ...} objects, one per line,
graded by the math-answer grader (tasks/grader.py) through reward.math_reward; and a user's
demonstrations for SFT (--sft_data): {"prompt": ..., "completion": ...} lines.
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

    def __init__(self, path, n_eval, too_long=None, eval_path=None):
        held = read_jsonl(eval_path, too_long) if eval_path else None
        self.eval_set, self.train_set, self.describe = hold_out(path, read_jsonl(path, too_long), n_eval,
                                                                key=lambda p: p[0], eval_path=eval_path, held=held)

    def train_problem(self, rng):
        return rng.choice(self.train_set)


class SftData:
    """Demonstrations from a JSONL file of {"prompt": ..., "completion": ...} lines, drawn
    uniformly; the prompt is a question, built into the model's prompt as the task's questions
    are. too_long(prompt, completion) returns why a pair cannot fit the model, or None."""

    def __init__(self, path, too_long=None):
        self.pairs = []
        for i, obj in json_lines(path):
            for field in ("prompt", "completion"):
                value = obj.get(field) if isinstance(obj, dict) else None
                if not isinstance(value, str) or not value.strip():
                    raise ValueError(f"{path} line {i}: missing field {field!r} (a non-empty string)")
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(f"{path} line {i}: field {field!r} holds a lone surrogate escape, not text") from None
            why = too_long(obj["prompt"], obj["completion"]) if too_long else None
            if why:
                raise ValueError(f"{path} line {i}: {why}")
            self.pairs.append((obj["prompt"], obj["completion"]))
        if not self.pairs:
            raise ValueError(f"{path}: no prompt / completion lines")
        self.describe = f"SFT on {len(self.pairs)} demonstrations from {path}"

    def train_problem(self, rng):
        return rng.choice(self.pairs)

    @staticmethod
    def demonstration(pair, rng, slip):  # the file's own completion: --sft_slip is for the built-in teachers
        return pair[1]


def hold_out(path, problems, n_eval, key, eval_path=None, held=None):
    """(eval_set, train_set, describe) of a file's problems: the first n_eval of a seed-independent
    shuffle held out, at most a fifth of them, or (eval_path) the first n_eval problems of that
    file's, held; no training problem has the key of a held-out one (key(problem): its question,
    say); describe says how the split was made."""
    if eval_path:
        if not held:
            raise ValueError(f"{eval_path}: no problems to hold out")
        held = held[:n_eval]
        keys = {key(p) for p in held}
        train = [p for p in problems if key(p) not in keys]
        if not train:
            raise ValueError(f"{path}: every problem repeats one of {eval_path}'s: nothing to train on")
        repeats = len(problems) - len(train)
        return held, train, (f"data {path}: {len(train)} problems to train on, {len(held)} held out from {eval_path}"
                             + (f", {repeats} repeats of held-out questions left out of training" if repeats else ""))
    if len(problems) < 2:
        raise ValueError(f"{path}: needs at least 2 problems (1 to train on, 1 held out), found {len(problems)}")
    problems = list(problems)
    random.Random(EVAL_SEED).shuffle(problems)
    asked, n_eval = n_eval, max(1, min(n_eval, len(problems) // 5))
    held = {key(p) for p in problems[:n_eval]}
    train = [p for p in problems[n_eval:] if key(p) not in held]
    if not train:
        raise ValueError(f"{path}: every problem repeats a held-out question: nothing to train on")
    repeats = len(problems) - n_eval - len(train)
    describe = (f"data {path}: {len(train)} problems to train on, {n_eval} held out"
                + (f" (--eval_prompts {asked} cut to a fifth of the file)" if asked > n_eval else "")
                + (f", {repeats} repeats of held-out questions left out of training" if repeats else ""))
    return problems[:n_eval], train, describe


def json_lines(path):
    """(line number, object) of each non-blank line of a JSONL file; a line that is not UTF-8 text
    or not JSON is an error naming the file and the line."""
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
                yield i, json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} line {i}: invalid JSON ({e.msg})") from None
            except RecursionError:
                raise ValueError(f"{path} line {i}: JSON nested too deeply to read") from None


def read_jsonl(path, too_long=None):
    """[(question, answer)] from a JSONL file; a bad line is an error naming the file and line.
    too_long(question) returns why a question's prompt cannot fit the model, or None."""
    problems = []
    for i, obj in json_lines(path):
        for field in ("question", "answer"):
            value = obj.get(field) if isinstance(obj, dict) else None
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError(f"{path} line {i}: missing field {field!r} (a string)")
            try:
                str(value).encode("utf-8")
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

"""
How often reward.math_reward agrees with a careful human grader, beside math_verify, and how
long a call takes.

    python -m benchmarks.grader

TABLE and FRESH (benchmarks/grader_cases.py, with the other tables) hold MATH- and GSM8K-style
completions, each with its gold answer and the verdict a careful human grader gives (1 right, 0
wrong), with the reason. None of them is a test case (tests/test_grader*.py hold those). The
grader's rules (tasks/grader.py) were tuned on TABLE; FRESH is the held-out measure, on which
they were not. ADVERSARIAL holds completions written to draw a false positive, by class (words
after the answer, later lines, a hedge before it, closeness, identities, long inputs), with
right answers of each class beside them. A false positive is a wrong answer given reward 1, the
worst error a reward can make. PATHOLOGICAL_1MB holds 1 MB completions of each slow pattern;
their times are printed last. math_verify (pip install math-verify, a dev-only requirement) is
graded on the same table when it is installed; without it the script says so and grades ours
alone.
"""

import logging
import statistics
import time

from tasks import mathexpr
from reward import math_reward
from benchmarks.grader_cases import ADVERSARIAL, FRESH, PATHOLOGICAL_1MB, TABLE


def agreement(grade, table, rounds=5):
    """(agreed, false positives, false negatives, seconds per call) of grade over a table.

    A call's time is its median over `rounds` calls, each with our caches cleared first: the
    work of one call, without a busy machine's pauses and without a cached gold answer.
    """
    agreed = fp = fn = 0
    times = []
    for completion, gold, verdict, _ in table:
        runs = []
        for _ in range(rounds):
            mathexpr.evaluate.cache_clear()
            t0 = time.perf_counter()
            got = grade(completion, gold)
            runs.append(time.perf_counter() - t0)
        times.append(statistics.median(runs))
        agreed += got == verdict
        fp += got == 1 and verdict == 0
        fn += got == 0 and verdict == 1
    return agreed, fp, fn, times


def math_verify_grade():
    """math_verify's verdict as a function like math_reward, or None if it is not installed."""
    try:
        from math_verify import parse, verify
    except ImportError:
        return None

    def grade(completion, gold):
        try:
            gold_parsed = parse(gold if isinstance(gold, str) and "$" in gold else f"${gold}$")
            return int(bool(verify(gold_parsed, parse(completion))))
        except Exception:
            return 0

    return grade


def report(name, grade, table):
    agreed, fp, fn, times = agreement(grade, table)
    times_ms = sorted(t * 1000 for t in times)
    p99 = times_ms[min(len(times_ms) - 1, int(0.99 * len(times_ms)))]
    print(f"  {name:>11}: {agreed}/{len(table)} agree ({agreed / len(table):.1%}), "
          f"{fp} false positives, {fn} false negatives, "
          f"{statistics.mean(times_ms):.3f} ms mean, {p99:.3f} ms p99 per call")


def report_by_class(grades, table):
    """Agreement per class of ADVERSARIAL, for each grader: the third table of docs/GRADER.md."""
    names = {1: "words after", 2: "later lines", 3: "hedge before", 4: "closeness",
             5: "identities", 6: "long inputs"}
    for k, name in names.items():
        rows = [row[1:] for row in table if row[0] == k]
        right = sum(row[2] for row in rows)
        print(f"  {k} {name}: {len(rows)} ({right} right, {len(rows) - right} wrong)")
        for grader, grade in grades.items():
            agreed, fp, fn, _ = agreement(grade, rows, rounds=1)
            print(f"    {grader:>11}: {agreed}/{len(rows)} agree, {fp} false positives, {fn} false negatives")


def time_1mb():
    """ms per call of math_reward on each 1 MB pathological completion: the best of 3."""
    worst = 0.0
    for name, (make, gold, _) in PATHOLOGICAL_1MB.items():
        completion, gold = make(), gold() if callable(gold) else gold
        runs = []
        for _ in range(3):
            mathexpr.evaluate.cache_clear()
            t0 = time.perf_counter()
            math_reward(completion, gold)
            runs.append(time.perf_counter() - t0)
        worst = max(worst, min(runs))
        print(f"  {name:>26}: {min(runs) * 1000:6.1f} ms")
    print(f"  worst: {worst * 1000:.1f} ms per 1 MB call")


if __name__ == "__main__":
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its timeouts print whole inputs
    mv = math_verify_grade()
    if mv is None:
        print("math_verify: not installed (pip install math-verify), not compared")
    for name, table in (("FRESH (held out)", FRESH), ("TABLE", TABLE), ("both", TABLE + FRESH)):
        right = sum(row[2] for row in table)
        print(f"{name}: {len(table)} hand-graded completions, {right} right, {len(table) - right} wrong")
        for completion, gold, verdict, reason in table:  # the disagreements, to read
            if name != "both" and math_reward(completion, gold) != verdict:
                print(f"    ours disagrees (human {verdict}): {reason}: {completion[-50:]!r}")
        report("reward.py", math_reward, table)
        if mv is not None:
            report("math_verify", mv, table)
    right = sum(row[3] for row in ADVERSARIAL)
    print(f"ADVERSARIAL by class: {len(ADVERSARIAL)} completions, {right} right, "
          f"{len(ADVERSARIAL) - right} wrong")
    graders = {"reward.py": math_reward} if mv is None else {"reward.py": math_reward, "math_verify": mv}
    report_by_class(graders, ADVERSARIAL)
    for name, grade in graders.items():
        report(name, grade, [row[1:] for row in ADVERSARIAL])
    print("1 MB pathological completions (reward.py only):")
    time_1mb()

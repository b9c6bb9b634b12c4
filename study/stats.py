"""
The study's analysis: from {task: {sft j: {config: {seed: run}}}} (study.py's read_run) to the
numbers of results.json's "analysis". Every interval treats the SFT model as the unit: per SFT
model j, a configuration's seeds are averaged first, and a comparison of a and b is the mean of
d_j = (a's seed mean - b's seed mean on SFT model j) with a t interval on J - 1 degrees of
freedom. So the spread between SFT models (each its own pi_ref) is in every interval, and the
seeds of one SFT model are not counted as independent evidence.

Equal accuracy (EQUAL_ACCURACY): accuracy is pass_exact_at_1, the exact probability that a sample
is a correct derivation, averaged over the held-out problems (tasks/paths.py), not a sampled
estimate, so no crossing comes early by chance. On countdown the reward pays exactly these
derivations; on the sums it also pays a right final answer after a wrong step, so sampled
accuracy runs a few points higher there. Per SFT model and configuration, the seeds' curves are averaged
step by step, the accuracy curve is made non-decreasing (pool-adjacent-violators), and a metric
is read where that curve crosses each level.

Tests: the headline pair (flowrl - grpo), and each variant against flowrl. Each pair's tests on
both tasks are one family, Holm-corrected together: the headline's final exact accuracy and
pass@256 and its two spread metrics at equal accuracy on each task (8 tests), a variant's final
exact accuracy and two spread metrics (6).
"""
import functools
import json
import math

ACCURACY = "pass_exact_at_1"  # the accuracy axis: the exact probability of a correct derivation at temperature 1
SPREAD = {"sums": ("paths_effective", "paths_kl_ref"), "countdown": ("solutions_effective", "solutions_kl_ref")}
FINAL = ("accuracy", ACCURACY, "pass_exact_at_256", "greedy_accuracy")  # and SPREAD[task], delta_abs
PASS_KS = tuple(2 ** i for i in range(9))  # 1, 2, 4, ..., 256
LEVELS = 4  # accuracy levels of the equal-accuracy comparison
HEADLINE = ("flowrl", "grpo")
EQUAL_ACCURACY = (
    "Accuracy is pass_exact_at_1: the exact probability that a sample at temperature 1 is a correct derivation, "
    "averaged over the held-out problems; it has no sampling noise, so a run cannot reach a level early by chance. "
    "(Countdown's reward pays exactly these derivations; the sums' reward also pays a right final answer after a "
    "wrong step.) Per SFT model "
    "and configuration the seeds' curves are averaged step by step, and the averaged accuracy is made "
    "non-decreasing by pool-adjacent-violators. Per SFT model and pair, the levels are a_0 + (a_top - a_0) k / "
    f"{LEVELS}, k = 1..{LEVELS}: a_0 the higher of the two fitted starts, a_top the lower of the two fitted ends. A "
    "metric is read where the fitted accuracy crosses a level, linear between the evaluations around it. d_j is "
    "the mean over the levels of a minus b on SFT model j; an SFT model on which a pair gains no accuracy "
    "has no levels and no d_j.")


def mean_std(xs):
    """Mean and sample standard deviation (n - 1; 0 for one value)."""
    m = sum(xs) / len(xs)
    return m, (math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0)


def t_cdf(t, df):
    """P(T <= t) for Student's t with df degrees of freedom. With x = sqrt(df) tan(u) the density's
    integral from 0 to t becomes c sqrt(df) times the integral of cos(u)^(df - 1) from 0 to
    atan(t / sqrt(df)): smooth and bounded for any t, so Simpson's rule with 2,000 intervals is
    exact to about 1e-14 (c is the density's constant)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    end = math.atan(abs(t) / math.sqrt(df))
    n = 2000
    h = end / n
    f = lambda u: math.cos(u) ** (df - 1)  # noqa: E731
    area = c * math.sqrt(df) * h / 3 * (f(0) + f(end) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, n)))
    return min(1.0, max(0.0, 0.5 + math.copysign(area, t)))


@functools.lru_cache(maxsize=None)
def t_quantile(q, df):
    """The t with t_cdf(t, df) = q, by bisection (q in (0.5, 1))."""
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < q else (lo, mid)
    return (lo + hi) / 2


def paired_t(d):
    """The mean of d (one difference per SFT model), its standard error, a 95% t interval and the
    two-sided p on len(d) - 1 degrees of freedom; no interval or p for fewer than 2."""
    if not d:
        return dict(difference=None, per_sft=d, n=0, stderr=None, df=None, ci95=None, p=None)
    m, s = mean_std(d)
    out = dict(difference=m, per_sft=d, n=len(d))
    if len(d) < 2:
        return dict(out, stderr=None, df=None, ci95=None, p=None)
    se, df = s / math.sqrt(len(d)), len(d) - 1
    p = (0.0 if m else 1.0) if se == 0 else min(1.0, 2 * (1 - t_cdf(abs(m) / se, df)))
    half = t_quantile(0.975, df) * se
    return dict(out, stderr=se, df=df, ci95=[m - half, m + half], p=p)


def holm(ps):
    """Holm's step-down adjusted p-values, in the order given; None stays None."""
    order = sorted((p, i) for i, p in enumerate(ps) if p is not None)
    adjusted, running = [None] * len(ps), 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def pava(ys):
    """The non-decreasing sequence nearest ys in least squares (pool adjacent violators)."""
    blocks = []  # [mean, count]
    for y in ys:
        blocks.append([y, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, n2), (m1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    return [m for m, n in blocks for _ in range(n)]


def read_at(accuracy, metric, level):
    """metric where the non-decreasing accuracy first reaches level: linear between the evaluation
    before the crossing and the one at it (the first one, if that is already there)."""
    for i, a in enumerate(accuracy):
        if a >= level:
            if i == 0:
                return metric[0]
            t = (level - accuracy[i - 1]) / (a - accuracy[i - 1])  # in (0, 1]
            return metric[i - 1] + t * (metric[i] - metric[i - 1])
    raise ValueError(f"the curve never reaches accuracy {level}")


def seed_mean(seeds, key):
    """{seed: run} -> the mean over seeds of key at each evaluation (the runs share their steps)."""
    curves = [[e[key] for e in run["evals"]] for run in seeds.values()]
    return [sum(c[i] for c in curves) / len(curves) for i in range(len(curves[0]))]


def equal_accuracy(a, b, metric):
    """{seed: run} of configurations a and b on one SFT model -> (levels, a's and b's metric at
    them); no levels when the pair gains no accuracy (EQUAL_ACCURACY)."""
    acc = {c: pava(seed_mean(s, ACCURACY)) for c, s in (("a", a), ("b", b))}
    start, top = max(acc["a"][0], acc["b"][0]), min(acc["a"][-1], acc["b"][-1])
    if top <= start:
        return [], [], []
    levels = [(1 - k / LEVELS) * start + k / LEVELS * top for k in range(1, LEVELS + 1)]  # the last is top exactly
    ys = {c: [read_at(acc[c], seed_mean(s, metric), x) for x in levels] for c, s in (("a", a), ("b", b))}
    return levels, ys["a"], ys["b"]


def pass_curve(path):
    """Exact pass@k for k in PASS_KS from an evaluation's exact/ file (tasks/paths.pass_metrics:
    the mean over problems of 1 - (1 - mass)^k, mass the probability of all the problem's correct
    derivations)."""
    import torch
    from tasks.paths import pass_metrics
    with open(path) as f:
        problems = json.load(f)["problems"]
    logp = [torch.tensor([lp for _, lp in p["derivations"]], dtype=torch.float64) for p in problems]
    out = pass_metrics(logp, ks=PASS_KS)
    return [out[f"pass_exact_at_{k}"] for k in PASS_KS]


def per_sft(task_runs, a, b, value):
    """{sft j: value(a's seeds, b's seeds)} over the SFT models that ran both a and b, but those
    where value is None."""
    out = {j: value(cs[a], cs[b]) for j, cs in task_runs.items() if a in cs and b in cs}
    return {j: x for j, x in out.items() if x is not None}


def row_of(task, family, a, b, key, at, d, **extra):
    """One test's row: d = {sft j: d_j}, and paired_t of its values."""
    return dict(task=task, family=family, pair=f"{a} - {b}", metric=key, at=at, sft=list(d), **extra,
                **paired_t(list(d.values())))


def final_mean(seeds, key):
    xs = [run["evals"][-1][key] if key != "delta_abs" else run["delta_abs"] for run in seeds.values()]
    return sum(xs) / len(xs) if all(x is not None for x in xs) else None


def analyse_task(task, task_runs):
    """One task's summary: per configuration the final metrics (over SFT models), pass@k against
    pi_ref, and the tests of its pairs (before Holm)."""
    configs = list(dict.fromkeys(c for cs in task_runs.values() for c in cs))
    keys = (*FINAL, *SPREAD[task], "delta_abs")
    final = {}
    for c in configs:
        final[c] = {}
        for key in keys:
            xs = [final_mean(cs[c], key) for cs in task_runs.values() if c in cs]
            if all(x is not None for x in xs):  # the mean over SFT models and its interval; no test of 0
                final[c][key] = {k: v for k, v in paired_t(xs).items() if k != "p"}
        curves = [[e[ACCURACY] for e in run["evals"]] for cs in task_runs.values() if c in cs for run in cs[c].values()]
        final[c]["last_gain"] = sum(a[-1] - a[-2] for a in curves) / len(curves)  # over the last interval: levelled off?
        final[c]["runs"] = len(curves)
    passk = {}
    for c in configs:
        rows = [paired_t([sum(r["pass_curve"]["last"][i] - r["pass_curve"]["ref"][i] for r in cs[c].values())
                          / len(cs[c]) for cs in task_runs.values() if c in cs]) for i in range(len(PASS_KS))]
        passk[c] = dict(k=list(PASS_KS), rl_minus_ref=rows,
                        below_ref=[k for k, r in zip(PASS_KS, rows) if r["difference"] < 0],
                        below_ref_resolved=[k for k, r in zip(PASS_KS, rows) if r["ci95"] and r["ci95"][1] < 0])
    pairs = [(a, b) for a, b in [HEADLINE] + [(c, "flowrl") for c in configs if c not in HEADLINE] if a in configs and b in configs]
    tests = []
    for a, b in pairs:
        family = "headline" if (a, b) == HEADLINE else f"{a} - {b}"
        for key in (ACCURACY, "pass_exact_at_256") if family == "headline" else (ACCURACY,):
            d = per_sft(task_runs, a, b, lambda x, y: final_mean(x, key) - final_mean(y, key))
            tests.append(row_of(task, family, a, b, key, "final", d))
        for key in SPREAD[task]:  # d_j: the mean over the levels of a - b, on the SFT models with levels
            read = {j: e for j, e in per_sft(task_runs, a, b, lambda x, y: equal_accuracy(x, y, key)).items() if e[0]}
            d = {j: sum(p - q for p, q in zip(ya, yb)) / len(levels) for j, (levels, ya, yb) in read.items()}
            tests.append(row_of(task, family, a, b, key, "equal accuracy", d, levels=[e[0] for e in read.values()]))
    return dict(final=final, pass_at_k=passk), tests


def analyse(runs):
    """{task: {sft j: {config: {seed: run}}}} -> results.json's "analysis"."""
    out, tests = dict(equal_accuracy=EQUAL_ACCURACY, accuracy_axis=ACCURACY, tasks={}), []
    for task, task_runs in runs.items():
        out["tasks"][task], t = analyse_task(task, task_runs)
        tests += t
    for family in dict.fromkeys(t["family"] for t in tests):
        group = [t for t in tests if t["family"] == family]
        for t, p in zip(group, holm([t["p"] for t in group])):
            t["p_holm"] = p
    out["tests"] = tests
    return out


def interval(r, digits=3, kind="f"):
    """'m [lo, hi]' of a paired_t row (kind "f": digits after the point; "g": significant digits);
    'm' alone without an interval; '-' without a value."""
    if r is None or r["difference"] is None:
        return "-"
    spec = f".{digits}{kind}"
    return format(r["difference"], spec) + (" [{}, {}]".format(*(format(x, spec) for x in r["ci95"])) if r["ci95"] else "")


def report(analysis):
    """Markdown tables of the analysis: per task and configuration the final metrics, the tests,
    and exact pass@k against pi_ref (docs/RESULTS.md shows these)."""
    lines = ["| task | configuration | runs | exact accuracy | sampled accuracy | pass_exact_at_256 | effective | "
             "KL to pi_ref | abs delta | gain, last interval |", "|" + " --- |" * 10]
    for task, t in analysis["tasks"].items():
        for c, f in t["final"].items():
            eff, kl = SPREAD[task]
            lines.append(f"| {task} | {c} | {f['runs']} | {interval(f.get(ACCURACY))} | {interval(f.get('accuracy'))} | "
                         f"{interval(f.get('pass_exact_at_256'), 4)} | {interval(f.get(eff), 2)} | {interval(f.get(kl))} | "
                         f"{interval(f.get('delta_abs'), 2)} | {f['last_gain']:+.3f} |")
    lines += ["", "| family | task | pair | metric | at | difference [95% CI] | SFT models | p | Holm p |", "|" + " --- |" * 9]
    p = lambda x: f"{x:.3f}" if x is not None else "-"  # noqa: E731
    for r in analysis["tests"]:
        digits = 4 if r["metric"] == "pass_exact_at_256" else 3
        lines.append(f"| {r['family']} | {r['task']} | {r['pair']} | {r['metric']} | {r['at']} | "
                     f"{interval(r, digits)} | {r['n']} | {p(r['p'])} | {p(r['p_holm'])} |")
    ks = (1, 4, 16, 64, 256)
    lines += ["", "| task | configuration | " + " | ".join(f"k = {k}" for k in ks) + " | below pi_ref (interval below 0) |",
              "|" + " --- |" * (len(ks) + 3)]
    for task, t in analysis["tasks"].items():
        for c, q in t["pass_at_k"].items():
            cells = [interval(q["rl_minus_ref"][PASS_KS.index(k)], 2, "g") for k in ks]
            lines.append(f"| {task} | {c} | " + " | ".join(cells) + f" | {q['below_ref']} ({q['below_ref_resolved']}) |")
    return "\n".join(lines)

"""
When does FlowRL match the distribution over correct paths? RL runs on the toy task from one
shared SFT model, for several configurations x seeds, summarised with standard errors.

    python -m study.study --results study/results   # SFT, then 41 runs (SEEDS), about 80 min: the committed results
    python -m study.study --quick               # a small version (QUICK), into out/study/results
    python -m study.study --configs flowrl,grpo --seeds 0,1,2,3,4,5,6,7      # a subset, these seeds each
    python -m study.study --plot_only --results study/results   # redraw the committed figures
    python -m study.study --eval_prompts 128    # flags study.py does not know go to train.py

The questions, and the configurations (CONFIGS) that answer them:
(a) At equal accuracy, does FlowRL keep more correct paths (paths_effective), or stay closer to
    pi_ref's distribution over them (paths_kl_ref), than GRPO?   flowrl, grpo
(b) Where does FlowRL reach its fixed point (|delta| near 0, q near q_ref)? beta 15, 3, 1; token
    means against sequence sums in delta.   flowrl_beta3, flowrl_beta1, flowrl_sum, flowrl_sum_beta1
(c) Which suspects move the accuracy gap to GRPO?   flowrl_nodropout, flowrl_detach, grpo_kl

1. `train.py --rl_steps 0` trains the SFT model once (<runs_dir>/sft/sft): the start and pi_ref
   of every RL run, so the configurations differ in the RL stage only.
2. `train.py --init_from <that> <the configuration's flags> --seed s`, --jobs runs at a time with
   cores / jobs threads each. The queue holds (a) and (b) first, seed by seed, then (c): runs
   stopped early have answered the first questions. Every run is evaluated on the same held-out
   problems; the seed changes the RL prompts and samples.
3. study/results/results.json: every evaluation of every run; per configuration the final-step mean,
   sample std and n over seeds (summarize); the differences against grpo and flowrl with their
   standard errors; the comparison at equal accuracy (EQUAL_ACCURACY); the machine, command and
   wall clock. Figures: accuracy.png, tradeoff.png (paths_effective and paths_kl_ref against
   accuracy), paths.png (pi(y|x) of every correct derivation of one held-out prompt under pi_ref,
   FlowRL and GRPO: the paper's Figure 1 on the language model) and distribution.png (flowrl.py's toy).

Budget of the defaults: 10 + 10 + 7 x 3 = 41 runs of 150 RL steps, evaluated every 10. On a
quiet 2-core EPYC the SFT run took 136 s and each RL run 206 to 237 s, two at a time with one
thread each: 4813 s in all (80 min), the paths figure and the toy included.
Needs matplotlib (requirements-dev.txt) for the figures; train.py itself does not.
"""
import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where train.py is
CONFIGS = {  # name -> train.py flags; (a) and (b) first, then (c)
    "flowrl": ["--algo", "flowrl"],  # official defaults: beta 15, token means
    "grpo": ["--algo", "grpo"],
    "flowrl_beta3": ["--algo", "flowrl", "--beta", "3"],
    "flowrl_beta1": ["--algo", "flowrl", "--beta", "1"],
    "flowrl_sum": ["--algo", "flowrl", "--logp_norm", "sum"],
    "flowrl_sum_beta1": ["--algo", "flowrl", "--logp_norm", "sum", "--beta", "1"],
    "flowrl_nodropout": ["--algo", "flowrl", "--logz_dropout", "0"],
    "flowrl_detach": ["--algo", "flowrl", "--detach_log_z"],
    "grpo_kl": ["--algo", "grpo", "--kl_coef", "0.001"],
}
LATER = ("flowrl_nodropout", "flowrl_detach", "grpo_kl")  # question (c): queued after (a) and (b)
# seeds a configuration without --seeds: 10 for (a), whose path differences at equal accuracy are
# small (with a seed-to-seed spread of about 2.3 effective paths, 10 seeds detect a difference of
# 2.9 paths 80% of the time: README, "How sure"); 3 for the rest, whose effects are larger
SEEDS = dict(flowrl=10, grpo=10)
OTHER_SEEDS = 3
METRICS = ("accuracy", "pass_at_k", "distinct_correct", "greedy_accuracy",
           "paths_mass", "paths_effective", "paths_top_share", "paths_kl_ref")
LAST = 10  # RL steps over which delta_abs is averaged
LEVELS = 4  # accuracy levels of the equal-accuracy comparison
EQUAL_ACCURACY = (  # written into results.json beside the numbers
    "A configuration may keep more paths only because it moved less, so paths_effective and paths_kl_ref are "
    "also compared where runs are equally accurate. For one run, y(a) is the metric when its accuracy first "
    "reaches a, linear between the evaluation before that crossing and the one at it. The levels are a_0 + "
    f"(a_top - a_0) k / {LEVELS}, k = 1..{LEVELS}: a_0 the SFT accuracy, a_top the smallest highest accuracy "
    "over all runs of the two configurations, so every run reaches every level. Per level, and for each run's "
    "mean over the levels: mean and standard error over seeds, and the difference with its standard error. "
    "Accuracy is itself measured with noise (64 prompts x 8 samples by default: a standard error of about 0.02), "
    "so a run can first reach a level early by chance.")
MAX_BARS = 24  # paths.png: a held-out prompt with this many correct derivations, or the nearest number
SET_BY_STUDY = ("--algo", "--seed", "--out_dir", "--init_from", "--resume", "--overwrite",
                "--beta", "--logp_norm", "--logz_dropout", "--detach_log_z", "--kl_coef")
QUICK = ["--seeds", "0,1", "--sft_steps", "150", "--rl_steps", "10", "--eval_interval", "5",
         "--eval_prompts", "16", "--prompts_per_step", "8"]  # --quick puts these first: minutes, not an hour


def train(out_dir, flags, threads):
    """One train.py run; its output goes to out_dir/log.txt."""
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    with open(os.path.join(out_dir, "log.txt"), "w") as log:
        r = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--out_dir", out_dir, "--overwrite", *flags],
                           stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    if r.returncode != 0:
        sys.exit(f"error: train.py failed in {out_dir}; see {os.path.join(out_dir, 'log.txt')}")
    print(f"done: {out_dir} ({time.time() - t0:.0f} s)", flush=True)


def job_queue(seeds):
    """{config: seeds} -> (config, seed) in the order they run: (a) and (b) seed by seed, then (c)
    seed by seed."""
    every = sorted({s for ss in seeds.values() for s in ss})
    return [(c, s) for later in (False, True) for s in every for c in seeds if (c in LATER) == later and s in seeds[c]]


def read_run(out_dir):
    """One RL run: its evaluation rows in step order, and its |delta| (FlowRL's delta_abs)
    averaged over the last LAST steps (None for GRPO)."""
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        rows = [r for r in map(json.loads, f) if r["stage"] == "rl"]
    deltas = [r["delta_abs"] for r in rows if r["phase"] == "train" and "delta_abs" in r][-LAST:]
    return dict(evals=[r for r in rows if r["phase"] == "eval"],
                delta_abs=sum(deltas) / len(deltas) if deltas else None)


def mean_std(xs):
    """Mean and sample standard deviation (n - 1; 0 for one value)."""
    m = sum(xs) / len(xs)
    return m, (math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0)


def final_values(seeds):
    """{seed: run} -> {metric: [final-step value per seed]}, delta_abs included where logged."""
    values = {m: [run["evals"][-1][m] for run in seeds.values()] for m in METRICS}
    if all(run["delta_abs"] is not None for run in seeds.values()):
        values["delta_abs"] = [run["delta_abs"] for run in seeds.values()]
    return values


def difference(xa, xb):
    """mean(xa) - mean(xb) and its standard error sqrt(s_a^2 / n_a + s_b^2 / n_b): the seeds of
    two configurations are independent."""
    (ma, sa), (mb, sb) = mean_std(xa), mean_std(xb)
    return dict(difference=ma - mb, stderr=math.sqrt(sa ** 2 / len(xa) + sb ** 2 / len(xb)))


def comparisons(configs):
    """(config, baseline) pairs: every configuration against grpo, the variants also against flowrl."""
    return [(a, b) for b in ("grpo", "flowrl") if b in configs for a in configs if a not in (b, "grpo")]


def summarize(runs):
    """{config: {seed: run}} -> (final, differences): per configuration, the mean, sample std and
    n over seeds of METRICS at the final step and of |delta| over the last LAST steps (FlowRL);
    and for each pair of comparisons(), a minus b with its standard error."""
    values = {c: final_values(seeds) for c, seeds in runs.items()}
    final = {c: {m: dict(zip(("mean", "std"), mean_std(xs)), n=len(xs)) for m, xs in v.items()}
             for c, v in values.items()}
    differences = {f"{a} - {b}": {m: difference(values[a][m], values[b][m]) for m in values[a] if m in values[b]}
                   for a, b in comparisons(runs)}
    return final, differences


def at_accuracy(evals, metric, level):
    """The metric when the run's accuracy first reaches level: linear between the evaluation
    before the crossing and the one at it (the first one, if that is already there)."""
    for i, e in enumerate(evals):
        if e["accuracy"] >= level:
            if i == 0:
                return e[metric]
            before = evals[i - 1]
            t = (level - before["accuracy"]) / (e["accuracy"] - before["accuracy"])  # in (0, 1]
            return before[metric] + t * (e[metric] - before[metric])
    raise ValueError(f"the run never reaches accuracy {level}")


def equal_accuracy(runs, a, b, metrics=("paths_effective", "paths_kl_ref")):
    """The metrics of configurations a and b at the same accuracy levels (module docstring). Per
    level, and for each run's mean over the levels: the mean and standard error over seeds of
    each configuration, and a - b with its standard error."""
    pair = {c: list(runs[c].values()) for c in (a, b)}
    start = max(run["evals"][0]["accuracy"] for c in pair for run in pair[c])
    top = min(max(e["accuracy"] for e in run["evals"]) for c in pair for run in pair[c])
    # (1 - f) a_0 + f a_top: the last level is a_top exactly, which its run does reach
    levels = [(1 - k / LEVELS) * start + k / LEVELS * top for k in range(1, LEVELS + 1)] if top > start else []

    def row(level, xs):  # xs: {config: one value per seed}
        means = {c: mean_std(v) for c, v in xs.items()}
        return {"level": level, **{c: dict(mean=m, stderr=s / math.sqrt(len(xs[c]))) for c, (m, s) in means.items()},
                **difference(xs[a], xs[b])}

    out = dict(levels=levels)
    for m in metrics:
        y = {c: [[at_accuracy(run["evals"], m, x) for x in levels] for run in pair[c]] for c in pair}  # (seeds, levels)
        out[m] = [row(x, {c: [ys[i] for ys in y[c]] for c in pair}) for i, x in enumerate(levels)]
        if levels:
            out[m].append(row("mean", {c: [sum(ys) / len(ys) for ys in y[c]] for c in pair}))
    return out


def path_probabilities(runs_dir, configs, seed):
    """pi(y|x) of every correct derivation y of one held-out prompt x, under pi_ref (the SFT
    model) and the final checkpoint of each configuration's run with this seed. x is the first
    held-out prompt with MAX_BARS derivations, or the nearest number (24: every order of 4
    different numbers, a figure that reads; 120 bars would not)."""
    import torch
    from model import Transformer, read_json
    from tasks.paths import path_logprobs
    from tasks.sums import PAD, ToyTask, toy_derivations
    from training.checkpoint import load_tokenizer
    args = read_json(os.path.join(runs_dir, f"{configs[0]}_seed{seed}", "ckpt", "trainer_state.json"))["args"]
    problems = ToyTask(args["eval_prompts"]).eval_set
    x = min(problems, key=lambda p: abs(len(toy_derivations(p[0])) - MAX_BARS))  # the first of the nearest
    models = {"pi_ref": os.path.join(runs_dir, "sft", "sft"),
              **{c: os.path.join(runs_dir, f"{c}_seed{seed}", "ckpt") for c in configs}}
    probability = {}
    for name, path in models.items():
        model, tok = Transformer.from_pretrained(path, torch.float32).eval(), load_tokenizer(path)
        encode = lambda q: tok.encode((args["prompt_template"] or "{question}\n").replace("{question}", q)).ids  # noqa: E731
        logp = path_logprobs(model, tok, [x], encode, model.config.eos_token_id, tok.token_to_id(PAD),
                             torch.device("cpu"))  # [(|C(x)|,)]
        probability[name] = logp[0].exp().tolist()
    return dict(question=x[0], answer=x[1], seed=seed, derivations=toy_derivations(x[0]), probability=probability)


def distribution():
    """The distribution-matching toy of flowrl.py, for each algorithm."""
    from flowrl import train_toy_distribution
    d = {a: train_toy_distribution(a) for a in ("flowrl", "grpo")}
    return dict(answers=list(range(12)), target=d["flowrl"]["target"].tolist(),
                reference=d["flowrl"]["reference"].tolist(), reward=d["flowrl"]["reward"].tolist(),
                **{a: d[a]["policy"].tolist() for a in d}, **{f"kl_{a}": d[a]["kl"] for a in d},
                **{f"kl_curve_{a}": d[a]["kl_curve"] for a in d},
                log_z=d["flowrl"]["log_z"], true_log_z=d["flowrl"]["true_log_z"])


def cpu_name():
    try:  # Linux names the CPU model here; platform.processor() is often empty there
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def plot(results, out):
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=120)
        plt.close(fig)

    runs = results["runs"]
    colors = {c: plt.cm.tab10(i) for i, c in enumerate(CONFIGS)}
    k = [run for seeds in runs.values() for run in seeds.values()][0]["evals"][0]["k"]  # the same in every run
    accuracy = f"accuracy ({k} samples per prompt, T = 1)"

    # accuracy against RL step: mean and min-to-max over seeds; (c) beside (a) and (b)
    groups = [[c for c in runs if c not in LATER], [c for c in runs if c in LATER or c in ("flowrl", "grpo")]]
    groups = [g for g in groups if g]
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4), squeeze=False)
    for ax, group in zip(axes[0], groups):
        for c in group:
            seeds = [run["evals"] for run in runs[c].values()]
            steps = [e["step"] for e in seeds[0]]
            values = [[evals[i]["accuracy"] for evals in seeds] for i in range(len(steps))]
            ax.plot(steps, [sum(v) / len(v) for v in values], color=colors[c], marker="o", ms=3,
                    label=f"{c} (mean of {len(seeds)} seeds)")
            ax.fill_between(steps, [min(v) for v in values], [max(v) for v in values], color=colors[c], alpha=0.15)
        ax.set_xlabel("RL step")
        ax.set_ylabel(accuracy)
        ax.set_title("from one SFT checkpoint (band: min to max over seeds)", fontsize=9)
        ax.legend(fontsize=7)
    save(fig, "accuracy.png")

    # every evaluation of every run: paths kept, and distance to q_ref, against accuracy
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = dict(paths_effective="effective number of correct paths, exp H(q)",
                  paths_kl_ref="KL(q || q_ref) over the correct paths")
    for ax, (m, label) in zip(axes, labels.items()):
        for c in runs:
            seeds = [run["evals"] for run in runs[c].values()]
            ax.scatter([e["accuracy"] for evals in seeds for e in evals], [e[m] for evals in seeds for e in evals],
                       color=colors[c], s=6, alpha=0.25)
            mean = lambda key: [sum(evals[i][key] for evals in seeds) / len(seeds) for i in range(len(seeds[0]))]  # noqa: E731
            ax.plot(mean("accuracy"), mean(m), color=colors[c], marker="o", ms=3, lw=1.2, label=c)
        ax.set_xlabel(accuracy)
        ax.set_ylabel(label)
        ax.set_title("dots: every evaluation of every run; lines: the mean over seeds at each step", fontsize=9)
    axes[0].legend(fontsize=7)
    save(fig, "tradeoff.png")

    # one prompt's correct derivations: pi_ref, FlowRL and GRPO after RL
    p = results["paths_figure"]
    shown = [name for name in ("pi_ref", "flowrl", "grpo") if name in p["probability"]]
    order = sorted(range(len(p["derivations"])), key=lambda i: -p["probability"]["pi_ref"][i])
    fig, ax = plt.subplots(figsize=(12, 4.5))
    w = 0.8 / len(shown)
    for j, name in enumerate(shown):
        probs = [p["probability"][name][i] for i in order]
        ax.bar([i + (j - (len(shown) - 1) / 2) * w for i in range(len(order))], probs, w,
               color="tab:gray" if name == "pi_ref" else colors[name],
               label=f"{name}: sum {sum(probs):.2g}")
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([p["derivations"][i].split(" ####")[0] for i in order], rotation=90, fontsize=6)
    ax.set_ylabel("pi(y | x)")
    ax.set_title(f"every correct derivation of the held-out prompt {p['question']} = {p['answer']}, "
                 f"sorted by pi_ref; after RL: the final checkpoint of seed {p['seed']}", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, "paths.png")

    d = results["distribution"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    x, w = d["answers"], 0.27
    left.bar([i - w for i in x], d["target"], w, color="tab:gray", label="target p* = pi_ref e^(beta r) / Z")
    for j, a in enumerate(("flowrl", "grpo")):
        left.bar([i + j * w for i in x], d[a], w, color=colors[a], label=f"{a}: KL(policy || p*) = {d['kl_' + a]:.2g}")
        right.semilogy(range(1, len(d["kl_curve_" + a]) + 1), d["kl_curve_" + a], color=colors[a], label=a)
    left.set_xticks(x)
    left.set_xlabel("answer (a one-token response)")
    left.set_ylabel("probability")
    left.set_title("where each policy ends up after 200 steps (beta = 3)")
    left.legend(fontsize=8)
    right.set_xlabel("step")
    right.set_ylabel("KL(policy || p*)")
    right.set_title("distance to the reward distribution")
    right.legend(fontsize=8)
    save(fig, "distribution.png")


def parse_args(argv):
    p = argparse.ArgumentParser(description="When FlowRL matches the distribution, on the toy task "
                                "(extra flags go to train.py)", allow_abbrev=False)  # --seed must not pass for --seeds
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of: {', '.join(CONFIGS)}")
    p.add_argument("--seeds", help="comma-separated RL seeds, for every configuration (default: SEEDS, "
                   f"{', '.join(f'{c} {n}' for c, n in SEEDS.items())}, others {OTHER_SEEDS}; from 0)")
    p.add_argument("--sft_steps", type=int, default=600)
    p.add_argument("--rl_steps", type=int, default=150, help="RL steps per run: the path metrics still move after accuracy levels off")
    p.add_argument("--eval_interval", type=int, default=10, help="RL steps between evaluations")
    p.add_argument("--jobs", type=int, default=2, help="RL runs at a time; every run gets cores / jobs threads")
    p.add_argument("--quick", action="store_true", help="the flags " + " ".join(QUICK) + " first")
    p.add_argument("--runs_dir", default=os.path.join("out", "study"), help="the train.py runs")
    p.add_argument("--results", default=os.path.join("out", "study", "results"),
                   help="results.json and the figures (the committed ones are study/results: only when named)")
    p.add_argument("--plot_only", action="store_true", help="redraw the figures from results.json")
    args, train_flags = p.parse_known_args((QUICK if "--quick" in argv else []) + argv)  # flags given win
    for flag in SET_BY_STUDY:
        if any(f == flag or f.startswith(flag + "=") for f in train_flags):
            p.error(f"{flag} is set by study.py for each run; it cannot be passed on to train.py")
    unknown = set(args.configs.split(",")) - set(CONFIGS)
    if unknown:
        p.error(f"--configs: unknown {', '.join(sorted(unknown))}; known: {', '.join(CONFIGS)}")
    args.configs = [c for c in CONFIGS if c in args.configs.split(",")]  # in CONFIGS' order
    given = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    args.seeds = {c: given or list(range(SEEDS.get(c, OTHER_SEEDS))) for c in args.configs}  # {config: seeds}
    return args, train_flags


def main():
    args, train_flags = parse_args(sys.argv[1:])
    os.makedirs(args.results, exist_ok=True)
    path = os.path.join(args.results, "results.json")
    if args.plot_only:
        with open(path) as f:
            return plot(json.load(f), args.results)

    cores = os.cpu_count() or 1
    # cores / jobs threads for the SFT run too: on a machine shared with other work, two threads
    # that wait on each other ran slower than one
    threads = max(1, cores // args.jobs)
    t0 = time.time()
    sft_dir = os.path.join(args.runs_dir, "sft")
    train(sft_dir, ["--sft_steps", str(args.sft_steps), "--rl_steps", "0", *train_flags], threads)
    flags = ["--init_from", os.path.join(sft_dir, "sft"), "--rl_steps", str(args.rl_steps),
             "--eval_interval", str(args.eval_interval), *train_flags]
    run_dir = lambda c, s: os.path.join(args.runs_dir, f"{c}_seed{s}")  # noqa: E731
    pool = ThreadPoolExecutor(args.jobs)
    try:
        list(pool.map(lambda job: train(run_dir(*job), [*CONFIGS[job[0]], "--seed", str(job[1]), *flags], threads),
                      job_queue(args.seeds)))
    finally:  # a failed run (or Ctrl-C) empties the queue; the runs under way end first
        pool.shutdown(cancel_futures=True)
    runs = {c: {str(s): read_run(run_dir(c, s)) for s in args.seeds[c]} for c in args.configs}
    final, differences = summarize(runs)
    results = dict(
        command=shlex.join(["python", "-m", "study.study", *sys.argv[1:]]),
        settings=dict(configs={c: CONFIGS[c] for c in args.configs}, seeds=args.seeds, sft_steps=args.sft_steps,
                      rl_steps=args.rl_steps, eval_interval=args.eval_interval, jobs=args.jobs,
                      train_flags=train_flags),
        machine=dict(cpu=cpu_name(), cores=cores, python=platform.python_version(),
                     torch=__import__("torch").__version__),
        final=final, differences=differences,
        equal_accuracy=dict(method=EQUAL_ACCURACY,
                            **{f"{a} - {b}": equal_accuracy(runs, a, b) for a, b in comparisons(runs) if b == "grpo"}),
        paths_figure=path_probabilities(args.runs_dir, args.configs, min(args.seeds[args.configs[0]])),
        distribution=distribution(), runs=runs)
    results["wall_clock_s"] = round(time.time() - t0)  # the runs, the paths and the distribution toy
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    try:
        plot(results, args.results)
        print(f"wrote {path} and the figures ({results['wall_clock_s']} s)")
    except ImportError:
        print(f"wrote {path}; the figures need matplotlib: pip install matplotlib, then python -m study.study --plot_only")
    for pair, d in differences.items():
        print(f"{pair:26s} " + "  ".join(f"{m} {d[m]['difference']:+.3f} ({d[m]['stderr']:.3f})"
                                         for m in ("accuracy", "paths_effective", "paths_kl_ref") if m in d))


if __name__ == "__main__":
    main()

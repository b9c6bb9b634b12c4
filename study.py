"""
FlowRL against GRPO on the toy task: RL from one shared SFT checkpoint, several seeds, and the
distribution-matching toy of flowrl.py, drawn as figures.

    python study.py                                  # the README's results: SFT, then 2 x 5 RL runs
    python study.py --seeds 0,1,2 --rl_steps 50      # fewer or shorter runs
    python study.py --plot_only                      # redraw the figures from results/results.json
    python study.py --seeds 0,1 --eval_prompts 8     # flags study.py does not know go to train.py

1. `train.py --rl_steps 0` trains the SFT model once (out/study/sft/sft); it is the starting point
   and pi_ref of every RL run, so the algorithms differ in the RL stage only.
2. `train.py --init_from <that> --algo {flowrl,grpo} --seed s` for each seed, `--jobs` at a time.
   The seed changes the RL prompts and samples; the held-out evaluation (64 prompts x 8 samples)
   is the same set of problems in every run.
3. results/results.json: every run's evaluations, the final-step mean and standard deviation over
   seeds, the machine and the wall-clock time; results/*.png: accuracy and distinct correct
   completions against RL step (mean and the range over seeds), and the distribution figure.

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

HERE = os.path.dirname(os.path.abspath(__file__))
ALGOS = ("flowrl", "grpo")
METRICS = ("accuracy", "pass_at_k", "distinct_correct", "greedy_accuracy")


def train(out_dir, flags, threads):
    """One train.py run; its output goes to out_dir/log.txt. Returns the wall-clock seconds."""
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    with open(os.path.join(out_dir, "log.txt"), "w") as log:
        r = subprocess.run([sys.executable, os.path.join(HERE, "train.py"), "--out_dir", out_dir, "--overwrite", *flags],
                           stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    if r.returncode != 0:
        sys.exit(f"error: train.py failed in {out_dir}; see {os.path.join(out_dir, 'log.txt')}")
    print(f"done: {out_dir} ({time.time() - t0:.0f} s)", flush=True)
    return time.time() - t0


def evals(out_dir):
    """The evaluation records of one RL run, in step order."""
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        return [{k: r[k] for k in ("step", *METRICS)} for r in map(json.loads, f)
                if r["phase"] == "eval" and r["stage"] == "rl"]


def mean_std(xs):
    """Mean and sample standard deviation (n - 1; 0 for one value)."""
    m = sum(xs) / len(xs)
    return m, (math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0)


def summarize(runs):
    """{algo: {seed: evals}} -> final-step mean and std per algorithm and metric, and the
    difference FlowRL - GRPO with its standard error (independent seeds)."""
    final = {a: {m: dict(zip(("mean", "std"), mean_std([r[-1][m] for r in runs[a].values()]))) for m in METRICS}
             for a in runs}
    diff = {}
    for m in METRICS:
        (ma, sa), (mb, sb) = [(final[a][m]["mean"], final[a][m]["std"]) for a in ALGOS]
        se = math.sqrt(sa ** 2 / len(runs["flowrl"]) + sb ** 2 / len(runs["grpo"]))
        diff[m] = dict(flowrl_minus_grpo=ma - mb, stderr=se)
    return final, diff


def distribution():
    """The distribution-matching toy of flowrl.py, for each algorithm."""
    from flowrl import train_toy_distribution
    d = {a: train_toy_distribution(a) for a in ALGOS}
    return dict(answers=list(range(12)), target=d["flowrl"]["target"].tolist(),
                reference=d["flowrl"]["reference"].tolist(), reward=d["flowrl"]["reward"].tolist(),
                **{a: d[a]["policy"].tolist() for a in ALGOS}, **{f"kl_{a}": d[a]["kl"] for a in ALGOS},
                **{f"kl_curve_{a}": d[a]["kl_curve"] for a in ALGOS},
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
    colors = dict(flowrl="tab:blue", grpo="tab:orange")
    labels = dict(accuracy="accuracy (8 samples per prompt, T = 1)",
                  distinct_correct="distinct correct completions per prompt (of 8)")
    for metric, label in labels.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        for a in ALGOS:
            runs = list(results["runs"][a].values())
            steps = [e["step"] for e in runs[0]]
            values = [[r[i][metric] for r in runs] for i in range(len(steps))]
            mean = [sum(v) / len(v) for v in values]
            ax.plot(steps, mean, color=colors[a], marker="o", label=f"{a} (mean of {len(runs)} seeds)")
            ax.fill_between(steps, [min(v) for v in values], [max(v) for v in values], color=colors[a],
                            alpha=0.2, label=f"{a} (min to max over seeds)")
        ax.set_xlabel("RL step")
        ax.set_ylabel(label)
        ax.set_title(f"toy task, from one SFT checkpoint: {metric}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{metric}.png"), dpi=120)
        plt.close(fig)

    d = results["distribution"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    x, w = d["answers"], 0.27
    left.bar([i - w for i in x], d["target"], w, color="tab:gray", label="target p* = pi_ref e^(beta r) / Z")
    for k, a in enumerate(ALGOS):
        left.bar([i + k * w for i in x], d[a], w, color=colors[a], label=f"{a}: KL(policy || p*) = {d['kl_' + a]:.2g}")
    left.set_xticks(x)
    left.set_xlabel("answer (a one-token response)")
    left.set_ylabel("probability")
    left.set_title("where each policy ends up after 200 steps (beta = 3)")
    left.legend(fontsize=8)
    for a in ALGOS:
        right.semilogy(range(1, len(d["kl_curve_" + a]) + 1), d["kl_curve_" + a], color=colors[a], label=a)
    right.set_xlabel("step")
    right.set_ylabel("KL(policy || p*)")
    right.set_title("distance to the reward distribution")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "distribution.png"), dpi=120)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description="FlowRL against GRPO on the toy task (extra flags go to train.py)",
                                allow_abbrev=False)  # --seed must not pass for --seeds
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated RL seeds")
    p.add_argument("--sft_steps", type=int, default=600)
    p.add_argument("--rl_steps", type=int, default=100)
    p.add_argument("--jobs", type=int, default=2, help="RL runs at a time (each gets cores / jobs threads)")
    p.add_argument("--runs_dir", default=os.path.join("out", "study"), help="the train.py runs")
    p.add_argument("--results", default="results", help="results.json and the figures")
    p.add_argument("--plot_only", action="store_true", help="redraw the figures from results.json")
    args, train_flags = p.parse_known_args()
    for flag in ("--algo", "--seed", "--out_dir", "--init_from", "--resume", "--overwrite"):
        if any(f == flag or f.startswith(flag + "=") for f in train_flags):
            p.error(f"{flag} is set by study.py for each run; it cannot be passed on to train.py")
    os.makedirs(args.results, exist_ok=True)
    path = os.path.join(args.results, "results.json")
    if args.plot_only:
        with open(path) as f:
            return plot(json.load(f), args.results)

    seeds = [int(s) for s in args.seeds.split(",")]
    cores = os.cpu_count() or 1
    t0 = time.time()
    sft_dir = os.path.join(args.runs_dir, "sft")
    train(sft_dir, ["--sft_steps", str(args.sft_steps), "--rl_steps", "0", *train_flags], cores)
    jobs = [(a, s) for s in seeds for a in ALGOS]
    flags = ["--init_from", os.path.join(sft_dir, "sft"), "--rl_steps", str(args.rl_steps), *train_flags]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda j: train(os.path.join(args.runs_dir, f"{j[0]}_seed{j[1]}"),
                                      ["--algo", j[0], "--seed", str(j[1]), *flags], max(1, cores // args.jobs)),
                      jobs))
    runs = {a: {str(s): evals(os.path.join(args.runs_dir, f"{a}_seed{s}")) for s in seeds} for a in ALGOS}
    final, diff = summarize(runs)
    results = dict(
        command=shlex.join(["python", "study.py", *sys.argv[1:]]),
        settings=dict(seeds=seeds, sft_steps=args.sft_steps, rl_steps=args.rl_steps, jobs=args.jobs,
                      train_flags=train_flags),
        machine=dict(cpu=cpu_name(), cores=cores, python=platform.python_version(),
                     torch=__import__("torch").__version__),
        final=final, flowrl_minus_grpo=diff, runs=runs, distribution=distribution())
    results["wall_clock_s"] = round(time.time() - t0)  # the runs and the distribution toy
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    try:
        plot(results, args.results)
        print(f"wrote {path} and the figures ({results['wall_clock_s']} s)")
    except ImportError:
        print(f"wrote {path}; the figures need matplotlib: pip install matplotlib, then python study.py --plot_only")
    for m in METRICS:
        print(f"{m:17s} " + "  ".join(f"{a} {final[a][m]['mean']:.3f} +- {final[a][m]['std']:.3f}" for a in ALGOS)
              + f"  difference {diff[m]['flowrl_minus_grpo']:+.3f} (standard error {diff[m]['stderr']:.3f})")


if __name__ == "__main__":
    main()

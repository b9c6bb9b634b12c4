"""
FlowRL against GRPO on the two toy tasks, sums and countdown: at equal accuracy, does FlowRL keep
more of pi_ref's correct paths (sums) or solutions (countdown), and does RL's exact pass@k at large
k fall below pi_ref's? RL runs from several SFT models per task, several seeds each; every interval
resamples the SFT level. docs/RESULTS.md reads the committed results.

    python -m study.study --results study/results   # the committed study: 8 SFT models, 64 RL runs
    python -m study.study --quick                   # a small version (QUICK), into out/study/results
    python -m study.study --summarize               # summarise the runs finished so far, train nothing
    python -m study.study --plot_only --results study/results   # redraw the committed figures, print the tables
    python -m study.study --eval_samples 16         # flags study.py does not know go to train.py

Configurations (CONFIGS):
- flowrl (the official settings: beta 15, token means, a log Z head) and grpo: the headline pair;
- flowrl_sum (sequence sums in delta), flowrl_logz_mean (log Z as the group's mean, no head),
  flowrl_raw (beta times the raw reward, not the group-normalised one), flowrl_beta1 (a small beta,
  where delta can come near its fixed point): what each FlowRL choice does.

Design (DESIGN): per task, SFT_MODELS SFT models (`train.py --rl_steps 0 --seed j`), each the start
and pi_ref of its RL runs; per SFT model, SEEDS[config] RL seeds (seed 10 j + s). Each run evaluates
on the same EVAL_PROMPTS held-out problems, with its own evaluation stream. A run is reused when
its folder holds study.json with the same train.py flags: adding seeds reruns nothing. The queue
runs every SFT model, then one seed of every configuration on every SFT model, then the headline
pair's further seeds, so a study stopped early is balanced; --summarize reads what finished.

The analysis is in study/stats.py, the figures in study/figures.py.
"""
import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where train.py is
sys.path.insert(0, ROOT)
from model import atomic_write, write_text  # noqa: E402
from training import checkpoint  # noqa: E402
from study import stats  # noqa: E402

TASKS = {"sums": ["--task", "sums"],  # name -> train.py flags of every run of the task
         "countdown": ["--task", "countdown", "--countdown_format", "derivation", "--countdown_numbers", "4",
                       "--countdown_max", "5", "--countdown_target_max", "50"]}  # targets to 50, not the toy's default 10
CONFIGS = {  # name -> train.py flags
    "flowrl": ["--algo", "flowrl"],
    "grpo": ["--algo", "grpo"],
    "flowrl_sum": ["--algo", "flowrl", "--logp_norm", "sum"],
    "flowrl_logz_mean": ["--algo", "flowrl", "--log_z", "mean"],
    "flowrl_raw": ["--algo", "flowrl", "--reward_norm", "raw"],
    "flowrl_beta1": ["--algo", "flowrl", "--beta", "1"],
}
HEADLINE = ("flowrl", "grpo")
SFT_MODELS = 4
SEEDS = dict(flowrl=2, grpo=2)  # RL seeds per SFT model; the other configurations OTHER_SEEDS
OTHER_SEEDS = 1
EVAL_PROMPTS = 128
# Seconds of the study's runs on the 2-core EPYC, two at a time with one thread each: an SFT run
# of 600 steps; an RL run's start, each RL step, each evaluation (EVAL_PROMPTS x 8 samples and the
# exact metrics). For the estimate only
COST = {"sums": dict(sft=220, start=15, rl_step=1.7, evaluation=15),
        "countdown": dict(sft=190, start=19, rl_step=1.6, evaluation=17)}
SET_BY_STUDY = ("--task", "--algo", "--seed", "--out_dir", "--init_from", "--resume", "--overwrite", "--beta",
                "--logp_norm", "--log_z", "--reward_norm", "--countdown_format", "--countdown_numbers", "--countdown_max",
                "--countdown_target_max")
QUICK = ["--tasks", "sums", "--sft_models", "2", "--seeds", "1", "--sft_steps", "150", "--rl_steps", "10",
         "--eval_interval", "5", "--eval_prompts", "16", "--runs_dir", os.path.join("out", "study_quick"),
         "--results", os.path.join("out", "study_quick", "results")]  # --quick puts these first: minutes, not hours


def finished(out_dir, key):
    """Whether out_dir holds a finished run of key: its study.json, written last, holds key."""
    marker = os.path.join(out_dir, "study.json")
    if not os.path.exists(marker):
        return False
    with open(marker) as f:
        return json.load(f)["key"] == key


def train(out_dir, flags, key, threads):
    """One train.py run, its output in out_dir/log.txt, unless finished(out_dir, key) (key:
    sft_job's or rl_job's)."""
    if finished(out_dir, key):
        return
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    with open(os.path.join(out_dir, "log.txt"), "w") as log:
        r = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--out_dir", out_dir, "--overwrite", *flags],
                           stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    if r.returncode != 0:
        sys.exit(f"error: train.py failed in {out_dir}; see {os.path.join(out_dir, 'log.txt')}")
    seconds = time.time() - t0
    text = json.dumps(dict(key=key, seconds=round(seconds, 1), threads=threads))
    atomic_write(os.path.join(out_dir, "study.json"), lambda tmp: write_text(tmp, text))
    print(f"done: {out_dir} ({seconds:.0f} s)", flush=True)


def sft_dir(args, task, j):
    return os.path.join(args.runs_dir, task, f"sft{j}")


def run_dir(args, task, j, config, seed):
    return os.path.join(args.runs_dir, task, f"sft{j}_{config}_seed{seed}")


def sft_job(args, task, j, train_flags):
    """(out_dir, flags, key) of SFT model j."""
    flags = sft_flags(args, task, j, train_flags)
    return sft_dir(args, task, j), flags, flags


def rl_job(args, task, j, config, seed, train_flags):
    """(out_dir, flags, key) of one RL run: its key holds its SFT model's flags and weights'
    checksum too, which --init_from does not show (None before that model exists)."""
    flags = rl_flags(args, task, j, config, seed, train_flags)
    model = os.path.join(sft_dir(args, task, j), "sft")
    sha256 = checkpoint.checksum(model) if os.path.exists(os.path.join(model, "config.json")) else None
    return run_dir(args, task, j, config, seed), flags, dict(rl=flags, sft=sft_flags(args, task, j, train_flags),
                                                              sft_sha256=sha256)


def sft_flags(args, task, j, train_flags):
    return [*TASKS[task], "--sft_steps", str(args.sft_steps), "--rl_steps", "0", "--seed", str(j),
            "--eval_prompts", str(args.eval_prompts), *train_flags]


def rl_flags(args, task, j, config, seed, train_flags):
    return [*TASKS[task], *CONFIGS[config], "--init_from", os.path.join(sft_dir(args, task, j), "sft"),
            "--rl_steps", str(args.rl_steps), "--eval_interval", str(args.eval_interval),
            "--eval_prompts", str(args.eval_prompts), "--seed", str(seed), *train_flags]


def rl_jobs(args):
    """(task, j, config, seed) in the order they run: round s holds every configuration with an
    s-th seed, on every SFT model of every task."""
    rounds = max(args.seeds.values())
    return [(t, j, c, 10 * j + s) for s in range(rounds) for j in range(args.sft_models) for t in args.tasks
            for c in args.configs if s < args.seeds[c]]


def estimate(args, jobs, train_flags):
    """Seconds of wall clock for the runs not already finished, from COST, args.jobs at a time."""
    evaluations = args.rl_steps // args.eval_interval + 1 + (args.rl_steps % args.eval_interval > 0)  # step 0 and the last too
    scale = args.eval_prompts / EVAL_PROMPTS
    total, n = 0.0, 0
    for t in args.tasks:
        for j in range(args.sft_models):
            out_dir, _, key = sft_job(args, t, j, train_flags)
            if not finished(out_dir, key):
                total, n = total + COST[t]["sft"] * args.sft_steps / 600, n + 1
    for t, j, c, s in jobs:
        out_dir, _, key = rl_job(args, t, j, c, s, train_flags)
        if not finished(out_dir, key):
            total += COST[t]["start"] + COST[t]["rl_step"] * args.rl_steps + COST[t]["evaluation"] * evaluations * scale
            n += 1
    return total / args.jobs, n


def read_run(out_dir):
    """One RL run: its evaluation rows in step order, its |delta| over the last 10 steps (FlowRL),
    and its exact pass@k for k = 1, 2, 4, ..., 256 at step 0 (pi_ref) and at the last step."""
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        rows = [r for r in map(json.loads, f) if r["stage"] == "rl"]
    deltas = [r["delta_abs"] for r in rows if r["phase"] == "train" and "delta_abs" in r][-10:]
    evals = [r for r in rows if r["phase"] == "eval"]
    curve = lambda step: stats.pass_curve(os.path.join(out_dir, "exact", f"rl_{step}.json"))  # noqa: E731
    return dict(evals=evals, delta_abs=sum(deltas) / len(deltas) if deltas else None,
                pass_curve=dict(ref=curve(0), last=curve(evals[-1]["step"])))


def finished_runs(args, train_flags):
    """{task: {sft j: {config: {seed: run}}}} of the runs whose study.json matches their flags."""
    runs = {}
    for t, j, c, s in rl_jobs(args):
        d, _, key = rl_job(args, t, j, c, s, train_flags)
        if finished(d, key):
            runs.setdefault(t, {}).setdefault(str(j), {}).setdefault(c, {})[str(s)] = read_run(d)
    return runs


def train_seconds(args, runs):
    """The seconds the summarised runs and their SFT models took when they were trained (their
    study.json), one at a time: the study's cost, however many calls it took."""
    dirs = {sft_dir(args, t, int(j)) for t in runs for j in runs[t]}
    dirs |= {run_dir(args, t, int(j), c, int(s)) for t in runs for j in runs[t] for c in runs[t][j] for s in runs[t][j][c]}
    total = 0.0
    for d in dirs:
        with open(os.path.join(d, "study.json")) as f:
            total += json.load(f)["seconds"]
    return total


def cpu_name():
    try:  # Linux names the CPU model here; platform.processor() is often empty there
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def parse_args(argv):
    p = argparse.ArgumentParser(description="FlowRL against GRPO on the toy tasks (extra flags go to train.py)",
                                allow_abbrev=False)  # --seed must not pass for --seeds
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of: {', '.join(TASKS)}")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of: {', '.join(CONFIGS)}")
    p.add_argument("--sft_models", type=int, default=SFT_MODELS, help="SFT models per task")
    p.add_argument("--seeds", type=int, help="RL seeds per SFT model, for every configuration (default: SEEDS, "
                   f"{', '.join(f'{c} {n}' for c, n in SEEDS.items())}, others {OTHER_SEEDS})")
    p.add_argument("--sft_steps", type=int, default=600)
    p.add_argument("--rl_steps", type=int, default=60)
    p.add_argument("--eval_interval", type=int, default=20, help="RL steps between evaluations")
    p.add_argument("--eval_prompts", type=int, default=EVAL_PROMPTS, help="held-out problems of every evaluation")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time; every run gets cores / jobs threads")
    p.add_argument("--quick", action="store_true", help="the flags " + " ".join(QUICK) + " first")
    p.add_argument("--runs_dir", default=os.path.join("out", "study"), help="the train.py runs")
    p.add_argument("--results", default=os.path.join("out", "study", "results"),
                   help="results.json and the figures (the committed ones are study/results: only when named)")
    p.add_argument("--summarize", action="store_true", help="summarise the finished runs; train nothing")
    p.add_argument("--plot_only", action="store_true", help="redraw the figures from results.json")
    args, train_flags = p.parse_known_args((QUICK if "--quick" in argv else []) + argv)  # flags given win
    own = ("--sft_steps", "--rl_steps", "--eval_interval", "--eval_prompts")  # study.py's, set per run
    for f in train_flags:  # train.py takes abbreviations: --alg would override --algo
        name = f.split("=")[0]
        flag = next((flag for flag in (*SET_BY_STUDY, *own) if name.startswith("--") and flag.startswith(name)), None)
        if flag:
            p.error(f"{flag} is set by study.py for each run; it cannot be passed on to train.py (as {name})")
    for name, known in (("tasks", TASKS), ("configs", CONFIGS)):
        unknown = set(getattr(args, name).split(",")) - set(known)
        if unknown:
            p.error(f"--{name}: unknown {', '.join(sorted(unknown))}; known: {', '.join(known)}")
        setattr(args, name, [k for k in known if k in getattr(args, name).split(",")])  # in the table's order
    for name in ("sft_models", "seeds", "rl_steps", "eval_interval", "eval_prompts", "jobs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    args.runs_dir = os.path.normpath(args.runs_dir)  # out/study and ./out/study: the same runs, the same keys
    if args.seeds is not None and args.seeds > 10:
        p.error("--seeds: at most 10 per SFT model (RL seed 10 j + s)")
    args.seeds = {c: args.seeds or SEEDS.get(c, OTHER_SEEDS) for c in args.configs}  # {config: seeds per SFT model}
    return args, train_flags


def main():
    args, train_flags = parse_args(sys.argv[1:])
    os.makedirs(args.results, exist_ok=True)
    path = os.path.join(args.results, "results.json")
    from study import figures  # matplotlib only inside its plot()
    if args.plot_only:
        with open(path) as f:
            results = json.load(f)
        figures.plot(results, args.results)
        return print(stats.report(results["analysis"]))
    cores = os.cpu_count() or 1
    threads = max(1, cores // args.jobs)  # one thread each on 2 cores: two that wait on each other ran slower
    jobs = rl_jobs(args)
    t0 = time.time()
    if not args.summarize:
        seconds, n = estimate(args, jobs, train_flags)
        print(f"{n} runs to train ({len(jobs) + len(args.tasks) * args.sft_models - n} finished already), "
              f"{args.jobs} at a time with {threads} thread(s) each: about {seconds / 60:.0f} min on a quiet "
              f"2-core EPYC (COST); a slower machine takes longer", flush=True)
        pool = ThreadPoolExecutor(args.jobs)
        try:
            list(pool.map(lambda job: train(*job, threads),
                          [sft_job(args, t, j, train_flags) for j in range(args.sft_models) for t in args.tasks]))
            list(pool.map(lambda job: train(*job, threads), [rl_job(args, *job, train_flags) for job in jobs]))
        finally:  # a failed run (or Ctrl-C) empties the queue; the runs under way end first
            pool.shutdown(cancel_futures=True)
    runs = finished_runs(args, train_flags)
    if not runs:
        sys.exit("error: no finished runs to summarise in " + args.runs_dir)
    results = dict(
        command=shlex.join(["python", "-m", "study.study", *sys.argv[1:]]),
        settings=dict(tasks=args.tasks, configs={c: CONFIGS[c] for c in args.configs}, sft_models=args.sft_models,
                      seeds=args.seeds, sft_steps=args.sft_steps, rl_steps=args.rl_steps,
                      eval_interval=args.eval_interval, eval_prompts=args.eval_prompts, jobs=args.jobs,
                      train_flags=train_flags),
        machine=dict(cpu=cpu_name(), cores=cores, threads_per_run=threads, python=platform.python_version(),
                     torch=__import__("torch").__version__),
        analysis=stats.analyse(runs), runs=runs)
    results["paths_figure"] = figures.path_probabilities(args.runs_dir, runs) if "sums" in runs else None
    results["distribution"] = figures.distribution()
    results["wall_clock_s"] = round(time.time() - t0)  # this call's: reused runs cost it nothing
    results["train_seconds"] = round(train_seconds(args, runs))
    text = json.dumps(results, indent=1)
    atomic_write(path, lambda tmp: write_text(tmp, text))
    try:
        figures.plot(results, args.results)
        print(f"wrote {path} and the figures ({results['wall_clock_s']} s)")
    except ImportError:
        print(f"wrote {path}; the figures need matplotlib: pip install matplotlib, then python -m study.study --plot_only")
    print(stats.report(results["analysis"]))


if __name__ == "__main__":
    main()

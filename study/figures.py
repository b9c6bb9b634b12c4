"""
The study's figures, drawn from results.json alone (so --plot_only redraws them), and the two
computations that feed them beyond the runs' metrics: one prompt's path probabilities, and
flowrl.py's distribution toy. Bands are 95% t intervals over SFT models (study/stats.py).

- curves.png: exact accuracy against RL step, a row per task, a few configurations per panel;
- tradeoff.png: the effective number and KL to pi_ref of correct paths (sums) or solutions
  (countdown) against exact accuracy, FlowRL and GRPO;
- pass_at_k.png: RL's exact pass@k minus pi_ref's, k = 1 to 256;
- paths.png: pi(y|x) of every correct derivation of one held-out sums prompt, under pi_ref,
  FlowRL and GRPO (the paper's Figure 1 on the language model);
- distribution.png: flowrl.py's toy, where each algorithm ends up over 12 answers.
"""
import os

from study.stats import ACCURACY, SPREAD, paired_t, seed_mean

PANELS = (("flowrl", "grpo"), ("flowrl", "flowrl_sum", "flowrl_beta1"),
          ("flowrl", "flowrl_logz_mean", "flowrl_raw"))  # the headline; delta's unit and beta; log Z and the reward
COLORS = dict(flowrl="tab:blue", grpo="tab:red", flowrl_sum="tab:green", flowrl_beta1="tab:purple",
              flowrl_logz_mean="tab:orange", flowrl_raw="tab:brown")
MAX_BARS = 24  # paths.png: a held-out prompt with this many correct derivations, or the nearest number


def band(task_runs, config, key):
    """Steps; at each the mean over SFT models of the seed means of key, with its 95% t interval
    (stats.paired_t; none from one SFT model); and the number of SFT models."""
    curves = [seed_mean(cs[config], key) for cs in task_runs.values() if config in cs]  # one per SFT model
    first = next(run for cs in task_runs.values() if config in cs for run in cs[config].values())
    rows = [paired_t([c[i] for c in curves]) for i in range(len(curves[0]))]
    mean = [r["difference"] for r in rows]
    lo, hi = ([r["ci95"][i] if r["ci95"] else r["difference"] for r in rows] for i in (0, 1))
    return [e["step"] for e in first["evals"]], mean, lo, hi, len(curves)


def plot(results, out):
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=110)
        plt.close(fig)

    runs = results["runs"]
    tasks = list(runs)
    present = lambda task, group: [c for c in group if any(c in cs for cs in runs[task].values())]  # noqa: E731

    fig, axes = plt.subplots(len(tasks), len(PANELS), figsize=(5 * len(PANELS), 3.6 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks):
        for ax, group in zip(row, PANELS):
            for c in present(task, group):
                steps, mean, lo, hi, n = band(runs[task], c, ACCURACY)
                ax.plot(steps, mean, color=COLORS[c], marker="o", ms=3, label=f"{c} ({n} SFT models)")
                ax.fill_between(steps, lo, hi, color=COLORS[c], alpha=0.15)
            ax.set_xlabel("RL step")
            ax.set_ylabel(f"{task}: exact accuracy")
            ax.set_title("mean over SFT models of the seed means; band: 95% t interval", fontsize=8)
            ax.legend(fontsize=7)
    save(fig, "curves.png")

    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.8 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks):
        for ax, key in zip(row, SPREAD[task]):
            for c in present(task, ("flowrl", "grpo")):
                _, acc, _, _, _ = band(runs[task], c, ACCURACY)
                _, mean, lo, hi, n = band(runs[task], c, key)
                ax.plot(acc, mean, color=COLORS[c], marker="o", ms=3, label=f"{c} ({n} SFT models)")
                ax.fill_between(acc, lo, hi, color=COLORS[c], alpha=0.15)
            ax.set_xlabel(f"{task}: exact accuracy (mean curve, from pi_ref on the left)")
            ax.set_ylabel(key)
            ax.legend(fontsize=7)
    save(fig, "tradeoff.png")

    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for c in present(task, ("flowrl", "grpo", "flowrl_beta1")):
            p = results["analysis"]["tasks"][task]["pass_at_k"][c]
            ax.plot(p["k"], [r["difference"] for r in p["rl_minus_ref"]], color=COLORS[c], marker="o", ms=3, label=c)
            if all(r["ci95"] for r in p["rl_minus_ref"]):
                ax.fill_between(p["k"], [r["ci95"][0] for r in p["rl_minus_ref"]],
                                [r["ci95"][1] for r in p["rl_minus_ref"]], color=COLORS[c], alpha=0.15)
        ax.axhline(0, color="gray", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k")
        ax.set_ylabel(f"{task}: exact pass@k, final RL minus pi_ref")
        ax.legend(fontsize=7)
    save(fig, "pass_at_k.png")

    p = results.get("paths_figure")
    if p:
        shown = [name for name in ("pi_ref", "flowrl", "grpo") if name in p["probability"]]
        order = sorted(range(len(p["derivations"])), key=lambda i: -p["probability"]["pi_ref"][i])
        fig, ax = plt.subplots(figsize=(12, 4.5))
        w = 0.8 / len(shown)
        for j, name in enumerate(shown):
            probs = [p["probability"][name][i] for i in order]
            ax.bar([i + (j - (len(shown) - 1) / 2) * w for i in range(len(order))], probs, w,
                   color="tab:gray" if name == "pi_ref" else COLORS[name], label=f"{name}: sum {sum(probs):.2g}")
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([p["derivations"][i].split(" ####")[0] for i in order], rotation=90, fontsize=6)
        ax.set_ylabel("pi(y | x)")
        ax.set_title(f"every correct derivation of the held-out prompt {p['question']} = {p['answer']}, sorted by "
                     f"pi_ref (SFT model {p['sft']}); after RL: the final checkpoint of seed {p['seed']}", fontsize=9)
        ax.legend(fontsize=8)
        save(fig, "paths.png")

    d = results["distribution"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    x, w = d["answers"], 0.27
    left.bar([i - w for i in x], d["target"], w, color="tab:gray", label="target p* = pi_ref e^(beta r) / Z")
    for j, a in enumerate(("flowrl", "grpo")):
        left.bar([i + j * w for i in x], d[a], w, color=COLORS[a], label=f"{a}: KL(policy || p*) = {d['kl_' + a]:.2g}")
        right.semilogy(range(1, len(d["kl_curve_" + a]) + 1), d["kl_curve_" + a], color=COLORS[a], label=a)
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


def path_probabilities(runs_dir, runs):
    """pi(y|x) of every correct derivation y of one held-out sums prompt x under pi_ref (SFT model
    0) and the final checkpoints of its first flowrl and grpo runs. x is the first held-out prompt
    with MAX_BARS derivations, or the nearest number (24: every order of 4 different numbers, a
    figure that reads; 120 bars would not)."""
    import torch
    from model import Transformer, read_json
    from tasks.paths import path_logprobs
    from tasks.sums import PAD, ToyTask, toy_derivations
    from training.checkpoint import load_tokenizer
    j = min(runs["sums"], key=int)
    configs = [c for c in ("flowrl", "grpo") if c in runs["sums"][j]]
    seed = min(runs["sums"][j][configs[0]], key=int) if configs else None
    dirs = {c: os.path.join(runs_dir, "sums", f"sft{j}_{c}_seed{seed}", "ckpt") for c in configs if seed in runs["sums"][j][c]}
    models = {"pi_ref": os.path.join(runs_dir, "sums", f"sft{j}", "sft"), **dirs}
    args = read_json(os.path.join(runs_dir, "sums", f"sft{j}", "ckpt", "trainer_state.json"))["args"]  # the SFT run's
    x = min(ToyTask(args["eval_prompts"]).eval_set, key=lambda p: abs(len(toy_derivations(p[0])) - MAX_BARS))
    probability = {}
    for name, path in models.items():
        model, tok = Transformer.from_pretrained(path, torch.float32).eval(), load_tokenizer(path)
        encode = lambda q: tok.encode((args["prompt_template"] or "{question}\n").replace("{question}", q)).ids  # noqa: E731
        logp = path_logprobs(model, tok, [x], encode, model.config.eos_token_id, tok.token_to_id(PAD), torch.device("cpu"))
        probability[name] = logp[0].exp().tolist()
    return dict(question=x[0], answer=x[1], sft=j, seed=seed, derivations=toy_derivations(x[0]), probability=probability)


def distribution():
    """The distribution-matching toy of flowrl.py, for each algorithm."""
    from flowrl import train_toy_distribution
    d = {a: train_toy_distribution(a) for a in ("flowrl", "grpo")}
    return dict(answers=list(range(12)), target=d["flowrl"]["target"].tolist(),
                reference=d["flowrl"]["reference"].tolist(), reward=d["flowrl"]["reward"].tolist(),
                **{a: d[a]["policy"].tolist() for a in d}, **{f"kl_{a}": d[a]["kl"] for a in d},
                **{f"kl_curve_{a}": d[a]["kl_curve"] for a in d},
                log_z=d["flowrl"]["log_z"], true_log_z=d["flowrl"]["true_log_z"])

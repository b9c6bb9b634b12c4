"""study.py: the summary statistics and the equal-accuracy comparison by hand, the flags and the
order of the runs, and a tiny study end to end (results.json against the runs, the figures)."""
import json
import math
import os
import subprocess
import sys

import pytest

from study.study import CONFIGS, METRICS, at_accuracy, equal_accuracy, job_queue, mean_std, parse_args, summarize
from conftest import ROOT



def test_mean_std_by_hand():
    # 0.5 and 0.7: mean 0.6; deviations -0.1, +0.1; sample variance (0.01 + 0.01) / (2 - 1) = 0.02
    m, s = mean_std([0.5, 0.7])
    assert m == pytest.approx(0.6) and s == pytest.approx(math.sqrt(0.02))
    assert mean_std([0.3]) == (0.3, 0.0)


def test_summary_takes_the_final_step_of_each_seed():
    def run(*accuracies, delta_abs=None):  # evaluations at steps 0, 10, ...; the other metrics fixed
        evals = [dict({m: 2.0 for m in METRICS}, step=10 * i, accuracy=a) for i, a in enumerate(accuracies)]
        return dict(evals=evals, delta_abs=delta_abs)
    runs = {"flowrl": {"0": run(0.1, 0.5, delta_abs=9.0), "1": run(0.9, 0.7, delta_abs=11.0)},
            "grpo": {"0": run(0.2, 0.6), "1": run(0.0, 0.6)},
            "flowrl_beta1": {"0": run(0.1, 0.4, delta_abs=1.0), "1": run(0.2, 0.6, delta_abs=1.0)}}
    final, diff = summarize(runs)
    # final accuracies: FlowRL 0.5, 0.7 -> 0.6 +- sqrt(0.02); GRPO 0.6, 0.6 -> 0.6 +- 0
    assert final["flowrl"]["accuracy"] == pytest.approx(dict(mean=0.6, std=math.sqrt(0.02), n=2))
    assert final["grpo"]["accuracy"] == pytest.approx(dict(mean=0.6, std=0.0, n=2))
    # difference 0, standard error sqrt(0.02 / 2 + 0 / 2) = 0.1
    assert diff["flowrl - grpo"]["accuracy"] == pytest.approx(dict(difference=0.0, stderr=0.1))
    assert final["grpo"]["distinct_correct"] == dict(mean=2.0, std=0.0, n=2)
    # |delta| of FlowRL runs only: 9 and 11 -> 10 +- sqrt(2); beta 1: 1 and 1 -> 1 +- 0;
    # beta 1 - FlowRL = -9, standard error sqrt(0 / 2 + 2 / 2) = 1
    assert final["flowrl"]["delta_abs"] == pytest.approx(dict(mean=10.0, std=math.sqrt(2), n=2))
    assert "delta_abs" not in final["grpo"] and "delta_abs" not in diff["flowrl - grpo"]
    assert diff["flowrl_beta1 - flowrl"]["delta_abs"] == pytest.approx(dict(difference=-9.0, stderr=1.0))
    # every configuration against grpo, the variants also against flowrl
    assert sorted(diff) == ["flowrl - grpo", "flowrl_beta1 - flowrl", "flowrl_beta1 - grpo"]


def test_equal_accuracy_by_hand():
    def run(accuracy, effective):
        return dict(evals=[dict(accuracy=a, paths_effective=y) for a, y in zip(accuracy, effective)])
    runs = {"flowrl": {"0": run([0.5, 0.7, 0.9], [40, 30, 20]),
                       "1": run([0.5, 0.9, 0.8], [40, 24, 10])},
            "grpo": {"0": run([0.5, 0.6, 1.0], [40, 36, 16]),
                     "1": run([0.5, 0.8, 0.7, 0.95], [40, 28, 30, 12])}}
    # a_0 = 0.5 (the SFT evaluation); a_top = min(0.9, 0.9, 1.0, 0.95) = 0.9, the highest
    # accuracy that every run reaches; 4 levels: 0.6, 0.7, 0.8, 0.9.
    # The value where a run first reaches a level, linear between the two evaluations around it:
    #   flowrl 0: 0.5 -> 0.7 -> 0.9 by 0.2, values 40 -> 30 -> 20:  35, 30, 25, 20   (mean 27.5)
    #   flowrl 1: 0.5 -> 0.9 is one segment, 40 -> 24, -4 per 0.1:  36, 32, 28, 24   (mean 30)
    #             (its fall to 0.8 afterwards does not count: it has reached 0.8 already)
    #   grpo 0:   0.6 is an evaluation: 36; then 0.6 -> 1.0, 36 -> 16, -5 per 0.1: 31, 26, 21  (mean 28.5)
    #   grpo 1:   0.5 -> 0.8, 40 -> 28, -4 per 0.1: 36, 32, 28; 0.9 first on 0.7 -> 0.95
    #             (30 -> 12): t = 0.2 / 0.25 = 0.8, 30 - 0.8 * 18 = 15.6                 (mean 27.9)
    assert at_accuracy(runs["grpo"]["1"]["evals"], "paths_effective", 0.9) == pytest.approx(15.6)
    with pytest.raises(ValueError, match="never reaches"):
        at_accuracy(runs["grpo"]["1"]["evals"], "paths_effective", 0.96)
    out = equal_accuracy(runs, "flowrl", "grpo", metrics=("paths_effective",))
    assert out["levels"] == pytest.approx([0.6, 0.7, 0.8, 0.9])
    assert out["levels"][-1] == 0.9  # exactly a_top, so that the runs whose best it is reach it
    # Two seeds: the mean of two values, and its standard error sqrt(s^2 / 2) = half their distance.
    #   level 0.6: flowrl 35, 36 -> 35.5 (0.5); grpo 36, 36 -> 36 (0); difference -0.5 (0.5)
    #   level 0.9: flowrl 20, 24 -> 22 (2); grpo 21, 15.6 -> 18.3 (2.7); 3.7 (sqrt(2^2 + 2.7^2))
    #   mean over the levels: flowrl 27.5, 30 -> 28.75 (1.25); grpo 28.5, 27.9 -> 28.2 (0.3);
    #   difference 0.55 (sqrt(1.25^2 + 0.3^2))
    def numbers(row):  # flowrl mean and SE, grpo mean and SE, difference and SE
        return [row["flowrl"]["mean"], row["flowrl"]["stderr"], row["grpo"]["mean"], row["grpo"]["stderr"],
                row["difference"], row["stderr"]]
    rows = out["paths_effective"]
    assert [row["level"] for row in rows] == [*out["levels"], "mean"]
    assert numbers(rows[0]) == pytest.approx([35.5, 0.5, 36, 0, -0.5, 0.5])
    assert numbers(rows[3]) == pytest.approx([22, 2, 18.3, 2.7, 3.7, math.sqrt(2 ** 2 + 2.7 ** 2)])
    assert numbers(rows[4]) == pytest.approx([28.75, 1.25, 28.2, 0.3, 0.55, math.sqrt(1.25 ** 2 + 0.3 ** 2)])
    # a pair in which some run never rises above the SFT accuracy has no level to compare at
    runs["grpo"]["1"] = run([0.5, 0.4], [40, 38])
    assert equal_accuracy(runs, "flowrl", "grpo", metrics=("paths_effective",)) == dict(levels=[], paths_effective=[])


def test_questions_a_and_b_run_first():
    # (c) only once every seed of (a) and (b) is done, seed by seed inside each
    assert job_queue({"flowrl": [0, 1], "grpo": [0, 1], "grpo_kl": [0, 1]}) == [
        ("flowrl", 0), ("grpo", 0), ("flowrl", 1), ("grpo", 1), ("grpo_kl", 0), ("grpo_kl", 1)]
    assert list(CONFIGS)[:2] == ["flowrl", "grpo"]
    # more seeds for some: those run after the seeds every configuration of (a) and (b) shares
    assert job_queue({"flowrl": [0, 1, 2], "flowrl_beta1": [0], "grpo_kl": [0, 1]}) == [
        ("flowrl", 0), ("flowrl_beta1", 0), ("flowrl", 1), ("flowrl", 2), ("grpo_kl", 0), ("grpo_kl", 1)]


def test_default_seeds_follow_the_power_estimate():
    # 10 seeds for flowrl and grpo (question (a)), 3 for the others; --seeds sets every configuration's
    args, _ = parse_args([])
    assert args.seeds["flowrl"] == args.seeds["grpo"] == list(range(10))
    assert all(args.seeds[c] == [0, 1, 2] for c in CONFIGS if c not in ("flowrl", "grpo"))
    args, _ = parse_args(["--seeds", "4,5", "--configs", "grpo,flowrl_sum"])
    assert args.seeds == {"grpo": [4, 5], "flowrl_sum": [4, 5]}


def test_quick_flags_come_first_so_given_flags_win():
    args, train_flags = parse_args(["--quick", "--seeds", "7", "--eval_prompts", "8", "--configs", "grpo,flowrl"])
    assert (args.seeds, args.rl_steps, args.configs) == ({"flowrl": [7], "grpo": [7]}, 10, ["flowrl", "grpo"])
    assert train_flags[-2:] == ["--eval_prompts", "8"]  # after the quick ones: train.py takes the last


@pytest.mark.parametrize("flag", ["--algo", "--beta=3", "--detach_log_z", "--seed"])
def test_flags_study_sets_cannot_be_passed_on(flag):
    r = subprocess.run([sys.executable, "-m", "study.study", flag, "1"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 2 and f"{flag.split('=')[0]} is set by study.py for each run" in r.stderr


def test_tiny_study_writes_results_and_figures(tmp_path):
    pytest.importorskip("matplotlib")
    res, runs_dir, configs = tmp_path / "results", tmp_path / "runs", ("grpo", "flowrl_sum_beta1")
    r = subprocess.run([sys.executable, "-m", "study.study", "--configs", ",".join(configs),
                        "--seeds", "0,1", "--sft_steps", "4", "--rl_steps", "2", "--eval_interval", "1", "--jobs", "2",
                        "--runs_dir", str(runs_dir), "--results", str(res),
                        "--eval_prompts", "2", "--eval_samples", "2", "--max_new_tokens", "24",
                        "--prompts_per_step", "2", "--group_size", "2"],  # unknown to study.py: go to train.py
                       capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {"results.json", "accuracy.png", "tradeoff.png", "paths.png", "distribution.png"} <= set(os.listdir(res))
    results = json.loads((res / "results.json").read_text())
    for c in configs:
        assert sorted(results["runs"][c]) == ["0", "1"]
        for seed, run in results["runs"][c].items():
            # the numbers are those of the run's own metrics.jsonl: its RL evaluations, whole
            # (the path metrics too), and |delta| over the last steps (here both of the 2)
            with open(runs_dir / f"{c}_seed{seed}" / "metrics.jsonl") as f:
                rows = [e for e in map(json.loads, f) if e["stage"] == "rl"]
            assert run["evals"] == [e for e in rows if e["phase"] == "eval"]
            assert [e["step"] for e in run["evals"]] == [0, 1, 2]  # the shared SFT model, then each RL step
            assert all(m in run["evals"][-1] for m in METRICS)
            deltas = [e["delta_abs"] for e in rows if e["phase"] == "train" and "delta_abs" in e]
            assert run["delta_abs"] == (None if c == "grpo" else pytest.approx(sum(deltas) / 2))
            # each run was trained with its configuration's flags and its own seed
            with open(runs_dir / f"{c}_seed{seed}" / "ckpt" / "trainer_state.json") as f:
                saved = json.load(f)["args"]
            assert (saved["algo"], saved["seed"], saved["beta"], saved["logp_norm"]) == (
                ("grpo", int(seed), 15.0, "mean") if c == "grpo" else ("flowrl", int(seed), 1.0, "sum"))
    assert results["final"] == summarize(results["runs"])[0]
    assert list(results["differences"]) == ["flowrl_sum_beta1 - grpo"]
    assert "flowrl_sum_beta1 - grpo" in results["equal_accuracy"]
    assert results["settings"]["train_flags"][:2] == ["--eval_prompts", "2"]
    # the figure's prompt: pi(y|x) of each of its correct derivations, under pi_ref and each run
    p = results["paths_figure"]
    assert sorted(p["probability"]) == ["flowrl_sum_beta1", "grpo", "pi_ref"]
    for probs in p["probability"].values():
        assert len(probs) == len(p["derivations"]) and 0 < sum(probs) <= 1
    assert results["distribution"]["kl_flowrl"] < 1e-4 < 1 < results["distribution"]["kl_grpo"]
    # every run starts from the same SFT model, evaluated on the same problems with the same samples
    assert len({json.dumps(run["evals"][0]) for c in configs for run in results["runs"][c].values()}) == 1


def test_the_committed_results_are_written_only_when_named():
    # a study without --results writes into out/study/results, never over study/results
    assert parse_args([])[0].results == os.path.join("out", "study", "results")

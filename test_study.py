"""study.py: the summary statistics by hand, and a tiny study end to end (results.json, figures)."""
import json
import math
import os
import subprocess
import sys

import pytest

from study import METRICS, mean_std, summarize

HERE = os.path.dirname(os.path.abspath(__file__))


def test_mean_std_by_hand():
    # 0.5 and 0.7: mean 0.6; deviations -0.1, +0.1; sample variance (0.01 + 0.01) / (2 - 1) = 0.02
    m, s = mean_std([0.5, 0.7])
    assert m == pytest.approx(0.6) and s == pytest.approx(math.sqrt(0.02))
    assert mean_std([0.3]) == (0.3, 0.0)


def test_summary_takes_the_final_step_of_each_seed():
    def run(*accuracies):  # evaluations at steps 0, 10, ...; the other metrics fixed
        return [dict(step=10 * i, accuracy=a, pass_at_k=1.0, distinct_correct=2.0, greedy_accuracy=0.5)
                for i, a in enumerate(accuracies)]
    runs = {"flowrl": {"0": run(0.1, 0.5), "1": run(0.9, 0.7)}, "grpo": {"0": run(0.2, 0.6), "1": run(0.0, 0.6)}}
    final, diff = summarize(runs)
    # final accuracies: FlowRL 0.5, 0.7 -> 0.6 +- sqrt(0.02); GRPO 0.6, 0.6 -> 0.6 +- 0
    assert final["flowrl"]["accuracy"] == pytest.approx(dict(mean=0.6, std=math.sqrt(0.02)))
    assert final["grpo"]["accuracy"] == pytest.approx(dict(mean=0.6, std=0.0))
    # difference 0, standard error sqrt(0.02 / 2 + 0 / 2) = 0.1
    assert diff["accuracy"] == pytest.approx(dict(flowrl_minus_grpo=0.0, stderr=0.1))
    assert final["grpo"]["distinct_correct"] == dict(mean=2.0, std=0.0)


def test_flags_study_sets_cannot_be_passed_on():
    r = subprocess.run([sys.executable, os.path.join(HERE, "study.py"), "--algo", "grpo"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--algo is set by study.py for each run" in r.stderr


def test_tiny_study_writes_results_and_figures(tmp_path):
    pytest.importorskip("matplotlib")
    res = tmp_path / "results"
    r = subprocess.run([sys.executable, os.path.join(HERE, "study.py"), "--seeds", "0,1", "--sft_steps", "4",
                        "--rl_steps", "2", "--jobs", "1", "--runs_dir", str(tmp_path / "runs"), "--results", str(res),
                        "--eval_interval", "1", "--eval_prompts", "2", "--eval_samples", "2", "--max_new_tokens", "24",
                        "--prompts_per_step", "2", "--group_size", "2"],  # unknown to study.py: go to train.py
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {"results.json", "accuracy.png", "distinct_correct.png", "distribution.png"} <= set(os.listdir(res))
    results = json.loads((res / "results.json").read_text())
    for algo in ("flowrl", "grpo"):
        assert sorted(results["runs"][algo]) == ["0", "1"]
        for seed, evals in results["runs"][algo].items():
            assert [e["step"] for e in evals] == [0, 1, 2]  # the shared SFT model, then each RL step
            # the numbers are those of the run's own metrics.jsonl
            with open(tmp_path / "runs" / f"{algo}_seed{seed}" / "metrics.jsonl") as f:
                last = [e for e in map(json.loads, f) if e["phase"] == "eval"][-1]
            assert all(evals[-1][m] == last[m] for m in METRICS)
    for algo in ("flowrl", "grpo"):  # each run was trained with its own algorithm and seed
        for seed in ("0", "1"):
            with open(tmp_path / "runs" / f"{algo}_seed{seed}" / "ckpt" / "trainer_state.json") as f:
                saved = json.load(f)["args"]
            assert (saved["algo"], saved["seed"]) == (algo, int(seed))
    assert results["final"] == summarize(results["runs"])[0]
    assert results["settings"]["train_flags"][:2] == ["--eval_interval", "1"]
    assert results["distribution"]["kl_flowrl"] < 1e-4 < 1 < results["distribution"]["kl_grpo"]
    # every run starts from the same SFT model, evaluated on the same problems with the same samples
    assert len({json.dumps(evals[0]) for a in ("flowrl", "grpo") for evals in results["runs"][a].values()}) == 1

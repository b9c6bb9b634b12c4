"""The study (study/study.py, study/stats.py, study/figures.py): its statistics by hand (t, Holm,
the monotone fit, the equal-accuracy reading, exact pass@k), the design and queue, reuse of
finished runs, and a tiny study of both tasks end to end (results.json against the runs)."""
import json
import math
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from study import stats
from study.study import CONFIGS, HEADLINE, TASKS, finished, parse_args, rl_job, rl_jobs


def test_mean_std_by_hand():
    # 0.5 and 0.7: mean 0.6; deviations -0.1, +0.1; sample variance (0.01 + 0.01) / (2 - 1) = 0.02
    m, s = stats.mean_std([0.5, 0.7])
    assert m == pytest.approx(0.6) and s == pytest.approx(math.sqrt(0.02))
    assert stats.mean_std([0.3]) == (0.3, 0.0)


def test_t_distribution_against_closed_forms_and_tables():
    # df 1 is Cauchy: P(T <= t) = 1/2 + atan(t) / pi; df 2: 1/2 + t / (2 sqrt(2 + t^2))
    for t in (-3.0, -0.5, 0.0, 0.7, 2.0, 10.0):
        assert stats.t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-9)
        assert stats.t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-9)
    # far in the tails too, where a plain integral of the density loses its accuracy:
    # P(T > t) = 1/2 - atan(t) / pi (df 1); 1/2 - t / (2 sqrt(2 + t^2)) (df 2)
    for t in (1e3, 1e4, 1e8):
        assert 1 - stats.t_cdf(t, 1) == pytest.approx(0.5 - math.atan(t) / math.pi, rel=1e-6)
        assert 1 - stats.t_cdf(t, 2) == pytest.approx(0.5 - t / (2 * math.sqrt(2 + t * t)), rel=1e-3, abs=1e-15)
        assert 0 <= stats.t_cdf(t, 5) <= 1 and stats.t_cdf(-t, 5) >= 0
    # the 97.5% points of any t table
    for df, q in ((1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (9, 2.2622), (30, 2.0423)):
        assert stats.t_quantile(0.975, df) == pytest.approx(q, abs=1e-4)


def test_paired_t_by_hand():
    # d = 1, 2, 3 (one per SFT model): mean 2, sample sd 1, standard error 1 / sqrt(3) = 0.57735, df 2.
    # t = 2 / 0.57735 = sqrt(12); P(T <= sqrt 12) = 1/2 + sqrt 12 / (2 sqrt 14) = 0.962910, so p = 0.074180.
    # 95% interval: 2 -+ 4.302653 x 0.57735 = 2 -+ 2.484138
    r = stats.paired_t([1.0, 2.0, 3.0])
    assert (r["difference"], r["df"], r["n"]) == (2.0, 2, 3)
    assert r["stderr"] == pytest.approx(1 / math.sqrt(3))
    assert r["p"] == pytest.approx(0.074180, abs=1e-6)
    assert r["ci95"] == pytest.approx([2 - 2.484138, 2 + 2.484138], abs=1e-5)
    # one SFT model: a difference, no interval; none: nothing
    assert stats.paired_t([0.4])["ci95"] is None and stats.paired_t([0.4])["difference"] == 0.4
    assert stats.paired_t([])["difference"] is None
    # near-equal values far from 0: a huge t, and p stays in [0, 1]
    assert 0 <= stats.paired_t([0.9990, 0.9992, 0.9991, 0.9993])["p"] < 1e-6
    # no spread: p 0 for a non-zero difference, 1 for zero
    assert stats.paired_t([0.5, 0.5])["p"] == 0.0 and stats.paired_t([0.0, 0.0])["p"] == 1.0


def test_holm_by_hand():
    # sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to the running max 0.06
    assert stats.holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert stats.holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1


def test_pava_by_hand():
    assert stats.pava([1, 3, 2, 4]) == [1, 2.5, 2.5, 4]  # 3 > 2 pool to 2.5
    assert stats.pava([3, 1, 2]) == [2, 2, 2]  # 3, 1 -> 2, 2; then 2 <= 2
    assert stats.pava([5, 4, 3]) == [4, 4, 4]
    assert stats.pava([0.1, 0.2]) == [0.1, 0.2]


def test_read_at_by_hand():
    # 0.5 -> 0.7 -> 0.9 with values 40 -> 30 -> 20: level 0.6 is halfway along the first segment: 35;
    # 0.9 is the last evaluation itself: 20; 0.5 is already the first: 40
    acc, y = [0.5, 0.7, 0.9], [40, 30, 20]
    assert [stats.read_at(acc, y, x) for x in (0.6, 0.9, 0.5, 0.3)] == pytest.approx([35, 20, 40, 40])
    with pytest.raises(ValueError, match="never reaches"):
        stats.read_at(acc, y, 0.95)


def run(exact, metric, key="paths_effective", **extra):
    """A run's evaluations: pass_exact_at_1 and one metric per step, other keys fixed."""
    return dict(evals=[{stats.ACCURACY: a, key: m, "step": 10 * i, **extra} for i, (a, m) in enumerate(zip(exact, metric))])


def test_equal_accuracy_by_hand():
    # a: two seeds. Accuracy 0.2 0.4 0.6 and 0.2 0.6 0.5 -> mean 0.2 0.5 0.55 (already non-decreasing);
    #    metric 10 8 6 and 10 6 7 -> mean 10 7 6.5.
    # b: one seed, accuracy 0.2 0.3 0.6, metric 10 9 4.
    # start = max(0.2, 0.2), top = min(0.55, 0.6) = 0.55; levels 0.2 + 0.35 k / 4 = 0.2875 0.375 0.4625 0.55.
    #   a: 0.2 -> 0.5 (10 -> 7): 0.2875 at 0.0875 / 0.3 = 0.291667: 9.125; 0.375: 8.25; 0.4625: 7.375;
    #      0.55 is the third evaluation: 6.5
    #   b: 0.2 -> 0.3 (10 -> 9): 0.2875 at 0.875: 9.125; 0.3 -> 0.6 (9 -> 4): 0.375 at 0.25: 7.75;
    #      0.4625 at 0.541667: 6.291667; 0.55 at 0.833333: 4.833333
    a = {"0": run([0.2, 0.4, 0.6], [10, 8, 6]), "1": run([0.2, 0.6, 0.5], [10, 6, 7])}
    b = {"0": run([0.2, 0.3, 0.6], [10, 9, 4])}
    levels, ya, yb = stats.equal_accuracy(a, b, "paths_effective")
    assert levels == pytest.approx([0.2875, 0.375, 0.4625, 0.55]) and levels[-1] == 0.55
    assert ya == pytest.approx([9.125, 8.25, 7.375, 6.5])
    assert yb == pytest.approx([9.125, 7.75, 6.291667, 4.833333], abs=1e-6)
    # a dip is fitted monotone first: mean accuracy 0.2 0.5 0.4 -> 0.2 0.45 0.45 (top 0.45)
    dip = {"0": run([0.2, 0.5, 0.4], [10, 8, 6])}
    levels, ya, _ = stats.equal_accuracy(dip, b, "paths_effective")
    assert levels[-1] == pytest.approx(0.45) and ya[-1] == pytest.approx(8)  # 0.45 first at the second evaluation
    # no accuracy gained: no levels
    assert stats.equal_accuracy({"0": run([0.3, 0.2], [1, 1])}, b, "paths_effective") == ([], [], [])


def test_equal_accuracy_is_not_moved_by_speed():
    # Two configurations on one curve, metric = 40 - 50 accuracy, the second three times slower: at
    # equal accuracy the metric is the same, so every level's difference is 0 (the reading is
    # linear between evaluations, exact on a line).
    fast = {"0": run([0.2, 0.5, 0.7, 0.8], [40 - 50 * a for a in (0.2, 0.5, 0.7, 0.8)])}
    slow = {"0": run([0.2, 0.3, 0.4, 0.5, 0.6, 0.7], [40 - 50 * a for a in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)])}
    levels, ya, yb = stats.equal_accuracy(fast, slow, "paths_effective")
    assert len(levels) == 4 and ya == pytest.approx(yb)


def test_pass_curve_by_hand(tmp_path):
    # problem 1: two correct derivations of probability 1/4 each, mass 1/2; problem 2: mass 1.
    # pass@k = mean of 1 - (1 - mass)^k: k = 1: (1/2 + 1) / 2 = 0.75; k = 2: (3/4 + 1) / 2 = 0.875;
    # k = 256: (1 - 2^-256 + 1) / 2
    path = tmp_path / "rl_0.json"
    path.write_text(json.dumps(dict(problems=[dict(derivations=[["a", math.log(0.25)], ["b", math.log(0.25)]]),
                                              dict(derivations=[["c", 0.0]])])))
    curve = stats.pass_curve(path)
    assert stats.PASS_KS == (1, 2, 4, 8, 16, 32, 64, 128, 256)
    assert curve[:2] == pytest.approx([0.75, 0.875]) and curve[-1] == pytest.approx(1.0)


def test_analysis_by_hand():
    # Two SFT models, flowrl and grpo; final exact accuracy per seed:
    #   SFT 0: flowrl 0.5 and 0.7 (mean 0.6), grpo 0.6 -> d_0 = 0.0
    #   SFT 1: flowrl 0.4, grpo 0.2 and 0.4 (mean 0.3) -> d_1 = 0.1
    # difference 0.05; sd of (0, 0.1) = 0.0707107, standard error 0.05, df 1:
    # 95% interval 0.05 -+ 12.7062 x 0.05; p = 2 (1 - P(T <= 1)) = 2 (1/2 - atan(1) / pi) = 0.5
    def r(final):
        return dict(run([0.1, final], [5, 5], accuracy=0.0, pass_exact_at_256=1.0, greedy_accuracy=0.0,
                        paths_kl_ref=0.0), delta_abs=None, pass_curve=dict(ref=[0.1] * 9, last=[final] * 9))
    runs = {"sums": {"0": {"flowrl": {"0": r(0.5), "1": r(0.7)}, "grpo": {"0": r(0.6)}},
                     "1": {"flowrl": {"10": r(0.4)}, "grpo": {"10": r(0.2), "11": r(0.4)}}}}
    out = stats.analyse(runs)
    t = next(t for t in out["tests"] if t["metric"] == stats.ACCURACY)
    assert (t["pair"], t["family"], t["at"]) == ("flowrl - grpo", "headline", "final")
    assert t["per_sft"] == pytest.approx([0.0, 0.1]) and t["difference"] == pytest.approx(0.05)
    assert t["ci95"] == pytest.approx([0.05 - 12.7062 * 0.05, 0.05 + 12.7062 * 0.05], abs=1e-4)
    assert t["p"] == pytest.approx(0.5, abs=1e-9)
    # the final mean of flowrl: over SFT models of the seed means, (0.6 + 0.4) / 2
    assert out["tasks"]["sums"]["final"]["flowrl"][stats.ACCURACY]["difference"] == pytest.approx(0.5)
    # pass@k against pi_ref: flowrl (0.6 - 0.1 + 0.4 - 0.1) / 2 = 0.4 at every k; never below
    p = out["tasks"]["sums"]["pass_at_k"]["flowrl"]
    assert p["rl_minus_ref"][0]["difference"] == pytest.approx(0.4) and p["below_ref"] == []
    # equal accuracy: the metric is 5 everywhere, so 0 on both SFT models
    eq = next(t for t in out["tests"] if t["metric"] == "paths_effective")
    assert eq["per_sft"] == [0.0, 0.0] and len(eq["levels"]) == 2
    # Holm within the headline family, which holds these four tests of one task: p = 0.5 for the
    # accuracy, 1 for the rest (d = 0 on both SFT models): 4 x 0.5 = 2, capped at 1
    assert [t["family"] for t in out["tests"]] == ["headline"] * 4
    assert [t["p"] for t in out["tests"]] == pytest.approx([0.5, 1, 1, 1]) and [t["p_holm"] for t in out["tests"]] == [1.0] * 4
    assert t["sft"] == ["0", "1"]  # which SFT model each d_j is from


def test_queue_is_balanced_round_by_round():
    # round 0: one seed of every configuration on every SFT model; then the headline's second seeds
    args, _ = parse_args(["--tasks", "sums", "--sft_models", "2", "--configs", "flowrl,grpo,flowrl_raw"])
    assert rl_jobs(args) == [("sums", 0, "flowrl", 0), ("sums", 0, "grpo", 0), ("sums", 0, "flowrl_raw", 0),
                             ("sums", 1, "flowrl", 10), ("sums", 1, "grpo", 10), ("sums", 1, "flowrl_raw", 10),
                             ("sums", 0, "flowrl", 1), ("sums", 0, "grpo", 1),
                             ("sums", 1, "flowrl", 11), ("sums", 1, "grpo", 11)]


def test_design_defaults_and_flags():
    args, _ = parse_args([])
    assert list(TASKS) == args.tasks == ["sums", "countdown"] and args.sft_models == 4 and args.eval_prompts == 128
    assert HEADLINE == ("flowrl", "grpo") and args.seeds["flowrl"] == args.seeds["grpo"] == 2
    assert all(args.seeds[c] == 1 for c in CONFIGS if c not in HEADLINE)
    assert parse_args(["--seeds", "4", "--configs", "grpo,flowrl_sum"])[0].seeds == {"grpo": 4, "flowrl_sum": 4}
    args, train_flags = parse_args(["--quick", "--seeds", "3", "--max_new_tokens", "8"])
    assert (args.seeds["flowrl"], args.rl_steps, args.tasks) == (3, 10, ["sums"]) and train_flags == ["--max_new_tokens", "8"]
    assert args.runs_dir == os.path.join("out", "study_quick")  # never over a full study's runs
    # a study without --results writes into out/study/results, never over study/results
    assert parse_args([])[0].results == os.path.join("out", "study", "results")


@pytest.mark.parametrize("flag, full", [("--algo", "--algo"), ("--beta=3", "--beta"), ("--log_z", "--log_z"),
                                        ("--seed", "--seed"), ("--task", "--task"),
                                        # train.py reads abbreviations: these would override each run's flags
                                        ("--alg", "--algo"), ("--see", "--seed"), ("--rl_step", "--rl_steps")])
def test_flags_study_sets_cannot_be_passed_on(flag, full):
    r = subprocess.run([sys.executable, "-m", "study.study", flag, "1"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 2 and f"{full} is set by study.py for each run" in r.stderr


def test_an_rl_run_is_keyed_by_its_sft_model(tmp_path):
    # another --sft_steps retrains the SFT model: its RL runs are then not the same runs, though
    # their own flags (--init_from the same folder) are
    args, flags = parse_args(["--runs_dir", str(tmp_path)])
    other, _ = parse_args(["--runs_dir", str(tmp_path), "--sft_steps", "300"])
    (_, rl, key), (_, rl2, key2) = rl_job(args, "sums", 0, "flowrl", 0, flags), rl_job(other, "sums", 0, "flowrl", 0, flags)
    assert rl == rl2 and key != key2 and key["sft_sha256"] is None  # no SFT model yet
    # and by its weights: an SFT model retrained with the same flags gives another checksum
    model = tmp_path / "sums" / "sft0" / "sft"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"one")
    first = rl_job(args, "sums", 0, "flowrl", 0, flags)[2]
    # the same folder spelled another way is the same runs
    assert rl_job(parse_args(["--runs_dir", str(tmp_path) + "/."])[0], "sums", 0, "flowrl", 0, flags)[2] == first
    (model / "model.safetensors").write_bytes(b"two")
    assert first["sft_sha256"] and first != rl_job(args, "sums", 0, "flowrl", 0, flags)[2]


def test_a_run_is_reused_only_with_its_key(tmp_path):
    assert not finished(tmp_path, ["--seed", "0"])  # no study.json: not finished
    (tmp_path / "study.json").write_text(json.dumps(dict(key=["--seed", "0"], seconds=1.0, threads=1)))
    assert finished(tmp_path, ["--seed", "0"]) and not finished(tmp_path, ["--seed", "1"])


def test_tiny_study_of_both_tasks(tmp_path):
    pytest.importorskip("matplotlib")
    res, runs_dir = tmp_path / "results", tmp_path / "runs"
    cmd = [sys.executable, "-m", "study.study", "--configs", "flowrl,grpo", "--sft_models", "2", "--seeds", "1",
           "--sft_steps", "4", "--rl_steps", "2", "--eval_interval", "1", "--eval_prompts", "2", "--jobs", "2",
           "--runs_dir", str(runs_dir), "--results", str(res),
           "--eval_samples", "2", "--max_new_tokens", "24", "--prompts_per_step", "2", "--group_size", "2"]  # to train.py
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "12 runs to train (0 finished already)" in r.stdout  # 2 tasks x 2 SFT models x (1 + 2 configurations)
    assert {"results.json", "curves.png", "tradeoff.png", "pass_at_k.png", "paths.png", "distribution.png"} <= set(os.listdir(res))
    results = json.loads((res / "results.json").read_text())
    assert sorted(results["runs"]) == ["countdown", "sums"]
    for task, models in results["runs"].items():
        assert sorted(models) == ["0", "1"]
        for j, configs in models.items():
            step0 = set()
            for c, seeds in configs.items():
                (seed, run), = seeds.items()
                assert seed == str(10 * int(j))  # RL seed 10 j + s
                d = runs_dir / task / f"sft{j}_{c}_seed{seed}"
                with open(d / "metrics.jsonl") as f:
                    rows = [e for e in map(json.loads, f) if e["stage"] == "rl"]
                assert run["evals"] == [e for e in rows if e["phase"] == "eval"]  # the run's own numbers, whole
                assert [e["step"] for e in run["evals"]] == [0, 1, 2]
                assert run["pass_curve"]["last"] == pytest.approx(stats.pass_curve(d / "exact" / "rl_2.json"))
                assert run["pass_curve"]["last"][0] == pytest.approx(run["evals"][-1][stats.ACCURACY])  # k = 1
                with open(d / "ckpt" / "trainer_state.json") as f:
                    saved = json.load(f)["args"]
                assert (saved["task"], saved["algo"], saved["seed"]) == (task, c, int(seed))
                assert saved["init_from"].endswith(os.path.join(task, f"sft{j}", "sft"))
                step0.add(json.dumps({k: v for k, v in run["evals"][0].items() if "paths" in k or "solutions" in k}))
            assert len(step0) == 1  # the runs of one SFT model start from one pi_ref: the same exact metrics
    # the analysis recomputes from the runs in results.json
    assert results["analysis"] == json.loads(json.dumps(stats.analyse(results["runs"])))
    headline = [t for t in results["analysis"]["tests"] if t["family"] == "headline"]
    assert {t["task"] for t in headline} == {"sums", "countdown"} and all(t["n"] <= 2 for t in headline)
    # run again: every run is reused, and a summary of what finished needs no training
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert again.returncode == 0 and "0 runs to train (12 finished already)" in again.stdout, again.stdout + again.stderr
    summary = subprocess.run(cmd + ["--summarize", "--seeds", "2"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert summary.returncode == 0, summary.stdout + summary.stderr
    assert "runs to train" not in summary.stdout  # a second seed was asked for: summarised without it
    assert all(len(seeds) == 1 for models in json.loads((res / "results.json").read_text())["runs"].values()
               for configs in models.values() for seeds in configs.values())

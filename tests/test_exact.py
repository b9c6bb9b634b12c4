"""The exact solution-level metrics (tasks/paths.py): solution probabilities, pass_exact_at_k and
distinct_at_k by hand, exact probabilities against sampling frequencies on a trained tiny model
(derivations and solutions), and the exact/<stage>_<step>.json a run writes."""
import json
import math
import os
from collections import Counter

import pytest
import torch

import train
from conftest import TINY
from model import ModelConfig, Transformer
from sample import generate, rollout_of, token_logprobs
from tasks.countdown_toy import ToyCountdownTask, question, solution_of, teacher, toy_countdown_tokenizer
from tasks.paths import pass_metrics, path_logprobs, path_metrics, solution_logprobs, solution_metrics

LOG = lambda *p: torch.tensor(p, dtype=torch.float64).log()  # noqa: E731


def test_solution_probabilities_and_metrics_by_hand():
    # derivations with probabilities 0.2, 0.3 (solution 0) and 0.25 (solution 1):
    #   p = [0.5, 0.25], mass 0.75, q = [2/3, 1/3], top_share 2/3
    #   effective = exp(-(2/3 ln 2/3 + 1/3 ln 1/3)) = exp(0.636514) = 1.889882
    #   pass_exact_at_k = 1 - 0.25^k: k=1 0.75, k=4 0.99609375
    #   distinct_at_k = (1 - 0.5^k) + (1 - 0.75^k): k=1 0.75, k=4 0.9375 + 0.68359375 = 1.62109375
    # against a reference with q_ref = [1/2, 1/2]: KL = 2/3 ln(4/3) + 1/3 ln(2/3) = 0.056633
    logp, groups = [LOG(0.2, 0.3, 0.25)], [torch.tensor([0, 0, 1])]
    torch.testing.assert_close(solution_logprobs(logp, groups)[0].exp(), torch.tensor([0.5, 0.25], dtype=torch.float64))
    m = solution_metrics(logp, [LOG(0.1, 0.1, 0.2)], groups)
    assert m["solutions_mass"] == pytest.approx(0.75) and m["solutions_count"] == 2
    assert m["solutions_top_share"] == pytest.approx(2 / 3)
    assert m["solutions_effective"] == pytest.approx(1.889882, abs=1e-6)
    assert m["solutions_kl_ref"] == pytest.approx(2 / 3 * math.log(4 / 3) + 1 / 3 * math.log(2 / 3))
    assert m["pass_exact_at_1"] == pytest.approx(0.75) and m["pass_exact_at_4"] == pytest.approx(0.99609375)
    assert m["distinct_at_1"] == pytest.approx(0.75) and m["distinct_at_4"] == pytest.approx(1.62109375)
    assert m["distinct_at_256"] == pytest.approx(2.0) and m["pass_exact_at_256"] == pytest.approx(1.0)


def test_pass_and_distinct_over_paths_and_tiny_probabilities():
    # on the sums every path is its own solution: distinct_at_1 = mass. Two prompts, one with
    # paths [0.5, 0.5] (pass 1 at any k, distinct_at_4 = 2 (1 - 1/16) = 1.875) and one with a
    # single path of probability 1e-20, where 1 - (1 - p)^k is k p to double precision (a naive
    # 1 - (1 - p)**k gives 0): pass_exact_at_256 = (1 + 256e-20) / 2
    logp = [LOG(0.5, 0.5), LOG(1e-20)]
    m = {**path_metrics(logp, logp), **pass_metrics(logp)}
    assert m["distinct_at_1"] == pytest.approx(m["paths_mass"])
    assert m["distinct_at_4"] == pytest.approx((1.875 + 4e-20) / 2)
    assert m["pass_exact_at_256"] - 0.5 == pytest.approx(128e-20, rel=1e-9)


@pytest.fixture(scope="module")
def trained():
    """A tiny model taught 1 2 3:6 by the teacher (no slips) until much of its mass is on the
    correct derivations, and its tokenizer."""
    torch.manual_seed(0)
    tok = toy_countdown_tokenizer()
    model = Transformer(ModelConfig(vocab_size=tok.get_vocab_size(), n_embd=64, n_layer=2, n_head=2, n_kv_head=1,
                                    intermediate_size=128, max_seq_len=48, eos_token_id=1))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    rng = __import__("random").Random(0)
    prompt = tok.encode(question([1, 2, 3], 6) + "\n").ids
    for _ in range(250):
        batch = rollout_of([prompt] * 32, [tok.encode(teacher([1, 2, 3], 6, rng)).ids + [1] for _ in range(32)], 0, 1, "cpu")
        loss = -token_logprobs(model, batch).logp.sum() / batch.response_mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), tok, prompt


def test_exact_probabilities_match_sampling_frequencies(trained):
    # each derivation's exact pi(y|x) and each solution's sum against their frequencies in
    # n = 12,000 samples, within 4 standard errors sqrt(p (1 - p) / n)
    model, tok, prompt = trained
    problem = (question([1, 2, 3], 6), ([1, 2, 3], 6))
    [logp] = path_logprobs(model, tok, [problem], lambda q: tok.encode(q + "\n").ids, 1, 0, torch.device("cpu"),
                           derivations=ToyCountdownTask.derivations)
    names, index = ToyCountdownTask.solutions(problem)
    [log_ps] = solution_logprobs([logp], [torch.tensor(index)])
    n = 12_000
    r = generate(model, [prompt] * n, 20, eos_id=1, pad_id=0, generator=torch.Generator().manual_seed(1))
    texts = [tok.decode(r.response_ids[i, :int(r.response_mask[i].sum())].tolist()) for i in range(n)]
    by_text, by_solution = Counter(texts), Counter(solution_of(t, [1, 2, 3], 6) for t in texts)
    derivations = ToyCountdownTask.derivations(problem)
    assert logp.exp().sum() > 0.2  # the test means something: a fifth of the samples or more are correct derivations
    for d, p in zip(derivations, logp.exp().tolist()):
        assert abs(by_text[d] / n - p) < 4 * math.sqrt(p * (1 - p) / n) + 1 / n, d
    for s, p in zip(names, log_ps.exp().tolist()):
        assert abs(by_solution[s] / n - p) < 4 * math.sqrt(p * (1 - p) / n) + 1 / n, s
    correct = sum(by_solution[s] for s in names)
    assert abs(correct / n - logp.exp().sum().item()) < 4 * math.sqrt(0.25 / n)


def test_a_countdown_run_writes_the_exact_numbers(tmp_path):
    out = str(tmp_path / "run")
    train.main(["--out_dir", out, "--task", "countdown", *TINY])
    with open(os.path.join(out, "metrics.jsonl")) as f:
        evals = [r for r in map(json.loads, f) if r["phase"] == "eval"]
    assert [(r["stage"], r["step"]) for r in evals] == [("sft", 12), ("rl", 2), ("rl", 4)]
    assert sorted(os.listdir(os.path.join(out, "exact"))) == ["rl_2.json", "rl_4.json", "sft_12.json"]
    for r in evals:
        with open(os.path.join(out, "exact", f"{r['stage']}_{r['step']}.json")) as f:
            saved = json.load(f)
        task = ToyCountdownTask(3)
        assert [p["question"] for p in saved["problems"]] == [q for q, _ in task.eval_set]
        # the metrics recompute from the file: solution probabilities, then the mass and counts
        mass = [sum(p for _, p in row["solutions"]) for row in saved["problems"]]
        assert r["solutions_mass"] == pytest.approx(sum(mass) / len(mass), rel=1e-9)
        assert r["solutions_count"] == pytest.approx(sum(len(row["solutions"]) for row in saved["problems"]) / 3)
        for row, problem in zip(saved["problems"], task.eval_set):
            assert [t for t, _ in row["derivations"]] == ToyCountdownTask.derivations(problem)
            assert row["prompt"] == problem[0] + "\n"
    assert evals[0]["solutions_kl_ref"] == 0.0  # the SFT model is pi_ref

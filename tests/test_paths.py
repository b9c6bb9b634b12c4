"""
Tests for tasks/paths.py (exact path metrics) and tasks.sums.toy_derivations (the paths it enumerates):
the metrics against values worked out by hand, the probabilities against a token-by-token
recompute and against sampling frequencies.

Run: python -m pytest -q tests/test_paths.py
"""
import math
import random

import pytest
import torch

from model import ModelConfig, Transformer
from tasks.paths import path_logprobs, path_metrics
from reward import math_reward
from sample import generate, rollout_of, token_logprobs
from tasks.sums import EOS, PAD, TOY_MODEL, ToyTask, toy_derivations, toy_solution, train_toy_tokenizer

CPU = torch.device("cpu")
TOK = train_toy_tokenizer()
EOS_ID, PAD_ID = TOK.token_to_id(EOS), TOK.token_to_id(PAD)


def encode(question):  # train.py's default prompt template, "{question}\n"
    return TOK.encode(question + "\n").ids


# ----------------------------------------------------------------------------------------------
# the enumerated paths

def test_derivations_of_repeated_numbers():
    # A derivation writes every number out: "a+b=s1,s1+c=s2,s2+d=s3 #### s3" shows a, b, c, d
    # in order, so two different orders never give the same text, even where partial sums
    # coincide. The count is that of the distinct orders of the multiset:
    #   1+1+2+2:   4! / (2! 2!) = 6, namely (first number pair, then the rest)
    #              1,1,2,2  1,2,1,2  1,2,2,1  2,1,1,2  2,1,2,1  2,2,1,1
    #              ("1+2=3,3+1=4,4+2=6" and "2+1=3,3+1=4,4+2=6" share every partial sum and
    #              still differ in their first step)
    #   3+5+2+7:   4! = 24;   1+2+2+3+3: 5! / (2! 2!) = 30;   9+9+9+9+9: 5! / 5! = 1
    assert toy_derivations("1+1+2+2") == [
        "1+1=2,2+2=4,4+2=6 #### 6", "1+2=3,3+1=4,4+2=6 #### 6", "1+2=3,3+2=5,5+1=6 #### 6",
        "2+1=3,3+1=4,4+2=6 #### 6", "2+1=3,3+2=5,5+1=6 #### 6", "2+2=4,4+1=5,5+1=6 #### 6"]
    assert [len(toy_derivations(q)) for q in ("3+5+2+7", "1+2+2+3+3", "9+9+9+9+9")] == [24, 30, 1]
    # every one is correct, and they are exactly the completions the SFT teacher writes
    # without a slip (one formatting function for both)
    question = "3+5+2+7"
    paths = toy_derivations(question)
    assert all(math_reward(p, "17") == 1.0 for p in paths)
    rng = random.Random(0)
    assert {toy_solution(question, rng) for _ in range(2000)} == set(paths)


# ----------------------------------------------------------------------------------------------
# path_metrics: a worked example

def test_path_metrics_by_hand():
    # Prompt 1, three paths: pi = [0.4, 0.2, 0.2], pi_ref = [0.1, 0.1, 0.1]
    #   mass = 0.8, q = [1/2, 1/4, 1/4], q_ref = [1/3, 1/3, 1/3]
    #   entropy = 1/2 ln 2 + 2 * 1/4 ln 4 = 1/2 ln 2 + ln 2 = 1.5 ln 2
    #   effective = exp(1.5 ln 2) = 2^1.5 = 2 sqrt(2) = 2.828427,  top share = 1/2
    #   KL(q || q_ref) = sum q ln(3 q) = ln 3 - entropy = ln 3 - 1.5 ln 2 = 0.058892
    # Prompt 2, two paths: pi = [0.3, 0.3], pi_ref = [0.09, 0.01]
    #   mass = 0.6, q = [1/2, 1/2], q_ref = [0.9, 0.1]
    #   effective = exp(ln 2) = 2,  top share = 1/2
    #   KL = 1/2 ln(0.5 / 0.9) + 1/2 ln(0.5 / 0.1) = 1/2 ln(25 / 9) = ln(5/3) = 0.510826
    # Means over the two prompts:
    #   mass (0.8 + 0.6)/2 = 0.7;  effective (2 sqrt(2) + 2)/2 = 1 + sqrt(2) = 2.414214
    #   top share 0.5;  KL (ln 3 - 1.5 ln 2 + ln 5 - ln 3)/2 = (ln 5 - 1.5 ln 2)/2 = 0.284859
    #   count (3 + 2)/2 = 2.5
    logp = [torch.tensor([0.4, 0.2, 0.2]).log(), torch.tensor([0.3, 0.3]).log()]
    logp_ref = [torch.tensor([0.1, 0.1, 0.1]).log(), torch.tensor([0.09, 0.01]).log()]
    metrics = path_metrics(logp, logp_ref)
    assert metrics == pytest.approx({
        "paths_mass": 0.7, "paths_effective": 1 + math.sqrt(2), "paths_top_share": 0.5,
        "paths_kl_ref": (math.log(5) - 1.5 * math.log(2)) / 2, "paths_count": 2.5}, rel=1e-6)
    # the policy against itself: q = q_ref, so KL is 0 exactly
    assert path_metrics(logp, logp)["paths_kl_ref"] == 0.0


def test_path_metrics_bad_inputs():
    one = [torch.zeros(3)]
    with pytest.raises(ValueError, match="same number of prompts"):
        path_metrics(one, one + one)
    with pytest.raises(ValueError, match="3 paths under the policy and 2"):
        path_metrics(one, [torch.zeros(2)])


# ----------------------------------------------------------------------------------------------
# path_logprobs on a model

QUESTION = "1+2+3"  # six paths of 19 tokens each (18 characters and EOS)


@pytest.fixture(scope="module")
def tiny():
    """A 1-layer model of width 32 after 150 SFT steps on QUESTION alone, with a teacher who
    slips on 30% of the answers: it puts about 0.44 of its probability on the six correct paths,
    0.05 to 0.09 on each (seed 0), so sampling hits each of them often and misses them often."""
    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=TOK.get_vocab_size(), eos_token_id=EOS_ID, n_embd=32,
                                    n_layer=1, n_head=2, n_kv_head=1, intermediate_size=64,
                                    max_seq_len=32))
    rng = random.Random(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        responses = [TOK.encode(toy_solution(QUESTION, rng, slip=0.3)).ids + [EOS_ID] for _ in range(32)]
        batch = rollout_of([encode(QUESTION)] * 32, responses, PAD_ID, EOS_ID, CPU)
        logp, _ = token_logprobs(model, batch)[:2]
        loss = -logp.sum() / batch.response_mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_path_logprobs_equal_a_token_by_token_recompute(tiny):
    # Batched, padded and length-sorted in path_logprobs; here one path at a time, unpadded,
    # straight from the model's logits: log pi(y|x) = sum over y's tokens and its EOS of
    # log_softmax(logits at the position before the token)[token].
    [logp] = path_logprobs(tiny, TOK, [(QUESTION, "6")], encode, EOS_ID, PAD_ID, CPU, batch=4)
    prompt = encode(QUESTION)
    for text, lp in zip(toy_derivations(QUESTION), logp):
        response = TOK.encode(text).ids + [EOS_ID]
        ids = torch.tensor([prompt + response])  # (1, P + N)
        with torch.no_grad():
            log_probs = tiny(ids).double().log_softmax(-1)[0]  # (P + N, V)
        P = len(prompt)
        expected = sum(log_probs[P - 1 + j, token] for j, token in enumerate(response))
        assert lp.item() == pytest.approx(expected.item(), abs=1e-5)


def test_path_probabilities_are_probabilities(tiny):
    # Each pi(y|x) is in (0, 1] and the paths are disjoint events (different token sequences,
    # each ended by EOS), so their sum is at most 1, for the trained model (about 0.44 on its
    # question) and for an untrained toy-size model on the held-out toy problems.
    torch.manual_seed(0)
    untrained = Transformer(ModelConfig(vocab_size=TOK.get_vocab_size(), eos_token_id=EOS_ID,
                                        **TOY_MODEL)).eval()
    problems = ToyTask(8).eval_set
    for model, probs in ((tiny, [(QUESTION, "6")]), (untrained, problems)):
        logp = path_logprobs(model, TOK, probs, encode, EOS_ID, PAD_ID, CPU)
        assert [len(lp) for lp in logp] == [len(toy_derivations(q)) for q, _ in probs]
        for lp in logp:
            assert lp.dtype == torch.float64
            assert (lp < 0).all() and lp.exp().sum() <= 1


def test_path_probabilities_match_sampling_frequencies(tiny):
    # n = 10,000 completions sampled at temperature 1 (seed 0) against the exact pi(y|x).
    # The count of path y is Binomial(n, pi(y)): its frequency has standard error
    # sqrt(pi (1 - pi) / n), at most sqrt(0.09 * 0.91 / 1e4) = 0.0029 for these paths. Tolerance
    # 4 standard errors per path and for the total mass (0.44: SE 0.005); with 7 checks a correct
    # implementation fails with chance about 7 * 6e-5 = 4e-4 at a random seed, and the fixed
    # seed makes the outcome the same on every run. A probability 15% off (0.09 vs 0.078)
    # would be 4 standard errors out.
    n = 10_000
    [logp] = path_logprobs(tiny, TOK, [(QUESTION, "6")], encode, EOS_ID, PAD_ID, CPU)
    pi = logp.exp()  # (6,)
    r = generate(tiny, [encode(QUESTION)] * n, 24, eos_id=EOS_ID, pad_id=PAD_ID,
                 generator=torch.Generator().manual_seed(0))
    samples = [tuple(r.response_ids[i, :int(r.response_mask[i].sum())].tolist()) for i in range(n)]
    paths = [tuple(TOK.encode(text).ids + [EOS_ID]) for text in toy_derivations(QUESTION)]
    freq = torch.tensor([samples.count(p) / n for p in paths], dtype=torch.float64)  # (6,)
    se = (pi * (1 - pi) / n).sqrt()
    assert ((freq - pi).abs() <= 4 * se).all(), (freq, pi)
    mass, freq_mass = pi.sum(), freq.sum()
    assert (freq_mass - mass).abs() <= 4 * (mass * (1 - mass) / n).sqrt()
    assert 0.3 < mass < 0.6 and (pi > 0.03).all()  # the regime the tolerance above is written for

"""sample.py: recorded log-probs against the teacher-forced recompute, masks, batch independence."""
import pytest
import torch

from benchmarks.sampling import can_compile
from model import ModelConfig, Transformer
from sample import Rollout, generate, process, response_mask, sample_from, token_logprobs, uniforms

EOS = 3
PROMPTS = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14], [15]]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = Transformer(ModelConfig(vocab_size=16, n_embd=32, n_layer=2, n_head=4, n_kv_head=2,
                                intermediate_size=64, max_seq_len=64, tie_embeddings=False)).eval()
    with torch.no_grad():  # sharper logits than the 0.02 init, so top-k / top-p actually cut tokens
        m.lm_head.weight.mul_(8)
    return m


def gen(model, prompts=PROMPTS, n=12, seed=0, **kw):
    return generate(model, prompts, n, eos_id=EOS, generator=torch.Generator().manual_seed(seed), **kw)


@pytest.mark.parametrize("kw", [dict(), dict(temperature=0.7), dict(temperature=1.6), dict(top_k=4),
                                dict(top_p=0.8), dict(temperature=1.3, top_k=6, top_p=0.9),
                                dict(temperature=0)], ids=str)
def test_recorded_logprobs_equal_teacher_forced(model, kw):
    r = gen(model, **kw)
    with torch.no_grad():
        logp, hidden = token_logprobs(model, r, **kw)[:2]
    assert r.logprobs.dtype == logp.dtype == torch.float32
    torch.testing.assert_close(logp, r.logprobs, atol=1e-5, rtol=0)
    assert (r.logprobs[~r.response_mask] == 0).all()
    assert hidden.shape == (len(PROMPTS), r.prompt_ids.size(1), 32)
    if kw.get("top_k") or kw.get("top_p"):  # the filter bit: some recorded log-probs are above
        full = token_logprobs(model, r, temperature=kw.get("temperature", 1.0))[0]  # the unfiltered
        assert (logp - full)[r.response_mask].max() > 1e-3


def test_top_k_top_p_filter_by_hand():
    # probabilities 0.5, 0.25, 0.125, 0.125 (logits = log p): top_p=0.7 keeps the first two
    # (0.5 < 0.7, then 0.5 + 0.25 >= 0.7 stops before the third); top_k=3 keeps three
    logits = torch.tensor([0.5, 0.25, 0.125, 0.125]).log()
    torch.testing.assert_close(process(logits, top_p=0.7).softmax(-1), torch.tensor([2 / 3, 1 / 3, 0, 0]))
    assert torch.isinf(process(logits, top_k=1)).sum() == 3
    torch.testing.assert_close(process(logits, temperature=0.5).softmax(-1),
                               torch.tensor([16, 4, 1, 1]) / 22)  # p^(1/T) = p^2, renormalised


def test_sampler_frequencies_match_softmax():
    # 400,000 draws from softmax([0, 1, -inf, 2, -inf]) = [0.0900, 0.2447, 0, 0.6652, 0]: each
    # frequency has a standard error below sqrt(0.25 / 4e5) = 0.0008, so 0.004 is 5 sigma; the
    # tokens at -inf (first-free and last positions both covered) must never come out
    logits = torch.tensor([0.0, 1.0, float("-inf"), 2.0, float("-inf")]).repeat(400_000, 1)
    u = uniforms(torch.Generator().manual_seed(0), 400_000, 1, torch.device("cpu"))[:, 0]  # (400000,)
    counts = torch.bincount(sample_from(logits, u), minlength=5)
    assert counts[2] == 0 and counts[4] == 0
    torch.testing.assert_close(counts / 400_000, logits[0].softmax(-1), atol=0.004, rtol=0)


def test_masks_are_prefix_shaped_and_include_eos(model):
    r = gen(model, n=20)
    seen_stop = seen_full = False
    for ids, mask in zip(r.response_ids.tolist(), r.response_mask.tolist()):
        n = sum(mask)
        assert mask == [True] * n + [False] * (len(mask) - n)  # prefix-shaped
        if EOS in ids:
            first = ids.index(EOS)
            assert n == first + 1 and ids[first] == EOS  # the EOS is in, nothing after it
            assert all(t == 0 for t in ids[n:])           # padded with pad_id
            seen_stop = True
        else:
            assert n == 20  # no EOS: ran to max_new_tokens
            seen_full = True
    assert seen_stop and seen_full


def test_response_mask_when_pad_is_eos():
    # pad == eos == 0: a mask from `token != pad` would drop the EOS; ours counts positions
    resp = torch.tensor([[4, 0, 0, 0], [4, 5, 6, 7], [0, 0, 0, 0]])
    assert response_mask(resp, 0).tolist() == [[True, True, False, False], [True] * 4,
                                               [True, False, False, False]]


def test_several_eos_ids():
    # Llama 3 Instruct ends a turn with any of several ids: the first of them ends the response
    resp = torch.tensor([[4, 9, 5, 8], [4, 8, 9, 5], [4, 5, 6, 7]])
    assert response_mask(resp, [8, 9]).tolist() == [[True, True, False, False], [True, True, False, False],
                                                     [True] * 4]


def test_generate_stops_at_any_of_several_eos(model):
    r = generate(model, PROMPTS, 12, eos_id=[EOS, 5], generator=torch.Generator().manual_seed(0))
    for ids, n in zip(r.response_ids.tolist(), r.response_mask.sum(1).tolist()):
        assert not {EOS, 5} & set(ids[:n - 1]) and (n == 12 or ids[n - 1] in (EOS, 5))


def test_pad_equal_to_eos(model):
    r = generate(model, PROMPTS, 12, eos_id=EOS, pad_id=EOS, generator=torch.Generator().manual_seed(0))
    for ids, n in zip(r.response_ids.tolist(), r.response_mask.sum(1).tolist()):
        assert EOS not in ids[:n - 1] and (n == 12 or ids[n - 1] == EOS)


def test_rows_do_not_depend_on_the_batch(model):
    batch = gen(model, temperature=0)
    for i, p in enumerate(PROMPTS):
        alone = gen(model, prompts=[p], temperature=0)
        n = int(alone.response_mask.sum())
        assert batch.response_ids[i, :n].tolist() == alone.response_ids[0, :n].tolist()
        torch.testing.assert_close(batch.logprobs[i, :n], alone.logprobs[0, :n], atol=1e-5, rtol=0)
    # sampled rows too: row i's recorded log-probs equal its own unpadded teacher-forced pass
    r = gen(model, seed=3)
    for i, p in enumerate(PROMPTS):
        one = Rollout(torch.tensor([p]), torch.ones(1, len(p), dtype=torch.bool), r.response_ids[i:i + 1],
                      r.response_mask[i:i + 1], r.logprobs[i:i + 1])
        with torch.no_grad():
            torch.testing.assert_close(token_logprobs(model, one)[0][0], r.logprobs[i], atol=1e-5, rtol=0)


def test_one_generator_per_row_makes_samples_independent_of_the_batch(model):
    # train.py seeds one generator per response: a row must sample the same tokens alone, or in
    # a batch of other rows (at another index, with other padding), as it does in the full batch
    def gens(seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]
    full = generate(model, PROMPTS, 12, eos_id=EOS, generator=gens([10, 11, 12, 13]))
    part = generate(model, PROMPTS[3:0:-2], 12, eos_id=EOS, generator=gens([13, 11]))  # rows 3 and 1
    for i, j in ((0, 3), (1, 1)):
        n = int(full.response_mask[j].sum())
        assert part.response_ids[i, :n].tolist() == full.response_ids[j, :n].tolist()
        torch.testing.assert_close(part.logprobs[i], full.logprobs[j, :part.logprobs.size(1)], atol=1e-5, rtol=0)
    # and the rows differ from one another (the seeds matter)
    assert len({tuple(r) for r in full.response_ids.tolist()}) > 1
    with pytest.raises(ValueError, match="got 2 generators for 4 prompts"):
        generate(model, PROMPTS, 12, generator=gens([1, 2]))


def test_greedy_is_deterministic_and_seeds_reproduce(model):
    assert torch.equal(gen(model, temperature=0, seed=1).response_ids,
                       gen(model, temperature=0, seed=2).response_ids)
    a, b, c = gen(model, seed=7), gen(model, seed=7), gen(model, seed=8)
    assert torch.equal(a.response_ids, b.response_ids) and torch.equal(a.logprobs, b.logprobs)
    assert not torch.equal(a.response_ids, c.response_ids)


def test_token_logprobs_has_gradients(model):
    r = gen(model)
    logp, hidden = token_logprobs(model, r)[:2]
    (logp.sum() + hidden.sum()).backward()
    assert model.model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    model.zero_grad()


@pytest.mark.parametrize("prompts, kw, message", [
    ([], {}, "prompts is empty"),
    ([[1], []], {}, "prompt 1 is empty"),
    ([[1] * 60], {}, "prompt 0 has 60 tokens; with max_new_tokens=12 that exceeds the model's context"),
    ([[1]], dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
    ([[1]], dict(top_p=1.5), r"top_p must be in \(0, 1\]"),
    ([[1]], dict(temperature=-0.5), "temperature must be >= 0"),
    ([[1]], dict(top_k=-1), "top_k must be >= 0"),
])
def test_bad_arguments(model, prompts, kw, message):
    with pytest.raises(ValueError, match=message):
        generate(model, prompts, 12, **kw)


@pytest.mark.skipif(not can_compile(), reason="torch.compile's CPU kernels need a C++ compiler")
def test_compiled_model_samples_what_the_model_samples(model):
    # generate takes a torch.compile'd model (benchmarks/sampling.py times it): the same seed must give the same
    # tokens and, up to float rounding of the fused kernels, the same recorded log-probs, which the
    # plain model's teacher-forced pass must also reproduce; a second batch of another size must
    # not reuse anything shaped for the first. fullgraph=True: an error rather than a silent
    # fall-back to the plain model for any part dynamo cannot compile
    torch._dynamo.reset()
    compiled = torch.compile(model, dynamic=True, fullgraph=True)
    for prompts in (PROMPTS, PROMPTS[1:3]):
        r, c = gen(model, prompts, top_k=6), gen(compiled, prompts, top_k=6)
        assert torch.equal(r.response_ids, c.response_ids) and torch.equal(r.response_mask, c.response_mask)
        torch.testing.assert_close(c.logprobs, r.logprobs, atol=1e-5, rtol=0)
        with torch.no_grad():
            torch.testing.assert_close(token_logprobs(model, c, top_k=6)[0], c.logprobs, atol=1e-5, rtol=0)

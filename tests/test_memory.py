"""The memory-saving paths compute what the plain paths compute.

- `token_logprobs` in chunks of response positions (each chunk's logits recomputed in backward)
  against the whole (B, N, V) logits at once (chunk=0): log-probs, and gradients with respect to
  every parameter and to the final hidden states, to 1e-5;
- a no-grad call (pi_old) and a grad call (pi_theta) on the same rows: equal bit for bit, which
  is what makes the importance weight w == 1 exactly on the first mini-batch;
- `model.grad_ckpt` (each block recomputed in backward) against the plain backward.
Each test also checks that the saving path really ran: lm_head saw only chunk-sized inputs, the
blocks ran a second time in backward. How much memory they save is measured by
`python -m benchmarks.sampling --memory`, not here (README, "Running on a real checkpoint").
"""
import pytest
import torch

from model import ModelConfig, Transformer
from sample import Rollout, generate, left_pad, response_mask, token_logprobs

EOS = 3
PROMPTS = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15], [16]]  # left-padded to 6


@pytest.fixture(scope="module")
def model():
    # tied embeddings and q/k/v biases (Qwen2's layout): lm_head's weight is also the embedding,
    # so its gradient sums the chunks' share and the embedding's
    torch.manual_seed(0)
    m = Transformer(ModelConfig(model_type="qwen2", vocab_size=40, n_embd=32, n_layer=2, n_head=4,
                                n_kv_head=2, intermediate_size=64, max_seq_len=64, qkv_bias=True))
    with torch.no_grad():  # sharper logits than the 0.02 init, so top-k / top-p actually cut tokens
        m.lm_head.weight.mul_(8)
    return m


@pytest.fixture(scope="module")
def rollout():
    # random responses of 10 tokens with an EOS placed so that rows keep 10, 4, 1 and 7 tokens:
    # left-padded prompts and padded responses both covered
    prompt_ids, prompt_mask = left_pad(PROMPTS, 0, "cpu")
    response_ids = torch.randint(4, 40, (4, 10), generator=torch.Generator().manual_seed(1))
    response_ids[1, 3], response_ids[2, 0], response_ids[3, 6] = EOS, EOS, EOS
    mask = response_mask(response_ids, EOS)
    assert mask.sum(1).tolist() == [10, 4, 1, 7]
    return Rollout(prompt_ids, prompt_mask, response_ids.masked_fill(~mask, 0), mask, torch.zeros(4, 10))


class Calls:
    """Records a module's calls: how many, and the largest first dimension of its input. A
    pre-hook, since a recompute in backward stops as soon as it has rebuilt the last tensor that
    backward needs, before the module returns (a forward hook would not see it)."""

    def __init__(self, module):
        self.n, self.rows = 0, 0
        self.handle = module.register_forward_pre_hook(self)

    def __call__(self, module, args):
        self.n, self.rows = self.n + 1, max(self.rows, args[0].size(0))


def grads(model, rollout, **kw):
    """logp, and the gradients of a loss mixing logp and the prompt hidden states (as the FlowRL
    loss does through log Z) with respect to every parameter and to the final hidden states."""
    model.zero_grad(set_to_none=True)
    seen = {}
    keep = lambda module, args, out: seen.setdefault("h", out).retain_grad()
    hook = model.model.norm.register_forward_hook(keep)
    logp, hidden = token_logprobs(model, rollout, **kw)[:2]
    hook.remove()
    g = torch.Generator().manual_seed(2)  # fixed random weights, so no gradient entry is special
    loss = ((logp * torch.randn(logp.shape, generator=g)).sum()
            + (hidden * torch.randn(hidden.shape, generator=g)).sum())
    loss.backward()
    out = {name: p.grad.clone() for name, p in model.named_parameters()}
    out["final hidden states"] = seen["h"].grad
    return logp.detach(), out


@pytest.mark.parametrize("kw", [dict(), dict(temperature=0.7), dict(top_k=5), dict(top_p=0.8),
                                dict(temperature=1.3, top_k=8, top_p=0.9)], ids=str)
def test_chunked_logprobs_and_gradients_equal_whole(model, rollout, kw):
    whole_head = Calls(model.lm_head)
    logp_whole, g_whole = grads(model, rollout, chunk=0, **kw)
    whole_head.handle.remove()
    M = int(rollout.response_mask.sum())  # response tokens in the mask: the rows lm_head scores
    assert (whole_head.n, whole_head.rows) == (1, M)  # one call on all of them, no recompute
    for chunk in (1, 7):  # 7 does not divide M: a shorter last chunk
        head = Calls(model.lm_head)
        logp, g = grads(model, rollout, chunk=chunk, **kw)
        head.handle.remove()
        n_chunks = -(-M // chunk)
        assert head.rows == chunk and head.n == 2 * n_chunks  # each chunk, then its recompute in backward
        torch.testing.assert_close(logp, logp_whole, atol=1e-5, rtol=0)
        assert (logp[~rollout.response_mask] == 0).all()
        for name in g_whole:
            torch.testing.assert_close(g[name], g_whole[name], atol=1e-5, rtol=1e-5, msg=name)
    # the tied lm_head / embedding weight (named once, as the embedding) and the hidden states do
    # get gradients, so the comparisons above compare something
    assert g_whole["model.embed_tokens.weight"].abs().sum() > 0
    assert g_whole["final hidden states"].abs().sum() > 0


@pytest.mark.parametrize("chunk", [None, 0, 4])
@pytest.mark.parametrize("grad_ckpt", [False, True])
def test_no_grad_and_grad_calls_agree_bit_for_bit(model, rollout, chunk, grad_ckpt):
    # train.py computes logp_old under no_grad, then logp with gradients on the same rows; on the
    # first mini-batch w = exp(sum(logp - logp_old)) must be 1 exactly, so the two must be equal
    # to the last bit, with or without chunks and checkpointing, in float32 and under bf16 autocast
    model.grad_ckpt = grad_ckpt
    try:
        for amp in (torch.autocast("cpu", dtype=torch.bfloat16, enabled=False),
                    torch.autocast("cpu", dtype=torch.bfloat16)):
            with amp:
                with torch.no_grad():
                    logp_old, hidden_old = token_logprobs(model, rollout, top_p=0.9, chunk=chunk)[:2]
                logp, hidden = token_logprobs(model, rollout, top_p=0.9, chunk=chunk)[:2]
            assert logp.requires_grad and logp.dtype == logp_old.dtype == torch.float32
            assert torch.equal(logp, logp_old) and torch.equal(hidden, hidden_old)
    finally:
        model.grad_ckpt = False


def test_bf16_autocast_keeps_float32_logprobs(model, rollout):
    # on cuda train.py runs the passes under bf16 autocast: lm_head's matmul is bf16, and `process`
    # lifts its output to float32. bf16 rounds a logit to 8 significant bits (relative error up to
    # 2^-9): logits here reach about 6, so each is off by up to about 0.01, and a log-prob (a logit
    # minus a logsumexp) by a few hundredths at most, never 0.1; chunked and whole compute the same
    # rows of the same bf16 matmul
    with torch.no_grad():
        full = token_logprobs(model, rollout)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            whole, chunked = (token_logprobs(model, rollout, chunk=c)[0] for c in (0, 3))
    assert whole.dtype == chunked.dtype == torch.float32
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)
    assert 0 < (whole - full).abs().max() < 0.1


def test_grad_ckpt_gives_the_same_gradients(model, rollout):
    blocks = [Calls(b) for b in model.model.layers]
    logp_plain, g_plain = grads(model, rollout, top_k=8)
    assert [b.n for b in blocks] == [1, 1]
    model.grad_ckpt = True
    try:
        logp, g = grads(model, rollout, top_k=8)
        assert [b.n for b in blocks] == [3, 3]  # forward, then recomputed in backward
        with torch.no_grad():
            token_logprobs(model, rollout)
        assert [b.n for b in blocks] == [4, 4]  # no gradients, nothing to recompute
    finally:
        model.grad_ckpt = False
        for b in blocks:
            b.handle.remove()
    torch.testing.assert_close(logp, logp_plain, atol=1e-6, rtol=0)
    for name in g_plain:
        torch.testing.assert_close(g[name], g_plain[name], atol=1e-6, rtol=1e-6, msg=name)


def test_grad_ckpt_leaves_kv_cache_decoding_alone(model):
    # sampling runs with a KV cache under inference mode: checkpointing must not touch it
    model.grad_ckpt = True
    try:
        r = generate(model, PROMPTS, 10, eos_id=EOS, generator=torch.Generator().manual_seed(1))
    finally:
        model.grad_ckpt = False
    same = generate(model, PROMPTS, 10, eos_id=EOS, generator=torch.Generator().manual_seed(1))
    assert torch.equal(r.response_ids, same.response_ids) and torch.equal(r.logprobs, same.logprobs)

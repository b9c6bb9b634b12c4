"""
Batched sampling with a KV cache, recording the log-prob of every sampled token.

Three things RL code must get right here, and how this file does:
1. The log-prob stored for a sampled token is that of the distribution it was drawn from: logits
   divided by the temperature, then top-k / top-p filtered and renormalised. `token_logprobs`
   recomputes the same quantity by a teacher-forced pass, through the same `process` function,
   so pi_old at sampling time and pi_theta at the first training pass agree to float precision.
2. The response mask is built from positions: true up to and including the first EOS, false after.
   (A mask inferred from `token != pad_id` drops the EOS whenever pad == eos.)
3. Prompts are left-padded so that all rows decode in lockstep; the model gets a mask, gives each
   row its own positions and hides padding, so a row samples the same as it would alone.

`generate` also takes a compiled model, `generate(torch.compile(model, dynamic=True), ...)`: the
same samples, 1.5x to 1.6x faster on the toy model on a CPU once compiled, no faster at 58M
(README). New lengths reuse the compiled code. The decoding step is first compiled for one batch
size, and at the first other size once more for any size; a batch of one gets graphs of its own.

The benchmark of this file is `python -m benchmarks.sampling`.
"""
from dataclasses import dataclass, fields
from typing import NamedTuple, Optional

import torch
from torch.utils.checkpoint import checkpoint

from model import KVCache


@dataclass
class Rollout:
    prompt_ids: torch.Tensor     # (B, P) long, left-padded with pad_id
    prompt_mask: torch.Tensor    # (B, P) bool, True on prompt tokens
    response_ids: torch.Tensor   # (B, N) long, pad_id after the first EOS
    response_mask: torch.Tensor  # (B, N) bool, True up to and including the first EOS
    logprobs: torch.Tensor       # (B, N) float32, log-prob of each sampled token, 0 where masked

    def __getitem__(self, rows):
        """The rollout of some rows (a slice or index tensor), e.g. one mini-batch."""
        return Rollout(*(getattr(self, f.name)[rows] for f in fields(self)))

    def sequences(self):
        """Prompt and response side by side: ids and mask (B, P + N), for a teacher-forced pass."""
        return (torch.cat([self.prompt_ids, self.response_ids], 1),
                torch.cat([self.prompt_mask, self.response_mask], 1))


def process(logits, temperature=1.0, top_k=0, top_p=1.0):
    """(..., V) logits -> float32 logits of the distribution sampled from: softmax(logits / temperature)
    restricted to the top_k tokens and to the smallest set of tokens whose probability reaches top_p
    (filtered tokens get -inf). temperature=0 (greedy) keeps the untempered logits."""
    logits = logits.float()
    if temperature > 0 and temperature != 1:
        logits = logits / temperature
    if top_k and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (..., 1) the k-th largest logit
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens ranked above it already reach top_p (the first always stays)
        drop = (probs.cumsum(-1) - probs) >= top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def logprobs_of(logits, tokens):
    """log softmax(logits)[token], float32: logits (..., V) from `process`, tokens (...) -> (...).
    The one place in the project that turns logits into token log-probs."""
    return logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)


def check_args(model, prompts, max_new_tokens, temperature, top_k, top_p):
    if not prompts:
        raise ValueError("prompts is empty: give at least one prompt (a list of token ids)")
    for i, p in enumerate(prompts):
        if len(p) == 0:
            raise ValueError(f"prompt {i} is empty: every prompt needs at least one token")
        if len(p) + max_new_tokens > model.config.max_seq_len:
            raise ValueError(f"prompt {i} has {len(p)} tokens; with max_new_tokens={max_new_tokens} "
                             f"that exceeds the model's context max_seq_len={model.config.max_seq_len}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 means no top-k), got {top_k}")


def left_pad(prompts, pad_id, device):
    """Token-id lists of different lengths -> ids (B, P) left-padded with pad_id, and mask (B, P)."""
    P = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (P - len(p)) + list(p) for p in prompts], device=device)
    mask = torch.tensor([[False] * (P - len(p)) + [True] * len(p) for p in prompts], device=device)
    return ids, mask


def rollout_of(prompts, responses, pad_id, eos_id, device):
    """A Rollout to teacher-force given responses: token-id lists, prompts left-padded, responses
    (each ending in EOS) right-padded. Its sampler log-probs are zeros: nothing was sampled."""
    prompt_ids, prompt_mask = left_pad(prompts, pad_id, device)
    N = max(map(len, responses))
    ids = torch.tensor([r + [pad_id] * (N - len(r)) for r in responses], device=device)  # (B, N)
    return Rollout(prompt_ids, prompt_mask, ids, response_mask(ids, eos_id),
                   torch.zeros(ids.shape, device=device))


def generate(model, prompts, max_new_tokens, *, temperature=1.0, top_k=0, top_p=1.0, eos_id=None,
             pad_id=0, generator=None):
    """Sample up to max_new_tokens for each prompt (a list of token-id lists) -> Rollout.
    eos_id: a token id, a list of ids, or None (every row runs to max_new_tokens).
    generator: None, a torch.Generator, or a list of them, one per prompt (`uniforms`).

    One batched prefill of the left-padded prompts fills a preallocated KV cache, then one token
    per step for every row; a row stops at its own eos_id, the loop when every row has stopped."""
    check_args(model, prompts, max_new_tokens, temperature, top_k, top_p)
    with torch.inference_mode():  # no autograd bookkeeping at all: a sixth faster than no_grad on CPU
        r = sample_loop(model, prompts, max_new_tokens, temperature, top_k, top_p, eos_id, pad_id, generator)
    # tensors made in inference mode cannot be saved for backward (the embedding of the training
    # pass saves its token ids), so hand out ordinary copies
    return Rollout(*(getattr(r, f.name).clone() for f in fields(r)))


def sample_loop(model, prompts, max_new_tokens, temperature, top_k, top_p, eos_id, pad_id, generator):
    """The body of generate, run in inference mode."""
    device = model.lm_head.weight.device
    prompt_ids, prompt_mask = left_pad(prompts, pad_id, device)
    B, P = prompt_ids.shape
    cache = KVCache(model.config.n_layer, P + max_new_tokens)
    # generated columns are all marked real: after its EOS a row's outputs are thrown away anyway
    mask = torch.cat([prompt_mask, torch.ones(B, max_new_tokens, dtype=torch.bool, device=device)], 1)
    response = torch.full((B, max_new_tokens), pad_id, dtype=torch.long, device=device)
    logprobs = torch.zeros(B, max_new_tokens, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    eos = torch.tensor(eos_ids(eos_id), device=device)
    u = None if temperature == 0 else uniforms(generator, B, max_new_tokens, device)  # (B, max_new_tokens)
    logits = model(prompt_ids, mask=prompt_mask, cache=cache, logits_from=-1)[:, -1]  # (B, V)
    for t in range(max_new_tokens):
        logits = process(logits, temperature, top_k, top_p)  # (B, V) float32
        token = logits.argmax(-1) if temperature == 0 else sample_from(logits, u[:, t])  # (B,)
        logp = logprobs_of(logits, token)
        response[:, t] = torch.where(done, pad_id, token)
        logprobs[:, t] = torch.where(done, 0.0, logp)
        if eos_id is not None:
            done = done | torch.isin(token, eos)
        n = t + 1
        if n == max_new_tokens or bool(done.all()):
            break
        logits = model(response[:, t:n], mask=mask[:, :P + n], cache=cache)[:, -1]
    response = response[:, :n]
    return Rollout(prompt_ids, prompt_mask, response, response_mask(response, eos_id), logprobs[:, :n])


def uniforms(generator, B, T, device):
    """(B, T) uniform numbers in [0, 1), the only randomness of sampling: row b draws its t-th token
    with u[b, t]. generator: None (torch's global one), one torch.Generator, or a list of B of
    them, one per row. With one per row, a row's samples do not depend on which rows share its
    batch (up to float rounding of its logits): train.py seeds one per response, so that a run
    samples the same responses whether one process samples the whole batch or several processes
    each sample a share."""
    wide = torch.float32 if device.type == "mps" else torch.float64  # mps has no float64
    if isinstance(generator, (list, tuple)):
        if len(generator) != B:
            raise ValueError(f"got {len(generator)} generators for {B} prompts: give one per prompt")
        return torch.stack([torch.rand(T, generator=g, device=device, dtype=wide) for g in generator])
    return torch.rand(B, T, generator=generator, device=device, dtype=wide)


def sample_from(logits, u):
    """One token per row of logits (B, V), by inverse-CDF sampling with one uniform number per row,
    u (B,) from `uniforms`.

    torch.multinomial draws one random number per vocabulary entry, which at a 32k vocabulary costs
    about a tenth of a 0.1B model's decoding step on a CPU. The running sum is float64 (float32 on
    mps, which has no float64), so no rounding accumulates over the vocabulary, and a token at -inf
    (probability 0) can never be picked: searchsorted(right=True) returns the first index whose
    cdf exceeds u, and such a token's cdf equals its predecessor's."""
    cdf = (logits - logits.amax(-1, keepdim=True)).exp().to(u.dtype).cumsum(-1)  # (B, V) unnormalised
    token = torch.searchsorted(cdf, u.unsqueeze(1) * cdf[:, -1:], right=True)  # (B, 1)
    return token.squeeze(-1).clamp(max=cdf.size(1) - 1)


def eos_ids(eos_id):
    """eos_id as a list: one id, several (Llama 3 Instruct ends a turn with any of three), or none."""
    return [] if eos_id is None else [eos_id] if isinstance(eos_id, int) else list(eos_id)


def response_mask(response, eos_id):
    """(B, N) bool: True for every token up to and including the first EOS, by position."""
    if eos_id is None:
        return torch.ones_like(response, dtype=torch.bool)
    is_eos = torch.isin(response, torch.tensor(eos_ids(eos_id), device=response.device)).long()
    eos_before = is_eos.cumsum(-1) - is_eos  # EOS tokens strictly before each position
    return eos_before == 0


# A chunk of the log-prob pass holds at most this many bytes of float32 logits: 256 MiB is 441
# positions at Qwen's 151,936-token vocabulary. A chunk's few copies of that size (processed logits,
# softmax, their gradients) are small beside a GPU's memory and the model's activations, while each
# lm_head call is still a (441 x H) @ (H x 151,936) matmul, large enough to keep a GPU's matrix
# units busy. A small vocabulary (the toy task's 64) gets one chunk.
LOGITS_BYTES = 256 * 2**20


class TokenLogprobs(NamedTuple):
    logp: torch.Tensor    # (B, N) float32 log-prob of each response token, 0 where the mask is false
    hidden: torch.Tensor  # (B, P, H) final hidden states of the prompt positions: the log Z head's input
    entropy: Optional[torch.Tensor] = None  # (B, N) float32 entropy of each position's distribution (entropy=True)


def token_logprobs(model, rollout, *, temperature=1.0, top_k=0, top_p=1.0, chunk=None, entropy=False):
    """Teacher-forced log-probs of a rollout's responses, the same layout as rollout.logprobs.

    Returns TokenLogprobs: .logp (B, N) float32, 0 where the response mask is false, and .hidden,
    the final hidden states of the prompt positions (B, P, H) for the log Z head, and with
    entropy=True .entropy (B, N), the entropy of the processed distribution at each response
    position (a monitor: no gradient flows through it). Runs with gradients when the caller does
    (pi_theta) and without under torch.no_grad() (pi_old, pi_ref).

    The logits are never whole: lm_head, `process` and `logprobs_of` run on `chunk` response
    tokens at a time (None: as many as fit LOGITS_BYTES; 0: all at once, whole-vocabulary logits
    for every response token, kept to compare against), each chunk under activation
    checkpointing, so backward recomputes one chunk's logits at a time instead of keeping them
    all. The same rows give the same chunks, so two calls agree bit for bit, with gradients or
    without: w == 1 exactly on a first mini-batch whose pi_old came from the same rows."""
    ids, mask = rollout.sequences()
    P, N = rollout.prompt_ids.size(1), rollout.response_ids.size(1)
    hidden = model(ids, mask=mask, logits=False)  # (B, P + N, H)
    lm_head = getattr(model, "module", model).lm_head  # DistributedDataParallel holds the model in .module
    # the hidden state at position P-1+j predicts response token j; only tokens in the mask count
    h = hidden[:, P - 1:P + N - 1][rollout.response_mask]  # (M, H), M tokens in the response mask
    tokens = rollout.response_ids[rollout.response_mask]   # (M,)
    if chunk == 0:
        logp, ent = head_logprobs(lm_head, h, tokens, temperature, top_k, top_p, entropy)  # (M,) each
    else:
        c = chunk or max(1, LOGITS_BYTES // (4 * lm_head.out_features))
        parts = [checkpoint(head_logprobs, lm_head, h[i:i + c], tokens[i:i + c], temperature, top_k, top_p,
                            entropy, use_reentrant=False) for i in range(0, len(h), c)]
        logp = torch.cat([p[0] for p in parts])
        ent = torch.cat([p[1] for p in parts]) if entropy else None
    full = torch.zeros(rollout.response_ids.shape, device=logp.device)  # (B, N) float32
    return TokenLogprobs(full.masked_scatter(rollout.response_mask, logp), hidden[:, :P],
                         full.masked_scatter(rollout.response_mask, ent) if entropy else None)


def head_logprobs(lm_head, h, tokens, temperature, top_k, top_p, entropy=False):
    """Final hidden states h (M, H) -> (logp, entropy), (M,) float32 each: the log-probs of tokens
    (M,) under the processed logits, and (entropy=True; else None) each position's entropy,
    the sum of -p log p over the vocabulary."""
    logits = process(lm_head(h), temperature, top_k, top_p)  # (M, V)
    logp = logprobs_of(logits, tokens)  # (M,)
    h_ent = torch.special.entr(logits.detach().softmax(-1)).sum(-1) if entropy else None
    return logp, h_ent


if __name__ == "__main__":
    from model import ModelConfig, Transformer
    torch.manual_seed(0)
    m = Transformer(ModelConfig()).eval()
    r = generate(m, [[1, 2, 3], [4, 5]], 8, eos_id=7, generator=torch.Generator().manual_seed(0))
    print(r.response_ids, r.response_mask, r.logprobs, sep="\n")

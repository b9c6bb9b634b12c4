"""
A small decoder-only transformer of the Llama / Qwen2 family, in one file.

    token embedding -> n_layer x [RMSNorm -> attention (RoPE, GQA) -> +, RMSNorm -> SwiGLU MLP -> +]
    -> RMSNorm -> lm_head

Module names are Hugging Face's (model.layers.0.self_attn.q_proj, ...), so a state dict here *is* an
HF checkpoint: `Transformer.from_pretrained(dir)` reads config.json + *.safetensors written by
transformers, and `save_pretrained(dir)` writes files that transformers' AutoModelForCausalLM loads.
Qwen2 differs from Llama only by biases on q/k/v (and usually tied embeddings in the small sizes).

What sampling and the FlowRL loss need from the model, all through `forward`:
- `mask` (B, T_total) bool, False on padding: each row gets its own positions (counted over its
  real tokens) and never attends to padding, so a left-padded batch gives every row its own logits;
- `cache`: a preallocated KVCache for incremental decoding;
- `logits=False`: the final hidden states (after the final norm) instead of logits; the log Z head
  reads them, and sample.token_logprobs applies lm_head to them a chunk of positions at a time.
Setting `model.grad_ckpt = True` trades compute for memory in training passes: each block keeps
only its input for backward and recomputes the rest (activation checkpointing), same gradients.
"""
import json
import math
import os
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # x / sqrt(mean(x^2) + eps) in float32 (bf16 sums of squares lose precision), cast back,
        # then scaled: as HF does
        return self.weight * F.rms_norm(x.float(), x.shape[-1:], eps=self.eps).to(x.dtype)


def rope_inv_freq(cfg):
    """Rotary frequencies theta^(-2i/d), i = 0..d/2-1, with Llama 3's long-context rescaling if asked."""
    d = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    s = cfg.rope_scaling
    if s and s.get("rope_type", s.get("type")) == "llama3":
        # long wavelengths are divided by `factor`, short ones kept, the band between interpolated
        wavelen = 2 * math.pi / inv_freq
        old_len = s["original_max_position_embeddings"]
        lo, hi = s["low_freq_factor"], s["high_freq_factor"]
        smooth = ((old_len / wavelen - lo) / (hi - lo)).clamp(0, 1)
        inv_freq = (1 - smooth) * inv_freq / s["factor"] + smooth * inv_freq
    return inv_freq


def apply_rope(x, cos, sin):
    """Rotate pairs (x_i, x_{i+hs/2}) by their angles, HF's layout: x (B, nh, T, hs); cos (B, 1, T, hs)
    is [cos, cos] and sin is [-sin, sin], so that x * cos + roll(x) * sin, with roll(x) = [x2, x1],
    gives [x1 cos - x2 sin, x2 cos + x1 sin] (a roll is cheaper than splitting and concatenating)."""
    return (x * cos + x.roll(x.size(-1) // 2, dims=-1) * sin).to(x.dtype)


class KVCache:
    """Keys and values of every layer, preallocated once: (B, n_kv_head, max_len, head_dim) each.
    `len` positions are filled, the same number for every row (prompts are left-padded together).
    Buffers are allocated on first use with the dtype and device of the keys (bf16 under autocast)."""

    def __init__(self, n_layer, max_len):
        self.max_len, self.len = max_len, 0
        self.k, self.v = [None] * n_layer, [None] * n_layer

    def update(self, layer, k, v):
        """Write k, v (B, nkv, T, hs) at positions len..len+T; return all keys/values so far."""
        if self.k[layer] is None:
            shape = (k.size(0), k.size(1), self.max_len, k.size(3))
            self.k[layer] = torch.zeros(shape, dtype=k.dtype, device=k.device)
            self.v[layer] = torch.zeros(shape, dtype=v.dtype, device=v.device)
        end = self.len + k.size(2)
        self.k[layer][:, :, self.len:end] = k
        self.v[layer][:, :, self.len:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.n_kv_head, cfg.head_dim
        self.q_proj = nn.Linear(cfg.n_embd, cfg.n_head * cfg.head_dim, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(cfg.n_embd, cfg.n_kv_head * cfg.head_dim, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(cfg.n_embd, cfg.n_kv_head * cfg.head_dim, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(cfg.n_head * cfg.head_dim, cfg.n_embd, bias=cfg.o_bias)

    def forward(self, x, cos, sin, attn_mask, cache, layer):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)     # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, nkv, T, hs)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, nkv, T_total, hs)
        # grouped-query attention: each group of n_head / n_kv_head query heads shares one k/v head
        gqa = self.n_kv_head != self.n_head
        if gqa and attn_mask is not None and x.is_cuda:
            # cuda's kernel for masked attention does not take enable_gqa (SDPA would fall back to
            # the math kernel, (B, nh, T, T) float32 scores): give every query head its k/v copy
            k, v = (t.repeat_interleave(self.n_head // self.n_kv_head, dim=1) for t in (k, v))
            gqa = False
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=attn_mask is None,
                                           enable_gqa=gqa)
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim)  # (B, T, nh*hs)
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.n_embd, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.n_embd, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.n_embd, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))  # SwiGLU


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.n_embd, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.n_embd, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, attn_mask, cache, layer):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, attn_mask, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


@dataclass
class ModelConfig:
    model_type: str = "llama"       # "llama" or "qwen2"
    vocab_size: int = 64
    n_embd: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 2              # grouped-query attention: n_head must be a multiple of it
    head_dim: int = 0               # 0 means n_embd // n_head
    intermediate_size: int = 384
    max_seq_len: int = 256
    rope_theta: float = 10000.0
    rope_scaling: dict = None       # None, or Llama 3's {"rope_type": "llama3", "factor": ...}
    rms_norm_eps: float = 1e-6
    qkv_bias: bool = False          # True for Qwen2, and for Llama with attention_bias
    o_bias: bool = False            # Llama's attention_bias also puts a bias on o_proj; Qwen2 never
    tie_embeddings: bool = True     # lm_head shares the token embedding matrix
    bos_token_id: int = None
    eos_token_id: int = None        # or a list: Llama 3 Instruct ends a turn with any of several

    def __post_init__(self):
        self.head_dim = self.head_dim or self.n_embd // self.n_head
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head={self.n_head} is not a multiple of n_kv_head={self.n_kv_head}")


# ModelConfig field -> config.json field (Hugging Face's names)
HF_FIELDS = dict(vocab_size="vocab_size", n_embd="hidden_size", n_layer="num_hidden_layers",
                 n_head="num_attention_heads", n_kv_head="num_key_value_heads", head_dim="head_dim",
                 intermediate_size="intermediate_size", max_seq_len="max_position_embeddings",
                 rms_norm_eps="rms_norm_eps", tie_embeddings="tie_word_embeddings",
                 bos_token_id="bos_token_id", eos_token_id="eos_token_id")
REQUIRED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
SIZES = (*REQUIRED, "num_key_value_heads", "head_dim", "max_position_embeddings")  # positive integers
LLAMA3_ROPE = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def check_config(hf, cfg_file):
    """config.json's values (hf) checked, one error naming the field; returns (rope, theta)."""
    def fail(message):
        raise ValueError(f"{cfg_file}: {message}")
    if hf.get("model_type") not in ("llama", "qwen2"):
        fail(f"model_type {hf.get('model_type')!r} is not supported (supported: 'llama', 'qwen2')")
    for field in SIZES:
        value = hf.get(field)
        if (field in REQUIRED or value is not None) and (type(value) is not int or value < 1):
            fail(f"field {field!r} is missing or not a positive integer, got {value!r}")
    n_head, n_kv, vocab = hf["num_attention_heads"], hf.get("num_key_value_heads", 1), hf["vocab_size"]
    if n_head % n_kv:
        fail(f"num_attention_heads {n_head} is not a multiple of num_key_value_heads {n_kv}")
    if not hf.get("head_dim") and hf["hidden_size"] % n_head:
        fail(f"hidden_size {hf['hidden_size']} is not a multiple of num_attention_heads {n_head} (and no head_dim is given)")
    for field in ("eos_token_id", "bos_token_id"):
        ids = [hf[field]] if type(hf.get(field)) is int else hf.get(field)
        if ids is not None and not (isinstance(ids, list) and ids and all(type(i) is int and 0 <= i < vocab for i in ids)):
            fail(f"{field} must be a token id below vocab_size {vocab} or a list of them, got {hf[field]!r}")
    ropes = [r for r in (hf.get("rope_parameters"), hf.get("rope_scaling")) if r is not None]  # new, old transformers
    for r in ropes:
        if not isinstance(r, dict) or any(isinstance(v, dict) for v in r.values()):  # not one per attention type
            fail(f"rope_parameters / rope_scaling must be an object of one rope's parameters, got {r!r}")
    rope = ropes[0] if ropes else {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if any(r.get("rope_type", r.get("type", "default")) != rope_type for r in ropes):
        fail("rope_parameters and rope_scaling name different rope types")
    if rope_type not in ("default", "llama3"):
        fail(f"rope type {rope_type!r} is not supported (supported: default, llama3)")
    theta = next((t for t in (rope.get("rope_theta"), hf.get("rope_theta")) if t is not None), 10000.0)
    numbers = dict(rope_theta=theta, rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
                   **({f: rope.get(f) for f in LLAMA3_ROPE} if rope_type == "llama3" else {}))
    for field, value in numbers.items():
        if type(value) not in (int, float) or not 0 < value < math.inf:
            fail(f"{field} must be a positive finite number, got {value!r}")
    if rope_type == "llama3" and not rope["low_freq_factor"] < rope["high_freq_factor"]:
        fail("llama3 rope needs low_freq_factor < high_freq_factor")
    if flag := next((f for f in ("use_sliding_window", "mlp_bias") if hf.get(f)), None):
        fail(f"{flag}=true is not supported")
    return rope, theta


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.model = nn.ModuleDict(dict(
            embed_tokens=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            layers=nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer)),
            norm=RMSNorm(cfg.n_embd, cfg.rms_norm_eps)))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        # a plain attribute, not a buffer: model.to(bfloat16) must not round the rotary frequencies
        self.inv_freq = rope_inv_freq(cfg)  # (hs/2,) float32
        # activation checkpointing: with gradients on, keep each block's input (B, T, n_embd) for
        # backward instead of its intermediates (several times as large: the MLP's four
        # intermediate_size-wide tensors), and recompute the block in backward; costs one more
        # forward of the blocks, gives the same gradients. Memory measured in the README.
        self.grad_ckpt = False

    @staticmethod
    def _init_weights(m):  # for training from scratch; from_pretrained overwrites every weight
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx, mask=None, cache=None, logits=True, logits_from=0):
        """idx (B, T) token ids -> logits (B, T, vocab), or with logits=False the final hidden
        states (B, T, n_embd) alone.

        mask (B, T_total) bool, True on real tokens, covers the cached positions and idx
        (T_total = cache.len + T). None means no padding.
        logits_from: logits only for positions logits_from.. (-1: the last one), because
        (B, T, vocab) float logits of a whole sequence are gigabytes at a 150k vocabulary."""
        B, T = idx.shape
        start = cache.len if cache is not None else 0
        t_total = start + T
        if t_total > self.config.max_seq_len:
            raise ValueError(f"sequence of {t_total} tokens exceeds the model's context "
                             f"max_seq_len={self.config.max_seq_len}")
        if mask is None:
            mask = torch.ones(B, t_total, dtype=torch.bool, device=idx.device)
        # a token's position counts the real tokens before it in its own row, so padding is invisible
        pos = (mask.long().cumsum(-1) - 1).clamp(min=0)[:, start:]  # (B, T)
        if self.inv_freq.device != idx.device:
            self.inv_freq = self.inv_freq.to(idx.device)
        freqs = pos[:, None, :, None].float() * self.inv_freq        # (B, 1, T, hs/2), in float32
        x = self.model.embed_tokens(idx)
        c, s = freqs.cos(), freqs.sin()
        cos, sin = torch.cat([c, c], -1).to(x.dtype), torch.cat([-s, s], -1).to(x.dtype)  # (B, 1, T, hs)
        attn_mask = None  # plain causal attention when nothing is padded or cached
        if cache is not None or not bool(mask.all()):
            q_at = torch.arange(start, t_total, device=idx.device)[:, None]  # (T, 1) absolute
            k_at = torch.arange(t_total, device=idx.device)[None, :]         # (1, T_total)
            # a query sees earlier real tokens; it always sees itself, so a padding query's softmax
            # has one finite entry instead of none (no NaN that could reach other rows' values)
            attn_mask = ((k_at <= q_at) & mask[:, None, :]) | (k_at == q_at)  # (B, T, T_total)
            attn_mask = attn_mask[:, None]                                    # (B, 1, T, T_total)
        # non-reentrant checkpointing: the reentrant kind runs a backward inside backward, which
        # DistributedDataParallel's gradient hooks do not expect
        recompute = self.grad_ckpt and cache is None and torch.is_grad_enabled()
        for i, block in enumerate(self.model.layers):
            if recompute:
                x = checkpoint(block, x, cos, sin, attn_mask, None, i, use_reentrant=False)
            else:
                x = block(x, cos, sin, attn_mask, cache, i)
        if cache is not None:
            cache.len = t_total
        h = self.model.norm(x)
        return self.lm_head(h[:, logits_from:]) if logits else h

    # ---- Hugging Face format ------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path, dtype=None, device="cpu"):
        """Load an HF-format directory: config.json + model.safetensors (or a sharded index).

        dtype: a torch dtype, or None for the config's own ("dtype" / "torch_dtype", else float32)."""
        cfg_file = os.path.join(path, "config.json")
        if not os.path.isfile(cfg_file):
            raise FileNotFoundError(f"{cfg_file}: not found (expected a Hugging Face model directory)")
        hf = read_json(cfg_file)
        if not isinstance(hf, dict):
            raise ValueError(f"{cfg_file}: expected a JSON object, got {type(hf).__name__}")
        rope, theta = check_config(hf, cfg_file)
        kw = {"n_kv_head": hf["num_attention_heads"], "tie_embeddings": False,  # HF's defaults when absent
              **{ours: hf[theirs] for ours, theirs in HF_FIELDS.items() if hf.get(theirs) is not None}}
        cfg = ModelConfig(model_type=hf["model_type"], **kw, rope_theta=theta,
                          rope_scaling=rope if rope.get("rope_type", rope.get("type")) == "llama3" else None,
                          qkv_bias=hf["model_type"] == "qwen2" or bool(hf.get("attention_bias")),
                          o_bias=hf["model_type"] == "llama" and bool(hf.get("attention_bias")))
        dtype = dtype or DTYPES.get(hf.get("dtype") or hf.get("torch_dtype"), torch.float32)
        model = cls(cfg)
        model.load_state_dict(read_safetensors(path, model), strict=False)
        return model.to(device=device, dtype=dtype)

    def save_pretrained(self, path):
        """Write config.json + model.safetensors that transformers loads to the same logits."""
        os.makedirs(path, exist_ok=True)
        c = self.config
        hf = {theirs: getattr(c, ours) for ours, theirs in HF_FIELDS.items()}
        rope = dict(c.rope_scaling or {"rope_type": "default"}, rope_theta=c.rope_theta)
        dtype = next(self.parameters()).dtype
        hf.update(model_type=c.model_type, hidden_act="silu", attention_bias=c.o_bias,
                  architectures=["Qwen2ForCausalLM" if c.model_type == "qwen2" else "LlamaForCausalLM"],
                  rope_theta=c.rope_theta, rope_scaling=c.rope_scaling, rope_parameters=rope,
                  dtype=str(dtype).removeprefix("torch."), torch_dtype=str(dtype).removeprefix("torch."))
        # tied weights: safetensors refuses shared tensors, and HF expects no lm_head.weight then
        sd = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if c.tie_embeddings:
            sd.pop("lm_head.weight")
        atomic_write(os.path.join(path, "model.safetensors"), lambda f: save_file(sd, f, {"format": "pt"}))
        atomic_write(os.path.join(path, "config.json"), lambda f: write_text(f, json.dumps(hf, indent=2)))


def read_safetensors(path, model):
    """Read the tensors `model` needs from path's safetensors file(s), checking names and shapes."""
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(index):
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ValueError(f"{index}: field 'weight_map' is missing")
    elif os.path.isfile(os.path.join(path, "model.safetensors")):
        with open_safetensors(os.path.join(path, "model.safetensors")) as f:
            weight_map = {k: "model.safetensors" for k in f.keys()}
    else:
        raise FileNotFoundError(f"{path}: neither model.safetensors nor model.safetensors.index.json found")
    expected = model.state_dict()
    if model.config.tie_embeddings:
        expected.pop("lm_head.weight")  # tied: the embedding matrix is the output layer
    for name in expected:
        if name not in weight_map:
            raise ValueError(f"{path}: tensor {name!r} is missing from the checkpoint")
    out = {}
    for shard in sorted({weight_map[name] for name in expected}):
        file = os.path.join(path, shard)
        if not os.path.isfile(file):
            raise FileNotFoundError(f"{file}: not found (listed in {os.path.basename(index)})")
        with open_safetensors(file) as f:
            for name in (n for n in expected if weight_map[n] == shard):
                t = f.get_tensor(name)
                if t.shape != expected[name].shape:
                    raise ValueError(f"{file}: tensor {name!r} has shape {tuple(t.shape)}, "
                                     f"expected {tuple(expected[name].shape)} from config.json")
                out[name] = t
    return out


def open_safetensors(file):
    try:
        return safe_open(file, "pt")
    except SafetensorError as e:
        raise ValueError(f"{file}: not a readable safetensors file ({e})") from None


# file helpers, shared with training/checkpoint.py: errors name the file

def read_json(file):
    try:
        with open(file, encoding="utf-8-sig") as f:  # -sig: a UTF-8 byte-order mark is skipped
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{file}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{file}: not UTF-8 text (byte {e.start})") from None


def write_text(file, text):
    with open(file, "w") as f:
        f.write(text + "\n" if text else "")


def atomic_write(file, write):
    """write(tmp_path), then rename over `file`: a crash mid-write leaves the old file intact."""
    tmp = file + ".tmp"
    write(tmp)
    os.replace(tmp, file)

"""model.py against transformers on random tiny checkpoints, the KV cache, padding, and bad directories."""
import json
import os
import re

import pytest
import torch

from training.checkpoint import load_tokenizer
from model import KVCache, ModelConfig, Transformer

transformers = pytest.importorskip("transformers")

# (model_type, tied embeddings, n_kv_head, attention_bias, rope_parameters): GQA and MHA, both
# families, tied and untied, Llama with biases, and Llama 3's long-context rope
CASES = {
    "llama-tied-gqa": ("llama", True, 2, False, None),
    "llama-untied-mha-bias": ("llama", False, 4, True, None),
    "qwen2-tied-gqa": ("qwen2", True, 2, None, None),
    "qwen2-untied-gqa": ("qwen2", False, 1, None, None),
    "llama3-rope": ("llama", True, 2, False, dict(rope_type="llama3", rope_theta=500000.0, factor=8.0,
                                                  low_freq_factor=1.0, high_freq_factor=4.0,
                                                  original_max_position_embeddings=16)),
}


def hf_model(case, seed=0):
    model_type, tied, n_kv, bias, rope = CASES[case]
    kw = dict(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=n_kv, max_position_embeddings=64,
              tie_word_embeddings=tied, rms_norm_eps=1e-5)
    if model_type == "llama":
        cfg = transformers.LlamaConfig(attention_bias=bias, **kw)
        if rope:
            cfg.rope_parameters = rope
        cls = transformers.LlamaForCausalLM
    else:
        cfg, cls = transformers.Qwen2Config(**kw), transformers.Qwen2ForCausalLM
    torch.manual_seed(seed)
    m = cls(cfg).eval()
    with torch.no_grad():  # every weight random, norms and biases included, so no term hides
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if p.dim() == 1 and p.numel() == 64 else 0.0))
    return m


def ids(B=2, T=20, seed=1):
    return torch.randint(0, 96, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("case", CASES)
def test_logits_match_transformers(case, tmp_path):
    ref = hf_model(case)
    ref.save_pretrained(tmp_path)
    ours = Transformer.from_pretrained(tmp_path).eval()
    x = ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x).logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_save_pretrained_loads_in_transformers(case, tmp_path):
    ref = hf_model(case)
    ref.save_pretrained(tmp_path / "hf")
    ours = Transformer.from_pretrained(tmp_path / "hf").eval()
    ours.save_pretrained(tmp_path / "ours")
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "ours").eval()
    assert back.config.tie_word_embeddings == ref.config.tie_word_embeddings
    x = ids()
    with torch.no_grad():
        torch.testing.assert_close(back(x).logits, ours(x), atol=1e-4, rtol=0)


def test_model_trained_from_scratch_round_trips(tmp_path):
    cfg = ModelConfig(vocab_size=50, n_embd=32, n_layer=2, n_head=4, n_kv_head=2, intermediate_size=64)
    ours = Transformer(cfg).eval()
    ours.save_pretrained(tmp_path)
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    again = Transformer.from_pretrained(tmp_path).eval()
    x = torch.randint(0, 50, (3, 12))
    with torch.no_grad():
        torch.testing.assert_close(back(x).logits, ours(x), atol=1e-4, rtol=0)
        assert torch.equal(again(x), ours(x))


def test_bf16_dtype_argument(tmp_path):
    hf_model("qwen2-tied-gqa").save_pretrained(tmp_path)
    m = Transformer.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert m.lm_head.weight.dtype == torch.bfloat16 and m.inv_freq.dtype == torch.float32
    full = Transformer.from_pretrained(tmp_path).eval()
    x = ids()
    with torch.no_grad():  # bf16 keeps ~3 significant digits: close to float32, not equal
        assert (m.eval()(x).float() - full(x)).abs().max() < 0.5


def test_kv_cache_matches_full_forward():
    torch.manual_seed(0)
    m = Transformer(ModelConfig(vocab_size=96, n_embd=64, n_layer=2, n_head=4, n_kv_head=2)).eval()
    x = ids(T=12)
    cache = KVCache(n_layer=2, max_len=12)
    with torch.no_grad():
        full = m(x)
        parts = [m(x[:, :5], cache=cache)]               # prefill 5 tokens, then one at a time
        parts += [m(x[:, t:t + 1], cache=cache) for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=0)
    assert cache.len == 12


def test_left_padded_batch_rows_match_alone():
    torch.manual_seed(0)
    m = Transformer(ModelConfig(vocab_size=96, n_embd=64, n_layer=2, n_head=4, n_kv_head=2)).eval()
    rows = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15, 16]]
    T = max(map(len, rows))
    x = torch.tensor([[0] * (T - len(r)) + r for r in rows])
    mask = torch.tensor([[False] * (T - len(r)) + [True] * len(r) for r in rows])
    with torch.no_grad():
        batch = m(x, mask=mask)
        for i, r in enumerate(rows):
            alone = m(torch.tensor([r]))
            torch.testing.assert_close(batch[i, T - len(r):], alone[0], atol=1e-5, rtol=0)
        # and decoding two more tokens with the cache keeps each row equal to its own full pass
        cache = KVCache(n_layer=2, max_len=T + 2)
        m(x, mask=mask, cache=cache)
        nxt = torch.tensor([[20, 21], [22, 23], [24, 25]])
        full_mask = torch.cat([mask, torch.ones(3, 2, dtype=torch.bool)], 1)
        step1 = m(nxt[:, :1], mask=full_mask[:, :T + 1], cache=cache)
        step2 = m(nxt[:, 1:], mask=full_mask, cache=cache)
        for i, r in enumerate(rows):
            alone = m(torch.tensor([r + nxt[i].tolist()]))
            torch.testing.assert_close(step1[i, 0], alone[0, -2], atol=1e-5, rtol=0)
            torch.testing.assert_close(step2[i, 0], alone[0, -1], atol=1e-5, rtol=0)
    assert torch.isfinite(batch).all()  # padding queries attend to themselves: no NaN anywhere


def test_sequence_longer_than_context_raises():
    m = Transformer(ModelConfig(vocab_size=10, n_embd=16, n_head=2, n_kv_head=1, max_seq_len=8))
    with pytest.raises(ValueError, match="exceeds the model's context max_seq_len=8"):
        m(torch.zeros(1, 9, dtype=torch.long))


# ---- broken directories: each error names the file and the problem ----------------------------

@pytest.fixture
def saved(tmp_path):
    hf_model("llama-untied-mha-bias").save_pretrained(tmp_path)
    return tmp_path


def edit_config(path, **changes):
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(changes)
    (path / "config.json").write_text(json.dumps(cfg))


def test_missing_config(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json: not found"):
        Transformer.from_pretrained(tmp_path)


def test_malformed_config(saved):
    (saved / "config.json").write_text('{"model_type": "llama",\n  "hidden_size": }')
    with pytest.raises(ValueError, match=r"config\.json: invalid JSON at line 2"):
        Transformer.from_pretrained(saved)


def test_unknown_model_type(saved):
    edit_config(saved, model_type="gpt2")
    with pytest.raises(ValueError, match=r"config\.json: model_type 'gpt2' is not supported"):
        Transformer.from_pretrained(saved)


def test_missing_config_field(saved):
    edit_config(saved, hidden_size=None)
    with pytest.raises(ValueError, match=r"config\.json: field 'hidden_size' is missing"):
        Transformer.from_pretrained(saved)


@pytest.mark.parametrize("changes, message", [
    # values that make no model, each refused by name instead of failing deep inside torch
    (dict(num_attention_heads=0), "field 'num_attention_heads' is missing or not a positive integer, got 0"),
    (dict(num_key_value_heads=0), "field 'num_key_value_heads' is missing or not a positive integer, got 0"),
    (dict(vocab_size=-1), "field 'vocab_size' is missing or not a positive integer, got -1"),
    (dict(num_hidden_layers=0), "field 'num_hidden_layers' is missing or not a positive integer, got 0"),
    (dict(num_hidden_layers=True), "field 'num_hidden_layers' is missing or not a positive integer, got True"),
    (dict(hidden_size=30, head_dim=None), "hidden_size 30 is not a multiple of num_attention_heads 4"),
    (dict(num_key_value_heads=3), "num_attention_heads 4 is not a multiple of num_key_value_heads 3"),
    (dict(rope_scaling="linear", rope_parameters=None), "rope_parameters / rope_scaling must be an object"),
    (dict(rope_parameters=dict(rope_type="yarn", factor=4.0)), "rope type 'yarn' is not supported"),
    (dict(rope_parameters=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0)),
     "original_max_position_embeddings must be a positive finite number, got None"),
    (dict(rope_parameters=dict(rope_theta="big")), "rope_theta must be a positive finite number, got 'big'"),
    (dict(rope_parameters=dict(rope_theta=0)), "rope_theta must be a positive finite number, got 0"),
    (dict(rope_parameters=dict(rope_theta=float("inf"))), "rope_theta must be a positive finite number, got inf"),
    (dict(rms_norm_eps="1e-5"), "rms_norm_eps must be a positive finite number, got '1e-5'"),
    (dict(rms_norm_eps=-1), "rms_norm_eps must be a positive finite number, got -1"),
    (dict(eos_token_id=10**6), "eos_token_id must be a token id below vocab_size"),
    (dict(eos_token_id=[]), "eos_token_id must be a token id below vocab_size"),
    (dict(bos_token_id="x"), "bos_token_id must be a token id below vocab_size"),
    (dict(rope_parameters=dict(full_attention=dict(rope_type="yarn", factor=4.0))),
     "rope_parameters / rope_scaling must be an object of one rope's parameters, got {'full_attention'"),
    (dict(rope_parameters=dict(rope_type="default", rope_theta=1e4), rope_scaling=dict(type="yarn", factor=4.0)),
     "rope_parameters and rope_scaling name different rope types"),
])
def test_config_values_that_make_no_model(saved, changes, message):
    edit_config(saved, **changes)
    with pytest.raises(ValueError, match="config\\.json: " + re.escape(message)):
        Transformer.from_pretrained(saved)


def test_config_that_is_not_an_object(saved):
    (saved / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"config\.json: expected a JSON object, got list"):
        Transformer.from_pretrained(saved)


def test_missing_tensor(saved):
    from safetensors.torch import load_file, save_file
    sd = load_file(saved / "model.safetensors")
    del sd["model.layers.1.mlp.up_proj.weight"]
    save_file(sd, saved / "model.safetensors")
    with pytest.raises(ValueError, match="tensor 'model.layers.1.mlp.up_proj.weight' is missing"):
        Transformer.from_pretrained(saved)


def test_wrong_shape(saved):
    edit_config(saved, intermediate_size=128)
    with pytest.raises(ValueError, match=r"model\.safetensors: tensor 'model\.layers\.0\.mlp\.gate_proj"
                                         r"\.weight' has shape \(96, 64\), expected \(128, 64\)"):
        Transformer.from_pretrained(saved)


def test_no_weights(saved):
    os.remove(saved / "model.safetensors")
    with pytest.raises(FileNotFoundError, match="neither model.safetensors nor"):
        Transformer.from_pretrained(saved)


def test_sharded_checkpoint(tmp_path):
    ref = hf_model("qwen2-untied-gqa")
    ref.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    ours = Transformer.from_pretrained(tmp_path).eval()
    x = ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x).logits, atol=1e-4, rtol=0)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    os.remove(tmp_path / sorted(set(index["weight_map"].values()))[-1])
    with pytest.raises(FileNotFoundError, match=r"\.safetensors: not found \(listed in model\.safetensors"):
        Transformer.from_pretrained(tmp_path)


def test_tokenizer_json_round_trip(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(["12+34=46 #### 46"] * 10, trainers.BpeTrainer(special_tokens=["<unk>"]))
    tok.save(str(tmp_path / "tokenizer.json"))
    back = load_tokenizer(tmp_path)
    assert back.encode("12+34=46").ids == tok.encode("12+34=46").ids
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json: not found"):
        load_tokenizer(tmp_path / "nowhere")

"""Chat templates (training/chat.py) against transformers' apply_chat_template on tiny checkpoints
built here: a Qwen2.5-Instruct-like one and a Llama-3-like one; --prompt_template over a template;
stop ids from generation_config.json; saved checkpoints that AutoTokenizer loads; bad files."""
import json
import os
import random
import shutil

import pytest
import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

import train
from training import checkpoint
from training.chat import read_chat
from training.flags import parse_args
from training.launch import load_model

transformers = pytest.importorskip("transformers")

# Qwen2.5-Instruct's chat template as its tokenizer_config.json has it: a default system message,
# and a tools branch that a question alone never takes
QWEN_TEMPLATE = r'''{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
'''
# Llama 3 Instruct's: bos_token comes from the template, while the tokenizer's post-processor
# also adds <|begin_of_text|> to every plain encode
LLAMA3_TEMPLATE = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
                   "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
                   "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
                   "{{ content }}{% endfor %}{% if add_generation_prompt %}"
                   "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
# Qwen2's pre-tokenizer split (transformers' Qwen2Tokenizer rebuilds it, so ours must be the same)
QWEN_SPLIT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
              r"""\s*[\r\n]+|\s+(?!\S)|\s+""")
QUESTIONS = ["What is 2+3?", "Ünïcödé: 日本語で答えて ✓ 🙂 — ñ", "line one\nline two\n\n  indented\t tab\n",
             "braces {question} {{ x }} {% if %} }} {", "  leading and trailing spaces  "]


def byte_bpe(special, split=None):
    """A small byte-level BPE (as Qwen's and Llama 3's), its special tokens added after the vocabulary."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        ([pre_tokenizers.Split(Regex(split), behavior="isolated")] if split else [])
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=split is None)])
    tok.decoder = decoders.ByteLevel()
    corpus = ["You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", "system user assistant",
              *QUESTIONS, "the quick brown fox jumps over the lazy dog 0123456789"] * 4
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        show_progress=False))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    return tok


def tiny_model(cls, config_cls, vocab, path, **ids):
    torch.manual_seed(0)
    cfg = config_cls(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True, **ids)
    cls(cfg).save_pretrained(path)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2)


def added_tokens(tok, special):
    return {str(tok.token_to_id(t)): dict(content=t, lstrip=False, normalized=False, rstrip=False, single_word=False,
                                          special=True) for t in special}


def qwen_checkpoint(path):
    """A Qwen2.5-Instruct-like directory: its tokenizer files as the real one has them, a random
    tiny Qwen2, and generation_config.json ending at <|im_end|> or <|endoftext|>."""
    tok = byte_bpe(QWEN_SPECIAL, QWEN_SPLIT)
    eot, im_end = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|im_end|>")
    tiny_model(transformers.Qwen2ForCausalLM, transformers.Qwen2Config, tok.get_vocab_size(), path,
               bos_token_id=eot, eos_token_id=im_end)
    tok.save(os.path.join(path, "tokenizer.json"))
    write_json(os.path.join(path, "tokenizer_config.json"), dict(
        add_bos_token=False, add_prefix_space=False, added_tokens_decoder=added_tokens(tok, QWEN_SPECIAL),
        bos_token=None, chat_template=QWEN_TEMPLATE, clean_up_tokenization_spaces=False, eos_token="<|im_end|>",
        errors="replace", model_max_length=131072, pad_token="<|endoftext|>", split_special_tokens=False,
        tokenizer_class="Qwen2Tokenizer", unk_token=None))
    write_json(os.path.join(path, "generation_config.json"), dict(
        bos_token_id=eot, do_sample=True, eos_token_id=[im_end, eot], pad_token_id=eot, temperature=0.7, top_p=0.8))
    return tok


def llama3_checkpoint(path, form="string"):
    """A Llama-3-Instruct-like directory; form: where its template is (a string in
    tokenizer_config.json, the list of named templates, or chat_template.jinja)."""
    tok = byte_bpe(LLAMA3_SPECIAL)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])
    tiny_model(transformers.LlamaForCausalLM, transformers.LlamaConfig, tok.get_vocab_size(), path,
               bos_token_id=bos, eos_token_id=tok.token_to_id("<|eot_id|>"))
    tok.save(os.path.join(path, "tokenizer.json"))
    template = {"string": LLAMA3_TEMPLATE, "jinja": "{{ raise_exception('tokenizer_config.json is not read') }}",
                "list": [{"name": "tool_use", "template": "{{ 'not this one' }}"},
                         {"name": "default", "template": LLAMA3_TEMPLATE}]}[form]
    write_json(os.path.join(path, "tokenizer_config.json"), dict(
        bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", chat_template=template,
        model_max_length=131072, tokenizer_class="PreTrainedTokenizerFast"))
    if form == "jinja":  # as transformers 5 saves it; it wins over tokenizer_config.json's
        with open(os.path.join(path, "chat_template.jinja"), "w") as f:
            f.write(LLAMA3_TEMPLATE)
    return tok


def flags(prompt_template=None):
    return parse_args([] if prompt_template is None else ["--prompt_template", prompt_template])[0]


def hf_ids(path, question):
    hf = transformers.AutoTokenizer.from_pretrained(path)
    return hf.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                  tokenize=True, return_dict=False)


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("qwen"))
    qwen_checkpoint(path)
    return path


@pytest.mark.parametrize("question", QUESTIONS)
def test_qwen_prompt_ids_equal_apply_chat_template(qwen, question, capsys):
    _, codec = load_model(flags(), qwen, "cpu")
    assert codec.template is None and capsys.readouterr().out == ""  # the chat template, said nowhere
    assert codec.encode(question) == hf_ids(qwen, question)
    # the default system message, the question as the user's turn, then the assistant's header
    assert codec.tok.decode(codec.encode(question), skip_special_tokens=False) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("form", ["string", "list", "jinja"])
def test_llama3_bos_from_the_template_only_once(tmp_path, form):
    tok = llama3_checkpoint(str(tmp_path), form)
    bos = tok.token_to_id("<|begin_of_text|>")
    _, codec = load_model(flags(), str(tmp_path), "cpu")
    for question in QUESTIONS:
        ids = codec.encode(question)
        assert ids == hf_ids(str(tmp_path), question)
        assert ids[0] == bos and ids.count(bos) == 1  # the post-processor's would be a second one
    _, raw = load_model(flags("{question}\n"), str(tmp_path), "cpu")  # a raw template: tok.encode, as before
    assert raw.encode("hi") == tok.encode("hi\n").ids and raw.encode("hi")[0] == bos


def test_prompt_template_overrides_the_chat_template_and_says_so(qwen, tmp_path, capsys):
    _, codec = load_model(flags("Q: {question}\nA:"), qwen, "cpu")
    assert codec.encode("2+3") == codec.tok.encode("Q: 2+3\nA:").ids
    assert capsys.readouterr().out == (f"the chat template of {os.path.join(qwen, 'tokenizer_config.json')} is not "
                                       f"used: prompts follow --prompt_template\n")
    # a checkpoint without a chat template: '{question}\n' by default, given or not, and no line
    base = str(tmp_path / "base")
    shutil.copytree(qwen, base)
    config = json.load(open(os.path.join(base, "tokenizer_config.json")))
    write_json(os.path.join(base, "tokenizer_config.json"), {k: v for k, v in config.items() if k != "chat_template"})
    for template in (None, "{question}\n"):
        _, codec = load_model(flags(template), base, "cpu")
        assert codec.template == "{question}\n" and codec.encode("2+3") == codec.tok.encode("2+3\n").ids
    assert capsys.readouterr().out == ""


def test_stop_ids_from_generation_config(qwen, tmp_path):
    tok = Tokenizer.from_file(os.path.join(qwen, "tokenizer.json"))
    eot, im_end = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|im_end|>")
    _, codec = load_model(flags(), qwen, "cpu")
    assert codec.eos_id == [im_end, eot]  # config.json's <|im_end|>, then generation_config.json's others
    path = str(tmp_path / "m")
    shutil.copytree(qwen, path)
    for generation, eos_id in [({"eos_token_id": im_end}, im_end),     # the same id: one id, as before
                               ({"eos_token_id": [eot]}, [im_end, eot]),
                               ({"do_sample": True}, im_end)]:          # none named: config.json's alone
        write_json(os.path.join(path, "generation_config.json"), generation)
        assert load_model(flags(), path, "cpu")[1].eos_id == eos_id
    os.remove(os.path.join(path, "generation_config.json"))
    assert load_model(flags(), path, "cpu")[1].eos_id == im_end


def test_a_saved_checkpoint_loads_in_auto_tokenizer(qwen, tmp_path):
    model, codec = load_model(flags(), qwen, "cpu")
    opt = torch.optim.AdamW(model.parameters())
    open(tmp_path / "metrics.jsonl", "w").close()
    checkpoint.save(str(tmp_path), "rl", 0, model, codec, opt, None, random.Random(0), flags(), {})
    ckpt = str(tmp_path / "ckpt")
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):  # as the source had them
        assert open(os.path.join(ckpt, name), "rb").read() == open(os.path.join(qwen, name), "rb").read()
    hf = transformers.AutoTokenizer.from_pretrained(ckpt)
    assert (hf.eos_token, hf.pad_token) == ("<|im_end|>", "<|endoftext|>")
    assert transformers.GenerationConfig.from_pretrained(ckpt).eos_token_id == codec.eos_id
    _, again = load_model(flags(), ckpt, "cpu")  # and a resumed run builds the same prompts
    for question in QUESTIONS:
        assert hf_ids(ckpt, question) == codec.encode(question) == again.encode(question)


def test_the_toy_model_saves_files_auto_tokenizer_reads(tmp_path):
    model, codec = load_model(flags(), None, "cpu")
    checkpoint.save_model(str(tmp_path), model, codec)
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert (hf.eos_token, hf.pad_token) == ("<eos>", "<pad>")
    assert (hf.eos_token_id, hf.pad_token_id) == (codec.eos_id, codec.pad_id)
    assert transformers.GenerationConfig.from_pretrained(tmp_path).eos_token_id == codec.eos_id
    assert hf("3+5+2\n", add_special_tokens=False)["input_ids"] == codec.encode("3+5+2")
    # a chat template given to it renders as ours does
    hf.chat_template = QWEN_TEMPLATE.replace("<|im_start|>", "").replace("<|im_end|>", "")
    assert hf.apply_chat_template([{"role": "user", "content": "1+2"}], add_generation_prompt=True,
                                  tokenize=False).endswith("user\n1+2\nassistant\n")


def test_a_run_from_an_instruct_checkpoint_keeps_its_template_through_resume(qwen, tmp_path, capsys):
    with open(tmp_path / "data.jsonl", "w") as f:
        for a in range(6):
            f.write(json.dumps({"question": f"{a}+1", "answer": str(a + 1)}) + "\n")
    out = str(tmp_path / "out")
    train.main(["--init_from", qwen, "--data", str(tmp_path / "data.jsonl"), "--out_dir", out, "--rl_steps", "1",
                "--eval_interval", "1", "--prompts_per_step", "2", "--group_size", "2", "--eval_prompts", "2",
                "--eval_samples", "2", "--max_new_tokens", "4"])
    train.main(["--out_dir", out, "--resume", "--rl_steps", "2"])  # from ckpt/, which carries the template
    ckpt = os.path.join(out, "ckpt")
    assert checkpoint.read_json(os.path.join(ckpt, "trainer_state.json"))["step"] == 2
    assert checkpoint.read_json(os.path.join(ckpt, "trainer_state.json"))["args"]["prompt_template"] is None
    assert "chat template" not in capsys.readouterr().out
    _, codec = load_model(flags(), ckpt, "cpu")
    assert codec.template is None and codec.encode("2+3") == hf_ids(ckpt, "2+3") == hf_ids(qwen, "2+3")


BAD = {
    "bad JSON": ("tokenizer_config.json", '{"chat_template": "{{ x }}",', "invalid JSON at line 1"),
    "not an object": ("tokenizer_config.json", '["chat_template"]', "expected a JSON object, got list"),
    "does not compile": ("tokenizer_config.json", json.dumps({"chat_template": "{% if messages %}never closed"}),
                         "the chat template does not compile (Unexpected end of template."),
    "no default": ("tokenizer_config.json", json.dumps({"chat_template": [{"name": "tool_use", "template": "x"}]}),
                   "chat_template lists templates, none of them named 'default'"),
    "not a string": ("tokenizer_config.json", json.dumps({"chat_template": 7}), "chat_template must be a string"),
    "jinja does not compile": ("chat_template.jinja", "{{ messages[0]['content'] ", "the chat template does not compile"),
    "raises": ("tokenizer_config.json", json.dumps({"chat_template": "{{ raise_exception('System role only') }}"}),
               "the chat template fails on a user message (TemplateError: System role only)"),
    "bad eos": ("generation_config.json", '{"eos_token_id": "<|im_end|>"}',
                "eos_token_id must be a token id or a list of them, got '<|im_end|>'"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_file_is_one_error_naming_it(qwen, tmp_path, case):
    name, text, message = BAD[case]
    path = str(tmp_path / "m")
    shutil.copytree(qwen, path)
    with open(os.path.join(path, name), "w") as f:
        f.write(text)
    with pytest.raises(ValueError) as e:
        load_model(flags(), path, "cpu")[1].encode("2+3")  # a template that raises does so on the first prompt
    assert str(e.value).startswith(f"{os.path.join(path, name)}: {message}")


def test_read_chat_of_a_directory_without_files(tmp_path):
    chat = read_chat(str(tmp_path))
    assert (chat.template, chat.special, chat.eos_ids, chat.files) == (None, {}, [], {})

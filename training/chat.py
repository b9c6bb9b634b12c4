"""
A checkpoint's chat template and stop tokens, read and rendered as transformers reads and renders
them, and its tokenizer files, carried into every model directory the project saves.

- `read_chat(path)`: the template (chat_template.jinja, which transformers 5 writes and prefers,
  else tokenizer_config.json's "chat_template": a string, or a list of {name, template} whose
  "default" is taken), the special tokens a template may name (bos_token, eos_token, ...),
  generation_config.json's eos_token_id (an id or a list) and the files' bytes. A missing file
  means none; a malformed file, or a template that does not compile, is a ValueError naming it.
- `Chat.render(question)`: the text of transformers' apply_chat_template([{"role": "user",
  "content": question}], add_generation_prompt=True). A template writes its special tokens
  itself (Llama 3's bos_token), so the text is tokenized without adding them again.
- `Chat.write(path)`: the files as the source had them; a model with no tokenizer_config.json
  (the toy) gets minimal ones (`Chat.add_missing`), so that AutoTokenizer finds its eos and pad.
"""
import functools
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from model import read_json

FILES = ("tokenizer_config.json", "generation_config.json", "special_tokens_map.json", "chat_template.jinja")
SPECIAL = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


@dataclass
class Chat:
    """What a model directory says about chat (module docstring); Chat() for a model with no files."""
    template: str = None       # None: no chat template
    template_file: str = None  # the file it came from, named in errors
    special: dict = field(default_factory=dict)  # e.g. {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    eos_ids: list = field(default_factory=list)  # generation_config.json's eos_token_id, [] if none
    files: dict = field(default_factory=dict)    # file name -> bytes, as `write` writes them back

    def render(self, question):
        messages = [{"role": "user", "content": question}]
        try:
            return compile_template(self.template).render(messages=messages, tools=None, documents=None,
                                                          add_generation_prompt=True, **self.special)
        except Exception as e:  # a template is a program: raise_exception, or any error of its own
            raise ValueError(f"{self.template_file}: the chat template fails on a user message "
                             f"({type(e).__name__}: {e})") from None

    def add_missing(self, tok, eos, pad_id):
        """Minimal files where the source had none: PreTrainedTokenizerFast reads tokenizer.json as
        it is, and the eos and pad tokens are named because AutoTokenizer cannot guess them. Never
        a special_tokens_map.json beside the source's tokenizer_config.json: it would override it."""
        names = {"eos_token": tok.id_to_token(eos[0]) if eos else None, "pad_token": tok.id_to_token(pad_id)}
        minimal = {"generation_config.json": {"eos_token_id": eos[0] if len(eos) == 1 else eos, "pad_token_id": pad_id}}
        if "tokenizer_config.json" not in self.files:
            minimal.update({"tokenizer_config.json": {"tokenizer_class": "PreTrainedTokenizerFast", **names},
                            "special_tokens_map.json": names})
        for name, content in minimal.items():
            self.files.setdefault(name, (json.dumps(content, indent=2) + "\n").encode())

    def write(self, path):
        for name, data in self.files.items():
            Path(path, name).write_bytes(data)


def read_chat(path):
    """The Chat of a model directory (module docstring)."""
    files = {name: Path(path, name).read_bytes() for name in FILES if Path(path, name).is_file()}
    config = read_object(path, "tokenizer_config.json", files)
    template, template_file = config.get("chat_template"), os.path.join(path, "tokenizer_config.json")
    if "chat_template.jinja" in files:
        template_file = os.path.join(path, "chat_template.jinja")
        try:
            template = files["chat_template.jinja"].decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{template_file}: not UTF-8 text (byte {e.start})") from None
    elif isinstance(template, list):  # [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
        template = next((t.get("template") for t in template if isinstance(t, dict) and t.get("name") == "default"), None)
        if template is None:
            raise ValueError(f"{template_file}: chat_template lists templates, none of them named 'default'")
    if template is not None:
        if not isinstance(template, str):
            raise ValueError(f"{template_file}: chat_template must be a string or a list of "
                             f"{{name, template}}, got {type(template).__name__}")
        try:
            compile_template(template)
        except jinja2.TemplateError as e:
            raise ValueError(f"{template_file}: the chat template does not compile ({e})") from None
    # as transformers: special_tokens_map.json overrides tokenizer_config.json, unless the latter
    # lists its added tokens (added_tokens_decoder); a token is a string or an AddedToken's fields
    named = {**config, **({} if "added_tokens_decoder" in config else read_object(path, "special_tokens_map.json", files))}
    special = {k: v["content"] if isinstance(v, dict) else str(v) for k in SPECIAL if (v := named.get(k)) is not None}
    eos = read_object(path, "generation_config.json", files).get("eos_token_id")
    eos_ids = [] if eos is None else [eos] if type(eos) is int else eos
    if not (isinstance(eos_ids, list) and all(type(i) is int and i >= 0 for i in eos_ids)):
        raise ValueError(f"{os.path.join(path, 'generation_config.json')}: eos_token_id must be a token id "
                         f"or a list of them, got {eos!r}")
    return Chat(template, template_file, special, eos_ids, files)


def read_object(path, name, files):
    """A JSON object file of the directory, {} if it has none."""
    if name not in files:
        return {}
    value = read_json(os.path.join(path, name))
    if not isinstance(value, dict):
        raise ValueError(f"{os.path.join(path, name)}: expected a JSON object, got {type(value).__name__}")
    return value


class Generation(Extension):
    """{% generation %}...{% endgeneration %}: transformers marks the assistant's text with it (for
    its token masks); rendered here as the text inside, as transformers renders it."""
    tags = {"generation"}

    def parse(self, parser):
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


@functools.lru_cache(maxsize=8)  # compiled once, rendered for every prompt
def compile_template(text):
    """transformers' environment: sandboxed (a template from the Hub is code), blocks trimmed as
    the Hub's templates are written for, with its tojson, raise_exception and strftime_now."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, Generation])
    env.filters["tojson"] = tojson
    env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: datetime.now().strftime(fmt))
    return env.from_string(text)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # jinja2's own tojson escapes <, >, & and ' for HTML, which would change a prompt's text
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.TemplateError(message)

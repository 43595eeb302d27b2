"""Make tests/fixtures/chat/: two tokenizers with chat templates in the two
common styles (Llama 3's headers, Qwen's ChatML), and the token ids that
transformers' `apply_chat_template` gives for fixed conversations, so that
Bios's chat rendering is checked against transformers itself.

Run with the venv of scripts/make_hf_fixtures.py:

    V/bin/python scripts/make_chat_fixtures.py

The tokenizers are small byte-level BPEs trained here (the `tokenizers`
library) on a few sentences, with each style's special tokens; the
templates are written for these fixtures in each style's shape.
"""

import json
import pathlib

from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
from transformers import AutoTokenizer

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "chat"

CORPUS = [
    "What is a bond? A bond is a loan to a company or a government.",
    "You are a helpful assistant. Answer briefly.",
    "What is equity? Assets minus debts. Thanks! You are welcome.",
    "user assistant system",
] * 20

STYLES = {
    "llama3": {
        "specials": ["<|begin_of_text|>", "<|start_header_id|>",
                     "<|end_header_id|>", "<|eot_id|>"],
        "bos": "<|begin_of_text|>",
        "eos": "<|eot_id|>",
        "template": (
            "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
            "<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
            "{% if add_generation_prompt %}<|start_header_id|>assistant"
            "<|end_header_id|>\n\n{% endif %}"
        ),
    },
    "chatml": {
        "specials": ["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
        "bos": None,
        "eos": "<|im_end|>",
        "template": (
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
            "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}"
            "<|im_start|>assistant\n{% endif %}"
        ),
    },
}

CONVERSATIONS = [
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is a bond?"},
        {"role": "assistant", "content": "A loan to a company."},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You are welcome."},
    ],
    [
        {"role": "user", "content": "What is equity?"},
    ],
]


def make(style, spec):
    folder = OUT / style
    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=spec["specials"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": spec["template"],
        "eos_token": spec["eos"],
        "clean_up_tokenization_spaces": False,
    }
    if spec["bos"]:
        config["bos_token"] = spec["bos"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    hf = AutoTokenizer.from_pretrained(str(folder))
    cases = []
    for messages in CONVERSATIONS:
        for gen in [False, True]:
            ids = hf.apply_chat_template(
                messages, tokenize=True, add_generation_prompt=gen,
            )
            if not isinstance(ids, list):
                ids = ids["input_ids"]
            cases.append({
                "messages": messages,
                "addGenerationPrompt": gen,
                "ids": list(ids),
            })
    (folder / "expected.json").write_text(json.dumps(cases) + "\n")
    print(style, [len(c["ids"]) for c in cases])


for style, spec in STYLES.items():
    make(style, spec)

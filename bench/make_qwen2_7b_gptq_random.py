#!/usr/bin/env python3
"""Writes a random-weight GPTQ checkpoint with Qwen2-7B's exact shapes (issue 17's bench model).

The layout is AutoGPTQ's QuantLinear.pack (as tests/support/gptq_fixture.h writes it): per
linear layer `qweight` int32 [in / (32 / bits), out] with input rows packed lowest bits first,
`qzeros` int32 [groups, out / (32 / bits)] packed along the output and storing zero - 1 (the
"gptq" v1 format), fp16 `scales` [groups, out], int32 `g_idx` [in]. The config's
quantization_config is the real Qwen2-7B-Instruct-GPTQ-Int4/Int8's (bits 4 or 8, group 128,
desc_act false, sym true); `--act-order` writes the act-order variant (g_idx a shuffled
assignment of rows to groups, one per input, shared by q|k|v and by gate|up as a calibration
would give them). Embeddings, norms, biases and the LM head stay bf16 (the real checkpoints
keep them unquantized), written as bench/make_qwen2_7b_random.py writes them (its LM head
zeroes the rows of tokens that are not text on their own, so greedy output is text).

Random integers, not a quantized model: for throughput, memory and lifecycle measurements only.

Run on the GPU machine (torch + safetensors):
  python3 bench/make_qwen2_7b_gptq_random.py OUT_DIR TOKENIZER_DIR --bits 4 [--act-order]
Int4: ~5.6 GB on disk (4.5 GB of it read per decode step); Int8: ~9.2 GB.
"""
import argparse
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_qwen2_7b_random import CONFIG, text_token_ids  # noqa: E402


def pack_rows(q, bits):
    """AutoGPTQ's qweight: q int64 [in, out] -> int32 [in / pack, out], rows lowest bits first."""
    pack = 32 // bits
    n_in, n_out = q.shape
    shifts = (torch.arange(pack, device=q.device, dtype=torch.int64) * bits).view(1, pack, 1)
    words = (q.view(n_in // pack, pack, n_out) << shifts).sum(dim=1)
    return to_int32(words)


def pack_columns(z, bits):
    """AutoGPTQ's qzeros: z int64 [groups, out] -> int32 [groups, out / pack], along the output."""
    pack = 32 // bits
    g, n_out = z.shape
    shifts = (torch.arange(pack, device=z.device, dtype=torch.int64) * bits).view(1, 1, pack)
    words = (z.view(g, n_out // pack, pack) << shifts).sum(dim=2)
    return to_int32(words)


def to_int32(words):
    words = torch.where(words >= 2**31, words - 2**32, words)
    return words.to(torch.int32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("tokenizer")
    ap.add_argument("--bits", type=int, choices=(4, 8), default=4)
    ap.add_argument("--group-size", type=int, default=128)
    ap.add_argument("--act-order", action="store_true")
    args = ap.parse_args()
    bits, gs = args.bits, args.group_size
    out = args.out
    os.makedirs(out, exist_ok=True)
    config = dict(CONFIG)
    config["quantization_config"] = {
        "bits": bits, "group_size": gs, "damp_percent": 0.01, "desc_act": args.act_order,
        "static_groups": False, "sym": True, "true_sequential": True,
        "model_name_or_path": None, "model_file_base_name": "model", "quant_method": "gptq"}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 151643, "eos_token_id": [151645, 151643]}, f)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(args.tokenizer, name), os.path.join(out, name))

    c = config
    h, inter, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    kv = c["num_key_value_heads"] * h // c["num_attention_heads"]
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator(device=dev).manual_seed(0)
    levels = 1 << bits
    # Weights of std ~0.02 as the bf16 model: uniform q - zero over [-levels/2, levels/2).
    scale_base = 0.02 * (12 ** 0.5) / levels

    def rand(*shape, std=0.02):
        return (torch.randn(*shape, generator=gen, device=dev) * std).to(torch.bfloat16).cpu()

    def g_idx_for(n_in):
        if not args.act_order:
            return torch.arange(n_in, device=dev, dtype=torch.int32) // gs
        order = torch.randperm(n_in, generator=gen, device=dev)
        g = torch.empty(n_in, dtype=torch.int32, device=dev)
        g[order] = (torch.arange(n_in, device=dev, dtype=torch.int32) // gs)
        return g

    def linear(prefix, n_out, n_in, g_idx):
        groups = (n_in + gs - 1) // gs
        q = torch.randint(0, levels, (n_in, n_out), generator=gen, device=dev, dtype=torch.int64)
        zeros = torch.full((groups, n_out), levels // 2 - 1, device=dev, dtype=torch.int64)  # v1
        scales = (scale_base * (0.9 + 0.2 * torch.rand(groups, n_out, generator=gen, device=dev)))
        return {
            prefix + ".qweight": pack_rows(q, bits).cpu(),
            prefix + ".qzeros": pack_columns(zeros, bits).cpu(),
            prefix + ".scales": scales.to(torch.float16).cpu(),
            prefix + ".g_idx": g_idx.cpu(),
        }

    shards = [{"model.embed_tokens.weight": rand(v, h)}]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        g_h, g_inter = g_idx_for(h), g_idx_for(inter)
        s = {
            p + "input_layernorm.weight": torch.ones(h, dtype=torch.bfloat16),
            p + "post_attention_layernorm.weight": torch.ones(h, dtype=torch.bfloat16),
            p + "self_attn.q_proj.bias": rand(h),
            p + "self_attn.k_proj.bias": rand(kv),
            p + "self_attn.v_proj.bias": rand(kv),
        }
        s.update(linear(p + "self_attn.q_proj", h, h, g_h))
        s.update(linear(p + "self_attn.k_proj", kv, h, g_h))
        s.update(linear(p + "self_attn.v_proj", kv, h, g_h))
        s.update(linear(p + "self_attn.o_proj", h, h, g_idx_for(h)))
        s.update(linear(p + "mlp.gate_proj", inter, h, g_h))
        s.update(linear(p + "mlp.up_proj", inter, h, g_h))
        s.update(linear(p + "mlp.down_proj", h, inter, g_inter))
        shards.append(s)
    lm_head = rand(v, h)
    text = torch.zeros(v, dtype=torch.bool)
    text[torch.tensor(text_token_ids(args.tokenizer))] = True
    lm_head[~text] = 0
    shards.append({"model.norm.weight": torch.ones(h, dtype=torch.bfloat16), "lm_head.weight": lm_head})
    files, cur, cur_bytes = [], {}, 0
    for s in shards:
        size = sum(t.numel() * t.element_size() for t in s.values())
        if cur and cur_bytes + size > 4 << 30:
            files.append(cur)
            cur, cur_bytes = {}, 0
        cur.update(s)
        cur_bytes += size
    files.append(cur)
    index, total, quantized = {}, 0, 0
    for k, tensors in enumerate(files):
        name = f"model-{k + 1:05d}-of-{len(files):05d}.safetensors"
        save_file(tensors, os.path.join(out, name), metadata={"format": "pt"})
        for t_name, t in tensors.items():
            index[t_name] = name
            total += t.numel() * t.element_size()
            if t_name.endswith((".qweight", ".qzeros", ".scales", ".g_idx")):
                quantized += t.numel() * t.element_size()
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": index}, f, indent=1)
    print(f"wrote {out}: {total / 1e9:.2f} GB ({quantized / 1e9:.2f} GB of GPTQ tensors, "
          f"{bits}-bit, group {gs}, act-order {args.act_order}) in {len(files)} files")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds the CUDA device's test models: tiny, *trained* Qwen2 / Llama 3 models whose greedy
continuations are confident enough to be compared token for token in bf16.

The random-weight fixtures of make_test_models.py test the fp32 CPU engine against a float64
reference; in bf16 they are chaotic (transformers' own bf16 greedy run leaves its float64 one
after 2 to 24 tokens), so no bf16 engine could be held to their tokens. These models are
trained for a few hundred steps on the same small corpus until they predict it confidently:
their top-1 / top-2 logit gaps along the reference continuations are large compared with bf16
rounding, and the script checks that transformers' bf16 greedy runs (eager and sdpa attention)
equal its float64 one before writing anything.

Run on the GPU machine (torch, transformers 5.x, tokenizers):
    python3 scripts/make_gpu_test_models.py OUT_DIR
Writes OUT_DIR/{qwen2_gpu,llama3_gpu}/ (bf16 safetensors, config, tokenizer) and
OUT_DIR/reference_{qwen2,llama3}_gpu.json: per prompt, float64 logits at three positions
(`logits`), transformers' bf16 logits on the GPU there (`bf16_logits`), the float64 greedy
continuation (`greedy`, 32 tokens) and its smallest top-1 / top-2 gap; top-level
`bf16_cuda_greedy` (transformers bf16 on the GPU, sdpa) and the training loss.
"""
import json
import os
import sys

import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_test_models import (CORPUS, LLAMA3_PATTERN, QWEN_PATTERN, VOCAB,  # noqa: E402
                              make_tokenizer, reference, round_weights, write_tokenizer)


def train(model, ids, steps=600, seq=64, lr=3e-3):
    model = model.to("cuda", torch.float32).train()
    data = torch.tensor(ids, device="cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator(device="cuda").manual_seed(0)
    loss = None
    for step in range(steps):
        starts = torch.randint(0, len(ids) - seq - 1, (32,), device="cuda", generator=g)
        x = torch.stack([data[s:s + seq] for s in starts])
        out = model(input_ids=x, labels=x)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        loss = float(out.loss)
    return model.eval(), loss


def bf16_run(model, prompts, positions, impl):
    m = model.to("cuda", torch.bfloat16).eval()
    m.config._attn_implementation = impl
    tokens, logits = [], []
    with torch.no_grad():
        for prompt, pos in zip(prompts, positions):
            out = m(torch.tensor([prompt], device="cuda"), use_cache=False).logits[0].float()
            logits.append([[float(v) for v in out[p]] for p in pos])
            ids = list(prompt)
            for _ in range(32):
                step = m(torch.tensor([ids], device="cuda"), use_cache=False).logits[0, -1]
                ids.append(int(torch.argmax(step)))
            tokens.append(ids[len(prompt):])
    return tokens, logits


def build(name, make, tok, prompts, out, tok_args, gen):
    ids = tok.encode("".join(CORPUS)).ids
    torch.manual_seed(1234)
    model, loss = train(make(), ids)
    round_weights(model)
    cases = reference(model.to("cpu"), prompts)  # float64 on the CPU
    positions = [c["logit_positions"] for c in cases]
    sdpa_tokens, sdpa_logits = bf16_run(model, prompts, positions, "sdpa")
    eager_tokens, _ = bf16_run(model, prompts, positions, "eager")
    for c, t_sdpa, t_eager, lg in zip(cases, sdpa_tokens, eager_tokens, sdpa_logits):
        c["bf16_logits"] = lg
        print(f"{name}: prompt of {len(c['prompt'])}: min gap {c['greedy_min_gap']:.3f}, "
              f"bf16 sdpa == f64: {t_sdpa == c['greedy']}, eager == f64: {t_eager == c['greedy']}",
              flush=True)
        assert t_sdpa == c["greedy"] and t_eager == c["greedy"], "bf16 greedy is not stable"
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    model.to("cpu", torch.bfloat16).save_pretrained(folder)
    with open(os.path.join(folder, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
    write_tokenizer(tok, folder, *tok_args)
    with open(os.path.join(out, f"reference_{name}.json"), "w") as f:
        json.dump({"model": name, "train_loss": loss, "cases": cases,
                   "bf16_cuda_greedy": sdpa_tokens}, f)
    print(f"{name}: final training loss {loss:.4f}", flush=True)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    print("torch", torch.__version__, "transformers", transformers.__version__, flush=True)

    q_specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    qtok = make_tokenizer(QWEN_PATTERN, q_specials, 480)
    q_eot, q_im_end = qtok.token_to_id("<|endoftext|>"), qtok.token_to_id("<|im_end|>")

    def make_qwen():
        # GQA 4/2, head_dim 32, q/k/v bias, tied embeddings.
        cfg = transformers.Qwen2Config(
            vocab_size=VOCAB, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
            use_sliding_window=False, sliding_window=None, bos_token_id=q_eot,
            eos_token_id=q_im_end, attn_implementation="sdpa")
        return transformers.Qwen2ForCausalLM(cfg)

    def corpus_prompts(tok):
        ids = tok.encode("".join(CORPUS)).ids
        return [ids[3:8], ids[40:53], ids[100:140]]

    build("qwen2_gpu", make_qwen, qtok, corpus_prompts(qtok), out,
          ("<|endoftext|>", "<|im_end|>", "<|endoftext|>", None),
          {"bos_token_id": q_eot, "eos_token_id": [q_im_end, q_eot]})

    l_specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
                  "<|start_header_id|>", "<|end_header_id|>"]
    ltok = make_tokenizer(LLAMA3_PATTERN, l_specials, 500)
    l_bos, l_eos = ltok.token_to_id("<|begin_of_text|>"), ltok.token_to_id("<|end_of_text|>")
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 32}

    def make_llama():
        # GQA 4/1, head_dim 64 (heads x head_dim != hidden), untied, llama3 rope scaling.
        kw = dict(vocab_size=VOCAB, hidden_size=128, intermediate_size=192, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=1, head_dim=64,
                  max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
                  attention_bias=False, mlp_bias=False, bos_token_id=l_bos, eos_token_id=l_eos,
                  attn_implementation="sdpa")
        try:
            cfg = transformers.LlamaConfig(rope_parameters=dict(rope, rope_theta=500000.0), **kw)
        except TypeError:
            cfg = transformers.LlamaConfig(rope_theta=500000.0, rope_scaling=rope, **kw)
        return transformers.LlamaForCausalLM(cfg)

    build("llama3_gpu", make_llama, ltok, corpus_prompts(ltok), out,
          ("<|begin_of_text|>", "<|eot_id|>", "<|end_of_text|>", None),
          {"bos_token_id": l_bos, "eos_token_id": [l_eos]})


if __name__ == "__main__":
    main()

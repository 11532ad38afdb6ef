#!/usr/bin/env python3
"""Builds the tiny random-weight test models and their reference outputs.

Run where `torch`, `transformers` (5.x) and `tokenizers` are installed (the GPU machine):

    python3 scripts/make_test_models.py OUT_DIR

Writes, under OUT_DIR (copy it to tests/fixtures/models/):
  qwen2_fp32/ qwen2_bf16/ qwen2_fp16/   Qwen2ForCausalLM: tied embeddings, q/k/v bias, GQA 4/2
  llama3_fp32/ llama3_bf16/             LlamaForCausalLM: untied, llama3 rope scaling, GQA 4/2,
                                        explicit head_dim; the bf16 copy is sharded (index.json)
  reference_qwen2.json reference_llama3.json

Every weight is rounded to a value that bf16 and fp16 both hold exactly (bf16 rounding, tiny
values flushed to 0), so that the fp32, bf16 and fp16 folders of a model are the same model
and one reference serves them all. The reference is computed in float64 on the CPU (eager
attention), so it measures our fp32 kernels and not PyTorch's. Greedy continuations are a
plain argmax loop over full forwards (no cache, no EOS stop), which is what
generate(do_sample=False) computes; each step also records the gap between the best and the
second-best logit, so that a test can tell a real mismatch from a near tie.
"""
import json
import os
import sys

import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

CORPUS = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "Sluice serves language models over HTTP and gRPC, with a paged key-value cache.",
    "def forward(self, x):\n    return self.norm(x + self.attn(x))\n",
    "Hello world! How are you today? I am fine, thank you.",
    "In the beginning the Universe was created. This has made a lot of people very angry.",
    "1234567890 + 987654321 = 1111111111",
    "Bonjour le monde. Hallo Welt. Hola mundo. 你好，世界。",
] * 4

VOCAB = 512


def make_tokenizer(pattern, specials, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(specials), special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens(specials)
    return tok


def round_weights(model):
    with torch.no_grad():
        for p in model.parameters():
            q = p.data.to(torch.bfloat16).to(torch.float32)
            q[q.abs() < 1e-4] = 0.0
            p.data.copy_(q)


def greedy(model, prompt, steps):
    ids = list(prompt)
    gaps = []
    with torch.no_grad():
        for _ in range(steps):
            out = model(torch.tensor([ids]), use_cache=False).logits[0, -1]
            top = torch.topk(out, 2)
            gaps.append(float(top.values[0] - top.values[1]))
            ids.append(int(top.indices[0]))
    return ids[len(prompt):], min(gaps)


def reference(model, prompts):
    model = model.to(torch.float64).eval()
    cases = []
    for prompt in prompts:
        with torch.no_grad():
            logits = model(torch.tensor([prompt]), use_cache=False).logits[0]
        n = len(prompt)
        positions = sorted(set([0, n // 2, n - 1]))
        tokens, gap = greedy(model, prompt, 32)
        cases.append({
            "prompt": prompt,
            "logit_positions": positions,
            "logits": [[float(v) for v in logits[p]] for p in positions],
            "greedy": tokens,
            "greedy_min_gap": gap,
        })
    return cases


def bf16_cuda_greedy(model, prompts):
    """Greedy tokens with bf16 compute on the GPU, for the CUDA device's later tests."""
    if not torch.cuda.is_available():
        return None
    m = model.to(torch.bfloat16).to("cuda").eval()
    out = []
    with torch.no_grad():
        for prompt in prompts:
            ids = list(prompt)
            for _ in range(32):
                logits = m(torch.tensor([ids], device="cuda"), use_cache=False).logits[0, -1]
                ids.append(int(torch.argmax(logits)))
            out.append(ids[len(prompt):])
    return out


def write_tokenizer(tok, folder, bos, eos, pad, template):
    tok.save(os.path.join(folder, "tokenizer.json"))
    cfg = {
        "add_bos_token": False, "add_eos_token": False,
        "bos_token": bos, "eos_token": eos, "pad_token": pad,
        "clean_up_tokenization_spaces": False, "model_max_length": 256,
        "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template,
    }
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def save_variants(model, tok, out, name, variants, gen, tok_args):
    for dtype_name, dtype, shard in variants:
        folder = os.path.join(out, f"{name}_{dtype_name}")
        os.makedirs(folder, exist_ok=True)
        m = model.to(dtype)
        m.save_pretrained(folder, max_shard_size=shard) if shard else m.save_pretrained(folder)
        with open(os.path.join(folder, "generation_config.json"), "w") as f:
            json.dump(gen, f, indent=2)
        write_tokenizer(tok, folder, *tok_args)
    model.to(torch.float32)


def pick_model(make, prompts, stds):
    """The first init scale whose greedy continuations have no near tie."""
    for std in stds:
        torch.manual_seed(1234)
        model = make(std)
        round_weights(model)
        ref = reference(model, prompts)
        gap = min(c["greedy_min_gap"] for c in ref)
        print(f"std={std}: min greedy gap {gap:.4g}", flush=True)
        if gap > 1e-3:
            return model.to(torch.float32), ref
    return model.to(torch.float32), ref


def prompts_for(tok, seed):
    g = torch.Generator().manual_seed(seed)
    text = tok.encode("Hello world! The quick brown fox jumps over the lazy dog.").ids
    return [
        [int(x) for x in torch.randint(0, 400, (5,), generator=g)],
        text,
        [int(x) for x in torch.randint(0, 400, (40,), generator=g)],
    ]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    print("torch", torch.__version__, "transformers", transformers.__version__, flush=True)

    # Qwen2: tied embeddings, q/k/v bias, GQA 4/2, head_dim 16.
    q_specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    qtok = make_tokenizer(QWEN_PATTERN, q_specials, 480)
    q_eot, q_im_start, q_im_end = (qtok.token_to_id(s) for s in q_specials)

    def make_qwen(std):
        cfg = transformers.Qwen2Config(
            vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
            use_sliding_window=False, sliding_window=None, initializer_range=std,
            bos_token_id=q_eot, eos_token_id=q_im_end, attn_implementation="eager")
        return transformers.Qwen2ForCausalLM(cfg)

    qprompts = prompts_for(qtok, 7)
    qmodel, qref = pick_model(make_qwen, qprompts, [0.5, 0.3, 0.2, 0.1])
    qgen = {"bos_token_id": q_eot, "eos_token_id": [q_im_end, q_eot], "do_sample": True,
            "temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05}
    chatml = ("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + "
              "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
              "{{'<|im_start|>assistant\n'}}{% endif %}")
    save_variants(qmodel, qtok, out, "qwen2",
                  [("fp32", torch.float32, None), ("bf16", torch.bfloat16, None),
                   ("fp16", torch.float16, None)],
                  qgen, ("<|endoftext|>", "<|im_end|>", "<|endoftext|>", chatml))
    cuda_q = bf16_cuda_greedy(make_copy(qmodel, make_qwen), qprompts)
    with open(os.path.join(out, "reference_qwen2.json"), "w") as f:
        json.dump({"model": "qwen2", "cases": qref, "bf16_cuda_greedy": cuda_q}, f)

    # Llama 3: untied, llama3 rope scaling, GQA 4/2, head_dim 32 (heads * head_dim != hidden).
    l_specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
                  "<|start_header_id|>", "<|end_header_id|>"]
    ltok = make_tokenizer(LLAMA3_PATTERN, l_specials, 500)
    l_bos, l_eos, l_eot = (ltok.token_to_id(s) for s in l_specials[:3])
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 32}

    def make_llama(std):
        kw = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                  max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
                  attention_bias=False, mlp_bias=False, initializer_range=std,
                  bos_token_id=l_bos, eos_token_id=l_eos, attn_implementation="eager")
        try:
            cfg = transformers.LlamaConfig(
                rope_parameters=dict(rope, rope_theta=500000.0), **kw)
        except TypeError:
            cfg = transformers.LlamaConfig(rope_theta=500000.0, rope_scaling=rope, **kw)
        return transformers.LlamaForCausalLM(cfg)

    lprompts = prompts_for(ltok, 11)
    lmodel, lref = pick_model(make_llama, lprompts, [0.5, 0.3, 0.2, 0.1])
    print("llama config:", lmodel.config.to_json_string(), flush=True)
    lgen = {"bos_token_id": l_bos, "eos_token_id": [l_eos, l_eot], "do_sample": True,
            "temperature": 0.6, "top_p": 0.9}
    save_variants(lmodel, ltok, out, "llama3",
                  [("fp32", torch.float32, None), ("bf16", torch.bfloat16, "60KB")],
                  lgen, ("<|begin_of_text|>", "<|eot_id|>", "<|end_of_text|>", None))
    cuda_l = bf16_cuda_greedy(make_copy(lmodel, make_llama), lprompts)
    with open(os.path.join(out, "reference_llama3.json"), "w") as f:
        json.dump({"model": "llama3", "cases": lref, "bf16_cuda_greedy": cuda_l}, f)

    for name in sorted(os.listdir(out)):
        p = os.path.join(out, name)
        if os.path.isdir(p):
            print(name, sorted(os.listdir(p)), flush=True)
    print(open(os.path.join(out, "llama3_fp32", "config.json")).read())
    print(open(os.path.join(out, "qwen2_fp32", "config.json")).read())


def make_copy(model, make):
    m = make(0.02)
    m.load_state_dict(model.state_dict())
    return m


if __name__ == "__main__":
    main()

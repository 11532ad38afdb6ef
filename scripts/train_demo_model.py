#!/usr/bin/env python3
"""Trains Sluice's bundled demo model: a tiny Qwen2ForCausalLM with its own byte-level BPE.

Usage (on a machine with a CUDA GPU, PyTorch, transformers 5.x, tokenizers, safetensors):

    python3 scripts/train_demo_model.py CORPUS --out OUT_DIR [--steps 3000] [--seed 0]

CORPUS is the file written by scripts/make_demo_corpus.sh: documents each followed by a line
`<|endoftext|>`. The script

  1. trains a byte-level BPE tokenizer (Qwen2-style: NFC, Qwen2 split regex, GPT-2 byte
     mapping) with the special tokens <|endoftext|>, <|im_start|>, <|im_end|>;
  2. tokenizes the documents; a share of them (--chat-fraction) is wrapped in the ChatML
     chat template as the assistant's answer to a short user request, so that the chat
     endpoint answers with a fortune and stops at <|im_end|>;
  3. trains the model with AdamW, linear warm-up + cosine decay, bf16 autocast, on random
     windows that start at a document start; logs train loss and held-out validation loss;
  4. saves OUT_DIR/model/ (config.json, generation_config.json, model.safetensors in bf16,
     tokenizer.json, tokenizer_config.json with the chat template);
  5. reloads the saved folder and writes OUT_DIR/samples.json (greedy and seeded sampling on
     the GPU) and OUT_DIR/demo_greedy.json (greedy continuation computed in float32 on the
     CPU from the saved bf16 weights: the cross-engine reference), and OUT_DIR/metrics.json.
"""

import argparse
import json
import math
import os
import random
import sys
import time

import torch

CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2's pre-tokenizer split pattern.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
USER_REQUESTS = [
    "Tell me a fortune.",
    "Give me a fortune cookie.",
    "Say something wise.",
    "Tell me something funny.",
    "Give me a quote.",
    "What is your fortune for me today?",
]
SAMPLE_PROMPTS = ["The meaning of life is", "Once upon a time", "A computer is"]
# Candidates for the cross-engine greedy reference: the one whose float32 greedy path has the
# widest top-1/top-2 logit margin is kept, so that another engine's rounding cannot flip it.
GREEDY_PROMPTS = ["The meaning of life is", "The secret of life is", "Once upon a time",
                  "A computer is", "Life is", "Love is", "The best way to"]
GREEDY_CHAT = [{"role": "user", "content": "Tell me a fortune."}]


def log(msg):
    print(msg, flush=True)


def read_documents(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    docs = [d.strip("\n") for d in text.split("<|endoftext|>")]
    return [d for d in docs if d.strip()]


def train_tokenizer(docs, vocab_size):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer=trainer)
    return tok


def tokenizer_config(tok):
    added = {}
    for content in SPECIAL_TOKENS:
        added[str(tok.token_to_id(content))] = {
            "content": content, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True,
        }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 512,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }


def render_chat(messages, add_generation_prompt):
    out = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return out + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def build_stream(tok, docs, chat_fraction, rng, eot_id):
    """Token stream of the documents, each followed by <|endoftext|>; returns (ids, starts)."""
    texts = []
    for d in docs:
        if rng.random() < chat_fraction:
            texts.append(render_chat([{"role": "user", "content": rng.choice(USER_REQUESTS)},
                                      {"role": "assistant", "content": d}], False))
        else:
            texts.append(d)
    ids, starts = [], []
    for enc in tok.encode_batch(texts, add_special_tokens=False):
        starts.append(len(ids))
        ids.extend(enc.ids)
        ids.append(eot_id)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(starts, dtype=torch.long)


def batch_from(stream, starts, batch, seq, gen, device):
    # Windows of seq+1 tokens starting at random document starts (those with room left).
    valid = starts[starts + seq + 1 <= stream.numel()]
    pick = valid[torch.randint(0, valid.numel(), (batch,), generator=gen)]
    idx = pick[:, None] + torch.arange(seq + 1)[None, :]
    chunk = stream[idx].to(device, non_blocking=True)
    return chunk[:, :-1], chunk[:, 1:]


@torch.no_grad()
def evaluate(model, stream, starts, batch, seq, device, n_batches=20):
    model.eval()
    gen = torch.Generator().manual_seed(12345)  # same windows at every evaluation
    total = 0.0
    for _ in range(n_batches):
        x, y = batch_from(stream, starts, batch, seq, gen, device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits
        total += torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                                                   y.reshape(-1)).item()
    model.train()
    return total / n_batches


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", help="corpus file from scripts/make_demo_corpus.sh")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=704)
    ap.add_argument("--max-pos", type=int, default=512)
    ap.add_argument("--seq", type=int, default=256, help="training window length")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--val-fraction", type=float, default=0.03)
    ap.add_argument("--chat-fraction", type=float, default=0.3)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample-seed", type=int, default=1234)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    args = ap.parse_args()

    import transformers
    from transformers import (AutoModelForCausalLM, AutoTokenizer, GenerationConfig, Qwen2Config,
                              Qwen2ForCausalLM)

    os.makedirs(args.out, exist_ok=True)
    model_dir = os.path.join(args.out, "model")
    os.makedirs(model_dir, exist_ok=True)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    env = {"torch": torch.__version__, "transformers": transformers.__version__,
           "gpu": torch.cuda.get_device_name(0), "python": sys.version.split()[0]}
    import tokenizers
    env["tokenizers"] = tokenizers.__version__
    log(f"env: {env}")

    # ---- data + tokenizer ---------------------------------------------------------------
    t0 = time.time()
    docs = read_documents(args.corpus)
    rng = random.Random(args.seed)
    order = list(range(len(docs)))
    rng.shuffle(order)
    n_val = max(1, int(len(docs) * args.val_fraction))
    val_docs = [docs[i] for i in order[:n_val]]
    train_docs = [docs[i] for i in order[n_val:]]
    tok = train_tokenizer(train_docs, args.vocab_size)
    vocab = tok.get_vocab_size()
    eot, ims, ime = (tok.token_to_id(t) for t in SPECIAL_TOKENS)
    tok.save(os.path.join(model_dir, "tokenizer.json"))
    with open(os.path.join(model_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(tok), f, indent=2, ensure_ascii=False)
        f.write("\n")
    train_ids, train_starts = build_stream(tok, train_docs, args.chat_fraction, rng, eot)
    val_ids, val_starts = build_stream(tok, val_docs, args.chat_fraction, rng, eot)
    log(f"tokenizer: vocab {vocab} (eot {eot}, im_start {ims}, im_end {ime}) in {time.time() - t0:.1f}s; "
        f"docs train {len(train_docs)} val {len(val_docs)}; tokens train {train_ids.numel()} "
        f"val {val_ids.numel()}; corpus bytes/token "
        f"{sum(len(d.encode()) for d in train_docs) / train_ids.numel():.2f}")

    # ---- model --------------------------------------------------------------------------
    config = Qwen2Config(
        vocab_size=vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads, max_position_embeddings=args.max_pos,
        rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
        hidden_act="silu", initializer_range=0.02,
        bos_token_id=None, eos_token_id=ime, pad_token_id=eot,
    )
    model = Qwen2ForCausalLM._from_config(config, attn_implementation="sdpa").to(device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params} parameters ({n_params / 1e6:.2f} M, embeddings tied)")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        p = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))

    gen = torch.Generator().manual_seed(args.seed)
    curve, val_curve = [], []
    acc, acc_n = 0.0, 0
    model.train()
    torch.cuda.synchronize()
    t_train = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x, y = batch_from(train_ids, train_starts, args.batch, args.seq, gen, device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        acc += loss.item()
        acc_n += 1
        if (step + 1) % args.log_every == 0 or step == 0:
            curve.append({"step": step + 1, "train_loss": round(acc / acc_n, 4), "lr": lr_at(step)})
            log(f"step {step + 1:5d}  train loss {acc / acc_n:.4f}  lr {lr_at(step):.2e}  "
                f"{time.time() - t_train:.0f}s")
            acc, acc_n = 0.0, 0
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            v = evaluate(model, val_ids, val_starts, args.batch, args.seq, device)
            val_curve.append({"step": step + 1, "val_loss": round(v, 4)})
            log(f"step {step + 1:5d}  val loss {v:.4f}")
    torch.cuda.synchronize()
    train_seconds = time.time() - t_train
    tokens_seen = args.steps * args.batch * args.seq
    log(f"trained {args.steps} steps, {tokens_seen} tokens "
        f"({tokens_seen / train_ids.numel():.1f} epochs) in {train_seconds:.0f}s")

    # ---- save (bf16) --------------------------------------------------------------------
    model = model.to(torch.bfloat16)
    model.config.dtype = torch.bfloat16
    model.generation_config = GenerationConfig(
        eos_token_id=[ime, eot], pad_token_id=eot, do_sample=False)
    model.save_pretrained(model_dir, safe_serialization=True)
    sizes = {f: os.path.getsize(os.path.join(model_dir, f)) for f in sorted(os.listdir(model_dir))}
    log(f"saved {model_dir}: {sizes}")
    del model
    torch.cuda.empty_cache()

    # ---- checks and samples from the saved folder ----------------------------------------
    hf_tok = AutoTokenizer.from_pretrained(model_dir)
    probe = "Hello, world!  It's 1999.\n\tTabs\u00e9 and <|im_end|> tokens."
    assert hf_tok(probe, add_special_tokens=False)["input_ids"] == tok.encode(probe, add_special_tokens=False).ids
    chat_ids = hf_tok.apply_chat_template(GREEDY_CHAT, add_generation_prompt=True, tokenize=True)
    if isinstance(chat_ids, dict) or hasattr(chat_ids, "keys"):
        chat_ids = chat_ids["input_ids"]
    chat_ids = list(chat_ids)
    assert chat_ids == tok.encode(render_chat(GREEDY_CHAT, True), add_special_tokens=False).ids, chat_ids
    log("tokenizer round trip and chat template ok")

    gpu_model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).to(device).eval()
    samples = []
    for prompt in SAMPLE_PROMPTS:
        ids = torch.tensor([hf_tok(prompt, add_special_tokens=False)["input_ids"]], device=device)
        for mode in ("greedy", "sample"):
            kw = {"do_sample": False} if mode == "greedy" else {
                "do_sample": True, "temperature": 0.8, "top_p": 1.0, "top_k": 0}
            if mode == "sample":
                torch.manual_seed(args.sample_seed)
            out = gpu_model.generate(ids, max_new_tokens=args.max_new_tokens, pad_token_id=eot, **kw)
            new = out[0, ids.shape[1]:].tolist()
            text = hf_tok.decode(new, skip_special_tokens=True)
            rec = {"prompt": prompt, "mode": mode, "max_new_tokens": args.max_new_tokens,
                   "output_ids": new, "text": text}
            if mode == "sample":
                rec.update({"seed": args.sample_seed, "temperature": 0.8, "top_p": 1.0, "top_k": 0,
                            "rng": "torch.manual_seed before generate, CUDA bf16"})
            samples.append(rec)
            log(f"[{mode}] {prompt!r} -> {text!r}")
    # Chat sample through the template.
    ids = torch.tensor([chat_ids], device=device)
    torch.manual_seed(args.sample_seed)
    out = gpu_model.generate(ids, max_new_tokens=args.max_new_tokens, pad_token_id=eot,
                             do_sample=True, temperature=0.8, top_p=1.0, top_k=0)
    text = hf_tok.decode(out[0, ids.shape[1]:].tolist(), skip_special_tokens=True)
    samples.append({"prompt": GREEDY_CHAT, "mode": "sample", "chat": True, "seed": args.sample_seed,
                    "temperature": 0.8, "output_ids": out[0, ids.shape[1]:].tolist(), "text": text})
    log(f"[chat sample] -> {text!r}")
    del gpu_model

    # ---- the cross-engine reference: float32 on the CPU from the saved bf16 weights -----------
    cpu_model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                     attn_implementation="eager").eval()
    def cpu_greedy(prompt_ids):
        ids = torch.tensor([prompt_ids])
        with torch.no_grad():
            out = cpu_model.generate(ids, max_new_tokens=32, do_sample=False, pad_token_id=eot,
                                     output_scores=True, return_dict_in_generate=True)
        new = out.sequences[0, ids.shape[1]:].tolist()
        margins = []
        for s in out.scores:
            top2 = torch.topk(s[0].float(), 2).values
            margins.append(round((top2[0] - top2[1]).item(), 5))
        return {
            "prompt_ids": list(prompt_ids),
            "output_ids": new,
            "output_text": hf_tok.decode(new, skip_special_tokens=True),
            "stopped_at_eos": bool(new and new[-1] in (ime, eot)),
            "top1_top2_logit_margin": margins,
        }

    candidates = {}
    for prompt in GREEDY_PROMPTS:
        r = cpu_greedy(hf_tok(prompt, add_special_tokens=False)["input_ids"])
        candidates[prompt] = r
        log(f"[cpu fp32 greedy] {prompt!r} -> {r['output_text']!r} min margin "
            f"{min(r['top1_top2_logit_margin'])}")
    greedy_prompt = max(GREEDY_PROMPTS, key=lambda p: min(candidates[p]["top1_top2_logit_margin"]))
    refs = {"text": candidates[greedy_prompt], "chat": cpu_greedy(chat_ids)}
    log(f"reference prompt {greedy_prompt!r}: ids {refs['text']['output_ids']}")
    log(f"[cpu fp32 greedy chat] {refs['chat']['output_text']!r} ids {refs['chat']['output_ids']} "
        f"min margin {min(refs['chat']['top1_top2_logit_margin'])}")
    fixture = {
        "description": "Greedy continuation of the demo model (examples/sluice-demo/1/model) computed by "
                       "transformers in float32 on the CPU from the bf16 safetensors (eager attention); "
                       "max_new_tokens 32, stops at eos ids.",
        "transformers": transformers.__version__, "torch": torch.__version__,
        "prompt": greedy_prompt,
        "candidate_min_margins": {p: min(r["top1_top2_logit_margin"]) for p, r in candidates.items()},
        "prompt_ids": refs["text"]["prompt_ids"],
        "max_new_tokens": 32,
        "eos_token_ids": [ime, eot],
        "output_ids": refs["text"]["output_ids"],
        "output_text": refs["text"]["output_text"],
        "stopped_at_eos": refs["text"]["stopped_at_eos"],
        "top1_top2_logit_margin": refs["text"]["top1_top2_logit_margin"],
        "chat": {"messages": GREEDY_CHAT, "add_generation_prompt": True, **refs["chat"]},
    }
    with open(os.path.join(args.out, "demo_greedy.json"), "w") as f:
        json.dump(fixture, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(args.out, "samples.json"), "w") as f:
        json.dump(samples, f, indent=2, ensure_ascii=False)
        f.write("\n")
    metrics = {"env": env, "args": vars(args), "parameters": n_params, "vocab_size": vocab,
               "special_token_ids": {"<|endoftext|>": eot, "<|im_start|>": ims, "<|im_end|>": ime},
               "train_docs": len(train_docs), "val_docs": len(val_docs),
               "train_tokens": train_ids.numel(), "val_tokens": val_ids.numel(),
               "tokens_seen": tokens_seen, "train_seconds": round(train_seconds, 1),
               "train_curve": curve, "val_curve": val_curve, "file_sizes": sizes}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    log("done")


if __name__ == "__main__":
    main()

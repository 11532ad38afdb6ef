#!/usr/bin/env python3
"""Hugging Face transformers baseline on the GPU, and the GPU's measured copy bandwidths.

  python3 bench/hf_generate_bench.py MODEL_DIR --batches 1 8 32 64 --input-len 128 --output-len 128

For each batch size: `model.generate` (greedy, bf16, sdpa attention, KV cache, min_new_tokens =
max_new_tokens so every row decodes the same count) on random prompts of input-len tokens:
time to first token (a 1-token generate), inter-token latency ((T(out) - T(1)) / (out - 1)) and
output tokens/s (batch * out / T(out)). Also device-to-device copy bandwidth (read + write
bytes / time, 2 GiB buffers) and pinned host-to-device bandwidth, which bound decode and load.
Prints one JSON object.
"""
import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM


def timed(fn, reps=1):
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps


def copy_bandwidths():
    n = 2 << 30
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    b.copy_(a)
    d2d = 2 * n / timed(lambda: b.copy_(a), reps=20)
    host = torch.empty(n, dtype=torch.uint8).pin_memory()
    a.copy_(host)
    h2d = n / timed(lambda: a.copy_(host, non_blocking=True), reps=5)
    del a, b, host
    torch.cuda.empty_cache()
    return d2d, h2d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64])
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--output-len", type=int, default=128)
    args = ap.parse_args()

    d2d, h2d = copy_bandwidths()
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "d2d_copy_bytes_per_s": d2d, "h2d_pinned_bytes_per_s": h2d, "runs": []}
    try:
        import transformers
        result["transformers"] = transformers.__version__
    except Exception:  # noqa: BLE001
        pass
    t = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16, device_map="cuda",
                                                 attn_implementation="sdpa").eval()
    result["load_s"] = time.perf_counter() - t
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    embed = model.model.embed_tokens.weight
    result["weight_bytes"] = weights
    result["streamed_weight_bytes"] = weights - embed.numel() * embed.element_size()
    gen = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    for batch in args.batches:
        ids = torch.randint(1000, vocab - 1000, (batch, args.input_len), generator=gen).cuda()
        mask = torch.ones_like(ids)

        def run(n):
            with torch.no_grad():
                model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                               do_sample=False, pad_token_id=0)

        run(4)  # warm-up
        t1 = timed(lambda: run(1))
        tn = timed(lambda: run(args.output_len))
        itl = (tn - t1) / (args.output_len - 1)
        result["runs"].append({"batch": batch, "ttft_s": t1, "itl_s": itl, "total_s": tn,
                               "output_tok_per_s": batch * args.output_len / tn,
                               "decode_tok_per_s_per_stream": 1 / itl})
        print(json.dumps(result["runs"][-1]), flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Hugging Face transformers' prefill on the GPU: the peer that issue 18's TTFT is held against.

  python3 bench/hf_prefill_bench.py MODEL_DIR --lengths 1800 7000 20000 32000

For each length: one forward pass of the model (bf16, sdpa attention, batch 1, use_cache, the
logits of the last position only) on random token ids, after a warm-up pass; the median of
three, timed with a device synchronisation around each. Prints one JSON object.
"""
import argparse
import json
import statistics
import time

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--lengths", type=int, nargs="+", default=[1800, 7000, 20000, 32000])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.bfloat16,
                                                 attn_implementation="sdpa").cuda().eval()
    vocab = model.config.vocab_size
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "runs": []}
    for n in args.lengths:
        ids = torch.randint(0, vocab, (1, n), device="cuda")
        times = []
        with torch.inference_mode():
            for rep in range(args.reps + 1):
                torch.cuda.synchronize()
                t = time.perf_counter()
                model(ids, use_cache=True, logits_to_keep=1)
                torch.cuda.synchronize()
                if rep:  # the first pass warms up
                    times.append(time.perf_counter() - t)
        result["runs"].append({"tokens": n, "prefill_ms": 1e3 * statistics.median(times)})
        print(f"transformers prefill {n} tokens: {result['runs'][-1]['prefill_ms']:.1f} ms", flush=True)
        torch.cuda.empty_cache()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

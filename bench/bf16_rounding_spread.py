#!/usr/bin/env python3
"""How far a bf16 forward of a GPU test fixture lands from float64 by rounding alone.

Runs the llama3_gpu fixture (tests/fixtures/models) in numpy, float64 throughout or with the
activations rounded to bf16 where Sluice's CUDA engine rounds them (norm outputs, q/k/v, rope,
the KV cache, attention output, residual sums, MLP), and the attention weights P kept exact,
rounded to bf16 before the P V product (as the tensor-core prefill does), or rounded after
normalising. Prints each variant's worst row error (||got - ref|| / ||ref||) against the
fixture's float64 and transformers-bf16 logits. Session 14 used it to tell rounding noise from
a kernel bug: see bench/RESULTS.md. Needs numpy only (the project venv).

    .venv/bin/python bench/bf16_rounding_spread.py [FIXTURE_DIR]
"""
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent / "tests/fixtures/models")


def load_safetensors(path):
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        raw = data[8 + n + start:8 + n + end]
        if meta["dtype"] == "BF16":
            a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif meta["dtype"] == "F32":
            a = np.frombuffer(raw, np.float32)
        else:
            raise SystemExit(f"{name}: dtype {meta['dtype']}")
        out[name] = a.reshape(meta["shape"]).astype(np.float64)
    return out


def bf16(x):
    """Round to nearest even bf16, back in float64."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


class Llama:
    def __init__(self, folder):
        self.cfg = json.loads((folder / "config.json").read_text())
        self.w = load_safetensors(folder / "model.safetensors")
        c = self.cfg
        self.d = c["head_dim"]
        rp = c["rope_parameters"]
        inv = 1.0 / rp["rope_theta"] ** (np.arange(0, self.d, 2) / self.d)
        if rp.get("rope_type") == "llama3":
            f, lo, hi, old = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"], rp[
                "original_max_position_embeddings"]
            wavelen = 2 * math.pi / inv
            scaled = np.where(wavelen > old / lo, inv / f, inv)
            smooth = (old / wavelen - lo) / (hi - lo)
            mid = (1 - smooth) * scaled / f + smooth * scaled
            inv = np.where((wavelen >= old / hi) & (wavelen <= old / lo), mid, scaled)
        self.inv_freq = inv

    def rms(self, x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.cfg["rms_norm_eps"]) * w

    def rope(self, x, pos):
        f = np.outer(pos, self.inv_freq)
        cos, sin = np.cos(np.concatenate([f, f], -1)), np.sin(np.concatenate([f, f], -1))
        half = self.d // 2
        rot = np.concatenate([-x[..., half:], x[..., :half]], -1)
        return x * cos[:, None, :] + rot * sin[:, None, :]

    def forward(self, tokens, pipeline_bf16, p_mode):
        r = bf16 if pipeline_bf16 else (lambda v: v)
        c, w, d = self.cfg, self.w, self.d
        nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
        t = len(tokens)
        pos = np.arange(t)
        x = w["model.embed_tokens.weight"][tokens]
        causal = np.tril(np.ones((t, t))) > 0
        for layer in range(c["num_hidden_layers"]):
            p = f"model.layers.{layer}."
            h = r(self.rms(x, w[p + "input_layernorm.weight"]))
            q = r(h @ w[p + "self_attn.q_proj.weight"].T).reshape(t, nh, d)
            k = r(h @ w[p + "self_attn.k_proj.weight"].T).reshape(t, nkv, d)
            v = r(h @ w[p + "self_attn.v_proj.weight"].T).reshape(t, nkv, d)
            q, k = r(self.rope(q, pos)), r(self.rope(k, pos))
            o = np.zeros((t, nh, d))
            for head in range(nh):
                kv = head // (nh // nkv)
                s = np.where(causal, q[:, head] @ k[:, kv].T / math.sqrt(d), -np.inf)
                e = np.exp(s - s.max(-1, keepdims=True))
                den = e.sum(-1, keepdims=True)
                if p_mode == "bf16":
                    e = bf16(e)
                elif p_mode == "bf16 normalised":
                    e, den = bf16(e / den), 1.0
                o[:, head] = (e @ v[:, kv]) / den
            x = r(x + r(r(o.reshape(t, nh * d)) @ w[p + "self_attn.o_proj.weight"].T))
            h = r(self.rms(x, w[p + "post_attention_layernorm.weight"]))
            g = r(h @ w[p + "mlp.gate_proj.weight"].T)
            u = r(h @ w[p + "mlp.up_proj.weight"].T)
            x = r(x + r(r(g / (1 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T))
        return r(self.rms(x, w["model.norm.weight"])) @ w["lm_head.weight"].T


def rel_err(got, ref):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    return math.sqrt(((got - ref) ** 2).sum() / (ref * ref).sum())


def main():
    model = Llama(ROOT / "llama3_gpu")
    ref = json.loads((ROOT / "reference_llama3_gpu.json").read_text())
    for pipeline_bf16, p_mode in [(False, "exact"), (True, "exact"), (True, "bf16"),
                                  (True, "bf16 normalised")]:
        worst_f64 = worst_hf = 0.0
        for case in ref["cases"]:
            logits = model.forward(np.array(case["prompt"]), pipeline_bf16, p_mode)
            for i, position in enumerate(case["logit_positions"]):
                worst_f64 = max(worst_f64, rel_err(logits[position], case["logits"][i]))
                worst_hf = max(worst_hf, rel_err(logits[position], case["bf16_logits"][i]))
        print(f"activations {'bf16' if pipeline_bf16 else 'float64':7s}  P {p_mode:16s}  "
              f"worst vs float64 {worst_f64:.3g}  vs transformers bf16 {worst_hf:.3g}")


if __name__ == "__main__":
    main()

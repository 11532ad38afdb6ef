#!/usr/bin/python3
"""Write Sluice's demo model (a Qwen2ForCausalLM in bf16 safetensors) as a GGUF file.

Also any Qwen2ForCausalLM folder with the same tokenizer (the 7B-shaped random model of
bench/make_qwen2_7b_random.py: sharded, untied LM head).

Usage:
  .venv/bin/python bench/demo_to_gguf.py --llama-cpp LLAMA_CPP_SRC [--model DIR]
                                         [--outtype bf16|f32] OUT.gguf

Uses llama.cpp's own GGUF writer (`gguf-py`), imported from the llama.cpp source tree you
pass (nothing of llama.cpp is vendored here). Needs only numpy (the project environment
.venv/ that scripts/setup.sh makes has it): the safetensors file is parsed directly (8-byte header length,
JSON header, raw little-endian data) and the tokenizer is read from tokenizer.json, so
neither `transformers` nor `safetensors` is needed. For any other model, use llama.cpp's
convert_hf_to_gguf.py; this script knows only the demo model's architecture and
tokenizer:

- Weights: matrices are written as bf16 (the stored bytes, unchanged) or f32 (exact
  widening); 1-D tensors (norms, biases) as f32, as convert_hf_to_gguf.py does. Tensor
  names come from gguf-py's own HF -> GGUF name map. The output embedding is tied, so
  there is no output.weight: llama.cpp then reuses token_embd.weight.
- Tokenizer: byte-level BPE (tokenizer.ggml.model "gpt2"), pre-tokenizer "qwen2" (the
  tokenizer.json's Split regex is Qwen2's, checked below), the vocabulary in id order with
  the added special tokens typed CONTROL, the merges, bos = <|endoftext|> (never added),
  eos = <|im_end|>, pad = <|endoftext|>, and the ChatML chat template.
"""

import argparse
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "examples/sluice-demo/1/model"

# Qwen2's pre-tokenizer regex; llama.cpp's "qwen2" pre-tokenizer implements exactly this.
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

MAX_HEADER_BYTES = 16 << 20


def read_safetensors(path: Path) -> dict[str, tuple[str, list[int], np.ndarray]]:
    """Returns {name: (dtype, shape, raw little-endian array)} without copying the data."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    if data.size < 8:
        raise ValueError(f"{path}: shorter than a safetensors header")
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    if n > MAX_HEADER_BYTES or 8 + n > data.size:
        raise ValueError(f"{path}: header length {n} is out of range")
    header = json.loads(bytes(data[8:8 + n]))
    body = data[8 + n:]
    np_types = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in np_types:
            raise ValueError(f"{path}: tensor {name}: dtype {dtype} is not supported")
        if not 0 <= begin <= end <= body.size:
            raise ValueError(f"{path}: tensor {name}: data_offsets out of range")
        arr = body[begin:end].view(np.dtype(np_types[dtype]).newbyteorder("<"))
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: tensor {name}: {arr.size} elements for shape {shape}")
        out[name] = (dtype, shape, arr.reshape(shape))
    return out


def to_f32(dtype: str, arr: np.ndarray) -> np.ndarray:
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-cpp", required=True, help="llama.cpp source tree (for gguf-py)")
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="HF model directory")
    ap.add_argument("--outtype", choices=["bf16", "f32"], default="bf16",
                    help="type of the 2-D weights (default bf16: the stored bytes)")
    ap.add_argument("out", help="GGUF file to write")
    args = ap.parse_args()

    gguf_py = Path(args.llama_cpp) / "gguf-py"
    if not (gguf_py / "gguf" / "gguf_writer.py").is_file():
        sys.exit(f"demo_to_gguf: {gguf_py} has no gguf/gguf_writer.py; pass llama.cpp's source tree")
    sys.path.insert(0, str(gguf_py))
    import gguf  # noqa: E402  (from the llama.cpp tree the user named)

    model_dir = Path(args.model)
    cfg = json.loads((model_dir / "config.json").read_text())
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    tok_cfg = json.loads((model_dir / "tokenizer_config.json").read_text())

    # --- check that this is the model this script knows ------------------------------
    if cfg.get("architectures") != ["Qwen2ForCausalLM"]:
        sys.exit(f"demo_to_gguf: {model_dir}: architectures {cfg.get('architectures')}, "
                 "expected ['Qwen2ForCausalLM']; use convert_hf_to_gguf.py")
    if cfg.get("use_sliding_window") or (cfg.get("rope_parameters") or {}).get(
            "rope_type", "default") != "default" or cfg.get("rope_scaling"):
        sys.exit("demo_to_gguf: sliding window or rope scaling is not supported here")
    if tok["model"]["type"] != "BPE" or tok["model"].get("byte_fallback"):
        sys.exit("demo_to_gguf: tokenizer.json is not a byte-level BPE")
    pre = tok["pre_tokenizer"]
    pres = pre["pretokenizers"] if pre.get("type") == "Sequence" else [pre]
    split = [p for p in pres if p["type"] == "Split"]
    if len(split) != 1 or split[0]["pattern"].get("Regex") != QWEN2_REGEX:
        sys.exit("demo_to_gguf: the pre-tokenizer is not Qwen2's Split regex; "
                 "pick another tokenizer.ggml.pre")

    n_layer = cfg["num_hidden_layers"]
    n_vocab = cfg["vocab_size"]
    rope_theta = (cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta", 10000.0))
    arch = gguf.MODEL_ARCH.QWEN2
    writer = gguf.GGUFWriter(args.out, gguf.MODEL_ARCH_NAMES[arch])

    # --- hyperparameters ---------------------------------------------------------------
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name("sluice-demo")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_BF16 if args.outtype == "bf16"
                         else gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(n_vocab)
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_block_count(n_layer)
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_head_count_kv(cfg["num_key_value_heads"])
    writer.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    writer.add_rope_freq_base(float(rope_theta))

    # --- tokenizer ---------------------------------------------------------------------
    vocab: dict[str, int] = dict(tok["model"]["vocab"])
    special_ids = set()
    for added in tok.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
        if added.get("special"):
            special_ids.add(added["id"])
    by_id = {i: t for t, i in vocab.items()}
    if len(by_id) != len(vocab) or max(by_id) >= n_vocab:
        sys.exit("demo_to_gguf: tokenizer ids are not unique or exceed vocab_size")
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if i in special_ids else gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)

    merges = tok["model"]["merges"]
    if merges and not isinstance(merges[0], str):  # the [a, b] pair format
        if any(" " in s for pair in merges for s in pair):
            sys.exit("demo_to_gguf: a merge contains a space")
        merges = [f"{a} {b}" for a, b in merges]
    writer.add_token_merges(merges)

    def token_id(field: str) -> int | None:
        v = tok_cfg.get(field)
        if isinstance(v, dict):
            v = v.get("content")
        return vocab[v] if v is not None else None

    eos = token_id("eos_token")
    pad = token_id("pad_token")
    # No BOS is ever added (add_bos_token false); like the Qwen2 GGUFs, name <|endoftext|>.
    bos = token_id("bos_token")
    if bos is None:
        bos = vocab["<|endoftext|>"]
    writer.add_bos_token_id(bos)
    if eos is not None:
        writer.add_eos_token_id(eos)
    if pad is not None:
        writer.add_pad_token_id(pad)
    writer.add_add_bos_token(bool(tok_cfg.get("add_bos_token", False)))
    if tok_cfg.get("chat_template"):
        writer.add_chat_template(tok_cfg["chat_template"])

    # --- tensors -----------------------------------------------------------------------
    name_map = gguf.get_tensor_name_map(arch, n_layer)
    tensors = {}
    for shard in sorted(model_dir.glob("*.safetensors")):  # one file or the shards of one
        tensors.update(read_safetensors(shard))
    if not tensors:
        sys.exit(f"demo_to_gguf: {model_dir} has no .safetensors file")
    for name in sorted(tensors):
        dtype, shape, arr = tensors[name]
        if name == "lm_head.weight" and cfg.get("tie_word_embeddings"):
            continue
        new_name = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            sys.exit(f"demo_to_gguf: no GGUF name for tensor {name}")
        if len(shape) >= 2 and args.outtype == "bf16" and dtype == "BF16":
            writer.add_tensor(new_name, np.ascontiguousarray(arr),
                              raw_dtype=gguf.GGMLQuantizationType.BF16)
        else:
            writer.add_tensor(new_name, np.ascontiguousarray(to_f32(dtype, arr)))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"demo_to_gguf: wrote {args.out} ({os.path.getsize(args.out)} bytes, "
          f"{len(tensors)} tensors, {args.outtype})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

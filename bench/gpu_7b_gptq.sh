#!/usr/bin/env bash
# Issue 17's GPU measurements: Sluice's CUDA engine on random-weight GPTQ checkpoints of
# Qwen2-7B's exact shapes (bench/make_qwen2_7b_gptq_random.py), through the server with
# sluice-bench, by bench/gpu_7b.sh's phases (default: sluice; CONCURRENCY as there).
#
# Usage: bench/gpu_7b_gptq.sh BIN_DIR TOKENIZER_DIR WORK_DIR OUT_DIR VARIANT[,PHASE...]...
#   VARIANT: int4 | int8 | int4-act | int8-act (bits 4 or 8, group 128, sym; -act: desc_act)
#   e.g. `int4 int8` or `int4,sluice,profile`. A model already at WORK_DIR/VARIANT/repo/qwen7b/
#   1/model with a file .complete in it is used as it is. Each variant's model is written to
#   WORK_DIR/VARIANT, measured, then deleted (disk); reports land in OUT_DIR/VARIANT.
# The bytes a decode step reads (every weight but the embedding table, which is read a row
# a token) are printed, for the bandwidth limit: bytes / measured copy bandwidth.
set -uo pipefail
bin=$1; tok=$2; work=$3; out=$4; shift 4
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
for spec in "$@"; do
  variant=${spec%%,*}; phases=(sluice)
  [ "$spec" != "$variant" ] && IFS=, read -r -a phases <<< "${spec#*,}"
  case $variant in
    int4) args=(--bits 4) ;;
    int8) args=(--bits 8) ;;
    int4-act) args=(--bits 4 --act-order) ;;
    int8-act) args=(--bits 8 --act-order) ;;
    *) echo "unknown variant $variant"; exit 2 ;;
  esac
  model=$work/$variant/repo/qwen7b/1/model
  mkdir -p "$out/$variant"
  t0=$(date +%s)
  if [ -f "$model/.complete" ]; then  # written ahead (in the background while other work ran)
    echo "model written ahead" | tee "$out/$variant/model.txt"
  else
    $py "$here/make_qwen2_7b_gptq_random.py" "$model" "$tok" "${args[@]}" 2>&1 | tail -1 | tee "$out/$variant/model.txt"
    echo "model written in $(( $(date +%s) - t0 )) s" | tee -a "$out/$variant/model.txt"
  fi
  $py - "$model" <<'PY' | tee -a "$out/$variant/model.txt"
import json, os, struct, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
total = embed = 0
for f in sorted(set(idx["weight_map"].values())):
    with open(os.path.join(d, f), "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n))
    for name, t in header.items():
        if name == "__metadata__":
            continue
        size = t["data_offsets"][1] - t["data_offsets"][0]
        total += size
        if name == "model.embed_tokens.weight":
            embed = size
print(f"bytes read per decode step: {(total - embed) / 1e9:.3f} GB (all {total / 1e9:.3f} GB "
      f"less the embedding table {embed / 1e9:.3f} GB)")
PY
  cat "$model"/*.safetensors > /dev/null
  "$here/gpu_7b.sh" "$bin" "$tok" "$work/$variant" "$out/$variant" "${phases[@]}"
  [ -n "${KEEP_MODEL:-}" ] || rm -rf "${work:?}/$variant"  # KEEP_MODEL=1: for a later call
done

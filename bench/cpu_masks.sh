#!/usr/bin/env bash
# Issue 22's masking cost on the CPU: the bundled demo model (examples/sluice-demo, 4 M
# parameters) served by a RelWithDebInfo build, decode steps of 1, 32 and 128 streams (128
# tokens of prompt, OUTPUT_LEN (default 200) out at temperature 1, one request a stream, all
# together: the median ITL is a decode step), unconstrained and constrained (the regex and the
# JSON schema of bench/gpu_7b.sh's masks phase), ROUNDS (default 2) times, the kinds
# alternating (CONCURRENCY overrides the streams). Builds are held off meanwhile (the build lock) on a shared machine.
#
# Usage: bench/cpu_masks.sh [BUILD_DIR] [OUT_DIR]   (defaults: build, /tmp/cpu_masks)
set -uo pipefail
build=${1:-build}; out=${2:-/tmp/cpu_masks}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(mktemp -d); trap 'kill $server 2>/dev/null; rm -rf "$repo"' EXIT
mkdir -p "$out" && cp -r "$here/../examples/sluice-demo" "$repo/" &&
  sed -i 's/"max_num_seqs": 16/"max_num_seqs": 128/' "$repo/sluice-demo/1/model.json"
"$build/src/server/sluice" --model-repository "$repo" --http-port 8100 --grpc-port 8101 \
  --metrics-port 8102 > "$out/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf localhost:8100/v2/models/sluice-demo/ready > /dev/null && break; sleep 0.2; done
regex='{"guided_regex": "[a-z]+( [a-z]+)*"}'
schema='{"guided_json": {"type": "object", "properties": {"title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, "year": {"type": "integer"}}, "required": ["title", "tags", "year"]}}'
for c in ${CONCURRENCY:-1 32 128}; do
  for round in $(seq ${ROUNDS:-2}); do
    for kind in free regex json; do
      extra='{}'; [ $kind = regex ] && extra=$regex; [ $kind = json ] && extra=$schema
      f="$out/${kind}_c${c}_r$round"
      "$build/src/tools/sluice-bench" --url http://127.0.0.1:8100 -m sluice-demo --api completions \
        -c $c -n $(( c == 1 ? 4 : c )) --warmup $c --input-len 128 --output-len ${OUTPUT_LEN:-200} \
        --temperature 1 --sampling-seed 7 --seed 5 --extra-body "$extra" --no-progress \
        --json "$f.json" > "$f.txt" 2>&1
      echo "$kind c=$c r=$round: $(grep -E 'Mean ITL|Median ITL|Output token throughput|Failed' "$f.txt" | tr -s ' ' | tr '\n' ';')"
    done
  done
done

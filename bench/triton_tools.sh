#!/usr/bin/env bash
# The same LLM load measured by Sluice's sluice-bench and by Triton's own perf_analyzer and
# genai-perf (the tools Triton users benchmark with, unchanged), side by side, against one
# Sluice serving the demo model.
#
# Usage: bench/triton_tools.sh [SLUICE_BUILD_DIR]
#   SLUICE_BUILD_DIR  default build/ of this checkout (src/server/sluice, src/stub/sluice-stub,
#                     src/tools/sluice-bench); perf_analyzer and genai-perf come from .venv/
#                     (scripts/setup.sh)
# Environment:
#   THREADS        sluice --cpu-threads (default: nproc)
#   CONCURRENCY    default "1 4 16"
#   REQUESTS       measured requests per run (default: max(32, 8 * concurrency))
#   ROUNDS         rounds (default 3); the tools take turns, in reversed order every round
#   INPUT_LEN, OUTPUT_LEN   prompt tokens (exact, by the demo's tokenizer) / generated tokens
#                  (default 128 / 128)
#   SEED           prompt seed (default 0)
#   KEEP=DIR       keep the prompts, the logs and every tool's reports in DIR
#
# The load, identical for every tool: the demo model (examples/sluice-demo as shipped:
# max_num_seqs 16, max_model_len 512, prefix caching on), warmed up once at start (16
# requests, not measured); C requests in flight, no warm-up requests in the runs
# (perf_analyzer and genai-perf start their measured requests at the first prompt of their
# input again after a warm-up, so those prompts would come from the prefix cache); prompts of
# exactly INPUT_LEN tokens cut from genai-perf's own corpus (shakespeare.txt), a fresh set of
# N for every run, so that no request is served from another's prefix cache; exactly
# OUTPUT_LEN generated tokens (ignore_eos and/or min_tokens = max_tokens); temperature 1 (the
# servers' default, which genai-perf leaves alone); every request streamed.
# Five runs per concurrency and round:
#   sluice-bench  --api completions   /v1/completions, SSE
#   genai-perf    --endpoint-type completions --streaming   the same API, through perf_analyzer's
#                 HTTP client (--extra-inputs ignore_eos, min_tokens)
#   sluice-bench  --api grpc          ModelStreamInfer, Triton's vLLM contract
#   perf_analyzer -i grpc --streaming --input-data (text_input, stream, exclude_input_in_output,
#                 sampling_parameters), the same RPC
#   genai-perf    --endpoint-type kserve --backend vllm --streaming (what older genai-perf
#                 spelled --service-kind triton), the same RPC
# genai-perf's artifacts, and everything else, go to a temporary directory.
# How each figure is computed (all: the measured requests only, duration from the first
# request sent to the last response received):
#   output tok/s   sluice-bench: tokens from the server's usage (SSE) or one per response that
#                  carries text (gRPC: a token ending inside a UTF-8 character gives an empty
#                  delta); genai-perf: its tokenizer run over the returned text; perf_analyzer
#                  (from its --profile-export-file): one token per response
#   TTFT           to the first response (with text, for sluice-bench and genai-perf); ITL:
#                  sluice-bench every gap between responses (pooled), genai-perf and
#                  perf_analyzer per request (e2e - TTFT) / (tokens - 1)
#   "PA's own": the infer/s, responses/s and latency perf_analyzer itself prints (its latency
#                  of a decoupled request ends at the last response here, although it says it
#                  uses the first); with --request-count its window is rounded up to whole
#                  seconds (it polls once a second and drops its ClampWindow result), so those
#                  rates are low by up to a second's worth of the run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$(realpath "${1:-$root/build}")
threads=${THREADS:-$(nproc)}
concurrency=${CONCURRENCY:-1 4 16}
rounds=${ROUNDS:-3}
input_len=${INPUT_LEN:-128}
output_len=${OUTPUT_LEN:-128}
seed=${SEED:-0}
venv=$root/.venv
py=$venv/bin/python
sluice=$build/src/server/sluice
bench=$build/src/tools/sluice-bench
for f in "$sluice" "$bench" "$build/src/stub/sluice-stub" "$py" "$venv/bin/perf_analyzer" "$venv/bin/genai-perf"; do
  [[ -x $f ]] || { echo "triton_tools: $f is missing or not executable (build, scripts/setup.sh)" >&2; exit 2; }
done
export PATH=$venv/bin:$PATH HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 NO_PROXY=127.0.0.1,localhost
tokenizer=$root/examples/sluice-demo/1/model

sluice_commit=$(git -C "$root" rev-parse --short HEAD)
sluice_dirty=$(git -C "$root" diff --quiet HEAD -- src || echo " + uncommitted src/ changes")

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2> /dev/null; then
      kill -TERM "$pid"
      wait "$pid" 2> /dev/null || true
    fi
  done
  if [[ -n ${KEEP:-} ]]; then mkdir -p "$KEEP" && cp -r "$work"/. "$KEEP"/; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$work/repo"
cp -r "$root/examples/sluice-demo" "$work/repo/sluice-demo"
http_port=$(free_port) grpc_port=$(free_port) metrics_port=$(free_port)
"$sluice" --model-repository "$work/repo" --cpu-threads "$threads" --http-port "$http_port" \
  --grpc-port "$grpc_port" --metrics-port "$metrics_port" > "$work/sluice.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$http_port/v2/models/sluice-demo/ready" > /dev/null && break
  kill -0 "${pids[0]}" 2> /dev/null || { tail -30 "$work/sluice.log" >&2; exit 1; }
  sleep 0.1
done

# Prompts of exactly INPUT_LEN tokens for one run: N lines of {"prompt", "max_tokens",
# "prompt_tokens"} (sluice-bench), {"text"} (genai-perf) and perf_analyzer's --input-data.
make_prompts() {  # OUT_PREFIX COUNT SEED
  $py - "$1" "$2" "$3" "$tokenizer/tokenizer.json" "$input_len" "$output_len" << 'PY'
import json, random, sys
from pathlib import Path
import genai_perf.inputs.retrievers as retrievers
from tokenizers import Tokenizer
prefix, count, seed, tok_path, in_len, out_len = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
words = (Path(retrievers.__file__).parent / "shakespeare.txt").read_text().split()
tok = Tokenizer.from_file(tok_path)
rng = random.Random(seed)
prompts = []
while len(prompts) < count:
    start = rng.randrange(len(words) - 4 * in_len)
    text = " ".join(words[start:start + 2 * in_len])
    enc = tok.encode(text, add_special_tokens=False)
    cut = text[:enc.offsets[in_len - 1][1]].strip()
    if len(tok.encode(cut, add_special_tokens=False).ids) == in_len and cut not in prompts:
        prompts.append(cut)
sampling = json.dumps({"max_tokens": out_len, "min_tokens": out_len, "ignore_eos": True, "temperature": 1.0})
with open(prefix + ".sluice.jsonl", "w") as f:
    for p in prompts:
        f.write(json.dumps({"prompt": p, "max_tokens": out_len, "prompt_tokens": in_len}) + "\n")
with open(prefix + ".genai.jsonl", "w") as f:
    for p in prompts:
        f.write(json.dumps({"text": p}) + "\n")
data = [{"text_input": [p], "stream": [True], "exclude_input_in_output": [True],
         "sampling_parameters": [sampling]} for p in prompts]
Path(prefix + ".pa.json").write_text(json.dumps({"data": data}))
PY
}

tools=(bench-completions genai-completions bench-grpc pa-grpc genai-kserve)

# One run: TOOL C ROUND -> $work/TOOL-cC-rROUND.{cmd,log,...}
run_tool() {
  local tool=$1 c=$2 r=$3 n out cmd
  n=${REQUESTS:-$((8 * c > 32 ? 8 * c : 32))}
  out=$work/$tool-c$c-r$r
  local i
  for i in "${!tools[@]}"; do [[ ${tools[$i]} == "$tool" ]] && break; done
  make_prompts "$out" "$n" "$((seed + 100000 * r + 100 * c + i))"
  case $tool in
    bench-completions | bench-grpc)
      cmd=("$bench" --url "http://127.0.0.1:$http_port" --grpc-url "127.0.0.1:$grpc_port" -m sluice-demo
           --api "${tool#bench-}" -n "$n" -c "$c" --prompts-file "$out.sluice.jsonl"
           --output-len "$output_len" --temperature 1 --no-progress --json "$out.json") ;;
    pa-grpc)
      cmd=(perf_analyzer -m sluice-demo -u "127.0.0.1:$grpc_port" -i grpc --streaming --async
           --input-data "$out.pa.json" --concurrency-range "$c" --request-count "$n"
           -f "$out.csv" --profile-export-file "$out.export.json") ;;
    genai-completions | genai-kserve)
      local kind=(--endpoint-type completions -u "127.0.0.1:$http_port"
                  --extra-inputs ignore_eos:true --extra-inputs "min_tokens:$output_len")
      [[ $tool == genai-kserve ]] && kind=(--endpoint-type kserve --backend vllm -u "127.0.0.1:$grpc_port"
                                          --output-tokens-mean-deterministic)
      cmd=(genai-perf profile -m sluice-demo "${kind[@]}" --streaming --tokenizer "$tokenizer"
           --input-file "$out.genai.jsonl" --output-tokens-mean "$output_len" --output-tokens-stddev 0
           --concurrency "$c" --request-count "$n"
           --artifact-dir "$out.artifacts") ;;
  esac
  echo "${cmd[*]}" | sed "s|$work|\$WORK|g; s|$root/||g" > "$out.cmd"
  echo "triton_tools: round $r, $tool, concurrency $c, $n requests (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
  (cd "$work" && "${cmd[@]}") > "$out.log" 2>&1 ||
    { echo "triton_tools: $tool failed:" >&2; tail -40 "$out.log" >&2; exit 1; }
  cut -d' ' -f1 /proc/loadavg > "$out.load"
}

"$bench" --url "http://127.0.0.1:$http_port" -m sluice-demo --api completions -n 16 -c 16 \
  --input-len "$input_len" --output-len "$output_len" --seed 999999 --no-progress > "$work/warmup.log" 2>&1 ||
  { echo "triton_tools: warm-up failed:" >&2; cat "$work/warmup.log" >&2; exit 1; }
for r in $(seq "$rounds"); do
  for c in $concurrency; do
    order=("${tools[@]}")
    if ((r % 2 == 0)); then mapfile -t order < <(printf '%s\n' "${tools[@]}" | tac); fi
    for tool in "${order[@]}"; do run_tool "$tool" "$c" "$r"; done
  done
done

# --- table --------------------------------------------------------------------------------
cat << EOF
Sluice \`$sluice_commit\`$sluice_dirty; perf-analyzer $(basename "$venv"/perf-analyzer/perf_analyzer-*.dist-info .dist-info | sed 's/perf_analyzer-//') ($(perf_analyzer --version 2>&1 | head -1)), genai-perf $(genai-perf --version 2>&1 | tail -1 | sed 's/.* //'), sluice-bench from the same build.
Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); sluice --cpu-threads $threads; tools on the same cores.
Load: sluice-demo, $input_len prompt tokens (exact), $output_len output tokens, streamed, temperature 1; no warm-up requests in the runs (the server is warmed up once); $rounds round(s), median over rounds (min-max of output tok/s).

Commands (round 1; \$WORK is the temporary directory):
EOF
for c in $concurrency; do
  for tool in "${tools[@]}"; do echo "    $(cat "$work/$tool-c$c-r1.cmd")"; done
done
echo
$py - "$work" "$concurrency" "$rounds" "$output_len" << 'PY'
import csv, glob, json, re, statistics, sys
work, conc, rounds, out_len = sys.argv[1], sys.argv[2].split(), int(sys.argv[3]), int(sys.argv[4])

def from_pa_export(path):
    """genai-perf's definitions over perf_analyzer's export, one token per response."""
    reqs = json.load(open(path))["experiments"][0]["requests"]
    start = min(r["timestamp"] for r in reqs)
    end = max(r["response_timestamps"][-1] for r in reqs)
    dur = (end - start) / 1e9
    ttft = [(r["response_timestamps"][0] - r["timestamp"]) / 1e6 for r in reqs]
    e2e = [(r["response_timestamps"][-1] - r["timestamp"]) / 1e6 for r in reqs]
    n = [len(r["response_timestamps"]) for r in reqs]
    itl = [(e - t) / (k - 1) for e, t, k in zip(e2e, ttft, n) if k > 1]
    # perf_analyzer fails the run on a gRPC error; an OpenAI stream can carry one in-band.
    events = [line[6:] for r in reqs for o in r["response_outputs"] for line in o.get("response", "").splitlines()
              if line.startswith("data: {")]
    errors = sum(1 for e in events if "error" in json.loads(e))
    return dict(ok=len(reqs), failed=errors, tok_s=sum(n) / dur, req_s=len(reqs) / dur,
                ttft=statistics.mean(ttft), ttft_med=statistics.median(ttft), itl=statistics.mean(itl),
                e2e=statistics.mean(e2e), osl=statistics.mean(n))

def load(tool, c, r):
    base = f"{work}/{tool}-c{c}-r{r}"
    if tool.startswith("bench-"):
        j = json.load(open(base + ".json"))
        m = dict(ok=j["completed"], failed=j["failed"], tok_s=j["output_throughput"], req_s=j["request_throughput"],
                 ttft=j["mean_ttft_ms"], ttft_med=j["median_ttft_ms"], itl=j["mean_itl_ms"], e2e=j["mean_e2el_ms"],
                 osl=j["total_output_tokens"] / max(j["completed"], 1))
    elif tool.startswith("genai-"):
        (g,) = glob.glob(base + ".artifacts/*/profile_export_genai_perf.json")
        j = json.load(open(g))
        pa = from_pa_export(g.replace("profile_export_genai_perf.json", "profile_export.json"))
        m = dict(ok=int(j["request_count"]["avg"]), failed=pa["failed"],
                 tok_s=j["output_token_throughput"]["avg"], req_s=j["request_throughput"]["avg"],
                 ttft=j["time_to_first_token"]["avg"], ttft_med=j["time_to_first_token"]["p50"],
                 itl=j["inter_token_latency"]["avg"], e2e=j["request_latency"]["avg"],
                 osl=j["output_sequence_length"]["avg"])
    else:
        m = from_pa_export(base + ".export.json")
        row = next(csv.DictReader(open(base + ".csv")))
        text = open(base + ".log").read()
        m["own"] = dict(req_s=float(row["Inferences/Second"]), resp_s=float(row["Response Throughput"]),
                        lat=int(re.search(r"Avg latency: (\d+) usec", text).group(1)) / 1000,
                        p50=int(row["p50 latency"]) / 1000)
    m["load"] = float(open(base + ".load").read())
    return m

names = {"bench-completions": ("sluice-bench", "/v1/completions SSE"),
         "genai-completions": ("genai-perf", "/v1/completions SSE"),
         "bench-grpc": ("sluice-bench", "gRPC ModelStreamInfer"),
         "pa-grpc": ("perf_analyzer", "gRPC ModelStreamInfer"),
         "genai-kserve": ("genai-perf", "gRPC ModelStreamInfer")}
print("| tool | API | conc. | requests ok/failed | output tokens / request | output tok/s (min-max) | req/s "
      "| TTFT mean / median (ms) | ITL mean (ms) | e2e mean (ms) | load avg |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
own_rows = []
for c in conc:
    for tool, (name, api) in names.items():
        ms = [load(tool, c, r) for r in range(1, rounds + 1)]
        med = lambda k: statistics.median(m[k] for m in ms)
        tps = sorted(m["tok_s"] for m in ms)
        loads = [m["load"] for m in ms]
        print(f"| {name} | {api} | {c} | {sum(m['ok'] for m in ms)}/{sum(m['failed'] for m in ms)} | "
              f"{med('osl'):.1f} | {med('tok_s'):.0f} ({tps[0]:.0f}-{tps[-1]:.0f}) | {med('req_s'):.2f} | "
              f"{med('ttft'):.1f} / {med('ttft_med'):.1f} | {med('itl'):.2f} | {med('e2e'):.1f} | "
              f"{min(loads):.2f}-{max(loads):.2f} |")
        if "own" in ms[0]:
            own = lambda k: statistics.median(m["own"][k] for m in ms)
            own_rows.append(f"| {c} | {own('req_s'):.2f} | {own('resp_s'):.0f} | {own('lat'):.1f} / {own('p50'):.1f} |")
print("\nperf_analyzer's own report (median over rounds; its window rounded up to whole seconds):\n")
print("| conc. | infer/s | responses/s | latency mean / p50 (ms) |")
print("|---|---|---|---|")
print("\n".join(own_rows))
PY

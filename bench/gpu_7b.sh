#!/usr/bin/env bash
# Issue 6's GPU measurements on one NVIDIA GPU, with a random-weight model of Qwen2-7B's
# exact shapes (bench/make_qwen2_7b_random.py, bf16): Sluice's CUDA engine through the
# server with sluice-bench at 1, 8, 32 and 64 concurrent streams, HF transformers `generate`
# on the same GPU (bench/hf_generate_bench.py, which also measures the copy bandwidths),
# llama.cpp's CUDA build (optional), and sluice-lifecycle on the model (memory held while
# READY, back after unload, after streaming and non-streaming traffic).
#
# Usage: bench/gpu_7b.sh BIN_DIR TOKENIZER_DIR WORK_DIR OUT_DIR PHASE...
#   BIN_DIR: sluice, sluice-stub, sluice-bench, sluice-lifecycle (built on a CPU machine)
#   TOKENIZER_DIR: a Qwen tokenizer.json + tokenizer_config.json
#   PHASE: model | hf | sluice | lifecycle | profile | long | prefix | masks | llamacpp LLAMA_SERVER
#          LLAMA_SRC | ab CONFIG... (last: takes the remaining arguments)
#   long: issue 18's long prompts: TTFT of one stream at LONG_LENGTHS tokens (default 1800 7000
#         20000 32000) against one transformers forward pass (bench/hf_prefill_bench.py, left
#         out with SKIP_HF=1) in the same run, then 8 streams of 20,000-token prompts (every
#         request's ITL: p99; LONG_STREAMS=0 leaves them out); max_num_batched_tokens 16,384
#         and 4,096 for steps with decodes unless MAX_BATCHED_TOKENS(_WITH_DECODES) say otherwise
#   prefix: a 4,000-token shared prefix, 32 streams: a cold request, then warm ones, with
#         prefix caching on; the prefix-cache counters from /metrics; then 32 prompts as long
#         without a shared prefix, sent together (cold32)
#   masks: issue 22's cost of token masks on the GPU (see the phase; MASK_SWITCHES, MASK_CONCURRENCY)
#   MAX_NUM_SEQS (default 64): the engine's max_num_seqs, for CONCURRENCY above 64
# Results land in OUT_DIR as JSON reports and logs; bench/RESULTS.md quotes them.
set -uo pipefail
bin=$(realpath "$1"); tok=$(realpath "$2"); work=$3; out=$4; shift 4
mkdir -p "$work" "$out"
work=$(realpath "$work"); out=$(realpath "$out")
here=$(cd "$(dirname "$0")" && pwd)
repo=$work/repo
model=$repo/qwen7b/1/model  # inside the repository entry, as model.json requires
py=${PYTHON:-python3}
concurrency=(${CONCURRENCY:-1 8 32 64})  # CONCURRENCY="1 32" to run fewer
requests() { case $1 in 1) echo 8 ;; 8) echo 32 ;; 32) echo 96 ;; 64) echo 128 ;; *) echo $(( $1 * 2 )) ;; esac; }
ISL=${ISL:-128}
OSL=${OSL:-128}

bench_server() {  # name url model_name
  local name=$1 url=$2 served=$3
  for c in "${concurrency[@]}"; do
    "$bin/sluice-bench" --url "$url" -m "$served" --api completions -c "$c" -n "$(requests "$c")" \
      --warmup "$c" --input-len "$ISL" --output-len "$OSL" --seed 1 --no-progress \
      --json "$out/${name}_c$c.json" > "$out/last_bench.txt" 2>&1
    cat "$out/last_bench.txt" >> "$out/${name}_bench.txt"
    # Where this concurrency's requests end in a peer's log (its own per-request timings).
    [ -n "${PEER_LOG:-}" ] && echo "c=$c $(wc -l < "$PEER_LOG")" >> "$out/${name}_log_marks.txt"
    echo "$name c=$c: $(grep -E 'Output token throughput|Mean TTFT|Mean ITL|Failed' "$out/last_bench.txt" | tr -s ' ' | tr '\n' ';')"
  done
}

write_repo() {
  local max_len=${MAX_MODEL_LEN:-4096} caching=${PREFIX_CACHING:-false} extra=""
  # MAX_BATCHED_TOKENS_WITH_DECODES: the budget of steps that carry decodes (scheduler.h).
  [ -n "${MAX_BATCHED_TOKENS_WITH_DECODES:-}" ] &&
    extra=", \"max_num_batched_tokens_with_decodes\": $MAX_BATCHED_TOKENS_WITH_DECODES"
  mkdir -p "$repo/qwen7b/1"
  cat > "$repo/qwen7b/config.pbtxt" <<'CFG'
name: "qwen7b"
backend: "vllm"
instance_group [ { count: 1 kind: KIND_GPU gpus: [ 0 ] } ]
model_transaction_policy { decoupled: true }
CFG
  cat > "$repo/qwen7b/1/model.json" <<JSON
{"model": "model", "gpu_memory_utilization": 0.85, "max_model_len": $max_len,
 "max_num_seqs": ${MAX_NUM_SEQS:-64}, "max_num_batched_tokens": ${MAX_BATCHED_TOKENS:-4096}, "enable_prefix_caching": $caching$extra}
JSON
}

start_sluice() {  # repo log
  "$bin/sluice" --model-repository "$1" --model-control-mode explicit --http-port 8000 \
    --grpc-port 8001 --metrics-port 8002 > "$2" 2>&1 &
  server=$!
  for _ in $(seq 50); do curl -sf localhost:8000/v2/health/live > /dev/null && return 0; sleep 0.2; done
  echo "sluice did not start"; cat "$2"; return 1
}

gpu_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; }

while [ $# -gt 0 ]; do
  phase=$1; shift
  case $phase in
    model)
      [ -f "$model/config.json" ] || $py "$here/make_qwen2_7b_random.py" "$model" "$tok" 2>&1 | tail -2
      cat "$model"/*.safetensors > /dev/null  # into the page cache, as for every load below
      ;;
    hf)
      $py "$here/hf_generate_bench.py" "$model" --batches "${concurrency[@]}" --input-len "$ISL" \
        --output-len "$OSL" > "$out/hf.txt" 2>&1
      tail -1 "$out/hf.txt" > "$out/hf.json"
      cat "$out/hf.txt" | tail -6
      ;;
    sluice)
      write_repo
      start_sluice "$repo" "$out/sluice_bench.log" || exit 1
      echo "GPU memory before load: $(gpu_used) MiB"
      t0=$(date +%s.%N)
      curl -s -X POST localhost:8000/v2/repository/models/qwen7b/load > "$out/load_response.txt"
      t1=$(date +%s.%N)
      echo "load-to-READY: $(awk "BEGIN{print $t1 - $t0}") s (response: $(cat "$out/load_response.txt"))" | tee "$out/load_time.txt"
      echo "GPU memory while READY: $(gpu_used) MiB" | tee -a "$out/load_time.txt"
      grep -E "KV cache blocks|ready" "$out/sluice_bench.log" | tail -3
      # The stub reports its metrics with each heartbeat: wait for the first one after load.
      for _ in $(seq 30); do
        curl -s localhost:8002/metrics | grep -E "^vllm:cache_config_info" > "$out/cache_metric.txt" && break
        sleep 0.2
      done
      cat "$out/cache_metric.txt"
      bench_server sluice http://127.0.0.1:8000 qwen7b
      t0=$(date +%s.%N)
      curl -s -X POST localhost:8000/v2/repository/models/qwen7b/unload > /dev/null
      for _ in $(seq 100); do
        used=$(gpu_used); [ "$used" -lt 1024 ] && break; sleep 0.05
      done
      t1=$(date +%s.%N)
      echo "unload-to-memory-back: $(awk "BEGIN{print $t1 - $t0}") s (now $(gpu_used) MiB)" | tee -a "$out/load_time.txt"
      kill -TERM $server; wait $server
      ;;
    lifecycle)
      write_repo
      start_sluice "$repo" "$out/sluice_lifecycle.log" || exit 1
      echo "== streaming and non-streaming" | tee "$out/lifecycle.txt"
      "$bin/sluice-lifecycle" -m qwen7b --preset llm --gpu-settle 5 --unload-at-end \
        --json "$out/lifecycle_streaming.json" 2>&1 | tee -a "$out/lifecycle.txt"
      echo "== non-streaming only" | tee -a "$out/lifecycle.txt"
      "$bin/sluice-lifecycle" -m qwen7b --preset llm --gpu-settle 5 --streams 0 --no-cancel \
        --no-disconnect --unload-at-end --json "$out/lifecycle_nonstreaming.json" 2>&1 | tee -a "$out/lifecycle.txt"
      kill -TERM $server; wait $server
      echo "sluice exit: $?; GPU memory after: $(gpu_used) MiB" | tee -a "$out/lifecycle.txt"
      ;;
    profile)
      # SLUICE_CUDA_PROFILE=1 (src/backends/llm/device/cuda/step_profiler.h): per-op GPU time
      # of eager steps, then GPU time against step-to-step time with decode graphs; one
      # stream, ISL in / OSL out (128 / 128). The stub logs the summary when the model unloads.
      # PROFILE_MODES="eager" leaves the graph run out.
      for mode in ${PROFILE_MODES:-eager graph}; do
        write_repo
        [ $mode = eager ] && sed -i 's/"enable_prefix_caching": false/"enable_prefix_caching": false, "enforce_eager": true/' "$repo/qwen7b/1/model.json"
        export SLUICE_CUDA_PROFILE=1
        start_sluice "$repo" "$out/profile_$mode.log" || exit 1
        unset SLUICE_CUDA_PROFILE
        curl -s -X POST localhost:8000/v2/repository/models/qwen7b/load
        "$bin/sluice-bench" --url http://127.0.0.1:8000 -m qwen7b --api completions -c 1 -n 4 \
          --warmup 1 --input-len "$ISL" --output-len "$OSL" --seed 1 --no-progress > "$out/profile_${mode}_bench.txt" 2>&1
        grep -E "Mean ITL" "$out/profile_${mode}_bench.txt"
        curl -s -X POST localhost:8000/v2/repository/models/qwen7b/unload
        kill -TERM $server; wait $server
        grep "cuda profile" "$out/profile_$mode.log" | sed 's/.*\] cuda profile/cuda profile/' | tee "$out/profile_$mode.txt"
      done
      ;;
    long)
      lengths=(${LONG_LENGTHS:-1800 7000 20000 32000})
      if [ -z "${SKIP_HF:-}" ]; then  # SKIP_HF=1: Sluice only (a quick A/B)
        $py "$here/hf_prefill_bench.py" "$model" --lengths "${lengths[@]}" > "$out/hf_prefill.txt" 2>&1
        grep "transformers prefill" "$out/hf_prefill.txt"
      fi
      # A prompt alone prefills in 16,384-token steps; a step that carries decodes takes 4,096
      # (8 x 20,000 tokens: p99 ITL 78.9 ms, issue 18's bound 150; RESULTS "Session 20").
      MAX_MODEL_LEN=32768 MAX_BATCHED_TOKENS=${MAX_BATCHED_TOKENS:-16384} \
        MAX_BATCHED_TOKENS_WITH_DECODES=${MAX_BATCHED_TOKENS_WITH_DECODES:-4096} write_repo
      start_sluice "$repo" "$out/sluice_long.log" || exit 1
      curl -s -X POST localhost:8000/v2/repository/models/qwen7b/load > /dev/null
      for n in "${lengths[@]}"; do
        "$bin/sluice-bench" --url http://127.0.0.1:8000 -m qwen7b --api completions -c 1 -n 3 \
          --warmup 1 --input-len "$n" --output-len 16 --seed 2 --no-progress \
          --json "$out/long_$n.json" > "$out/long_$n.txt" 2>&1
        echo "sluice $n tokens: $(grep -E 'Mean TTFT|Mean ITL|Failed' "$out/long_$n.txt" | tr -s ' ' | tr '\n' ';')"
      done
      if [ "${LONG_STREAMS:-8}" != 0 ]; then
        "$bin/sluice-bench" --url http://127.0.0.1:8000 -m qwen7b --api completions -c 8 -n 8 \
          --warmup 0 --input-len 20000 --output-len 64 --seed 3 --no-progress \
          --json "$out/long_8x20000.json" > "$out/long_8x20000.txt" 2>&1
        echo "sluice 8 x 20000: $(grep -E 'Successful|Failed|P99 ITL|Mean ITL|Mean TTFT' "$out/long_8x20000.txt" | tr -s ' ' | tr '\n' ';')"
      fi
      kill -TERM $server; wait $server
      ;;
    prefix)
      PREFIX_CACHING=true write_repo
      start_sluice "$repo" "$out/sluice_prefix.log" || exit 1
      curl -s -X POST localhost:8000/v2/repository/models/qwen7b/load > /dev/null
      # cold: the prefix's first request; warm: 32 streams at once (their TTFT includes the
      # queue of one another's prefills, a step or two); warm1: 32 others one after another
      # (the warm-up replays warm's 32 prompts, so that the measured ones are requests 32-63:
      # the shared prefix, their own words new).
      for phase in cold warm warm1; do
        n=1; c=1; w=0; [ $phase = warm ] && { n=32; c=32; }; [ $phase = warm1 ] && { n=32; w=32; }
        "$bin/sluice-bench" --url http://127.0.0.1:8000 -m qwen7b --api completions -c $c -n $n \
          --warmup $w --shared-prefix-len 4000 --input-len "${PREFIX_OWN_LEN:-16}" --output-len 16 --seed 4 --no-progress \
          --json "$out/prefix_$phase.json" > "$out/prefix_$phase.txt" 2>&1
        echo "sluice prefix $phase: $(grep -E 'Mean TTFT|Median TTFT|Failed' "$out/prefix_$phase.txt" | tr -s ' ' | tr '\n' ';')"
        # Where the TTFT went, server side (cumulative: a phase's share is the difference
        # from the previous phase's): queue, prefill, first token.
        sleep 1.5
        curl -s localhost:8002/metrics |
          grep -E "^vllm:(time_to_first_token|request_queue_time|request_prefill_time)_seconds_(sum|count)" |
          tee "$out/prefix_${phase}_timing.txt" | tr '\n' ' ' | sed "s/^/sluice prefix $phase server: /"; echo
      done
      sleep 1.5  # the stub reports its counters with a heartbeat (every 0.5 s): the last one in
      curl -s localhost:8002/metrics | grep -E "^vllm:prefix_cache_(hits|queries)" | tee "$out/prefix_metrics.txt"
      # cold32: warm's load without a shared prefix (32 prompts of 4,016 words of their own,
      # sent together), the baseline that warm's 32 streams save against.
      "$bin/sluice-bench" --url http://127.0.0.1:8000 -m qwen7b --api completions -c 32 -n 32 \
        --warmup 0 --input-len $((4000 + ${PREFIX_OWN_LEN:-16})) --output-len 16 --seed 5 --no-progress \
        --json "$out/prefix_cold32.json" > "$out/prefix_cold32.txt" 2>&1
      echo "sluice prefix cold32: $(grep -E 'Mean TTFT|Median TTFT|Failed' "$out/prefix_cold32.txt" | tr -s ' ' | tr '\n' ';')"
      kill -TERM $server; wait $server
      ;;
    masks)
      # Issue 22's masking cost on the GPU: decode steps of MASK_CONCURRENCY (default 1 32 128)
      # streams, 128 in / MASK_OUTPUT_LEN (default 64) out at temperature 1, MASK_WAVES (default
      # 2) requests a stream, unconstrained and constrained (a regex that never completes, and
      # a JSON schema), with the token masks applied on the device (SLUICE_CUDA_TOKEN_MASKS=1)
      # and, for comparison, sampled on the host (=0); MASK_ROUNDS (default 1) times each, the
      # kinds alternating. The mean ITL is the step time (with one wave and long outputs, the
      # median is a pure decode step's); overhead = constrained / unconstrained - 1.
      regex='{"guided_regex": "[a-z]+( [a-z]+)*"}'
      schema='{"guided_json": {"type": "object", "properties": {"title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, "year": {"type": "integer"}}, "required": ["title", "tags", "year"]}}'
      for sw in ${MASK_SWITCHES:-1 0}; do
        (
          export SLUICE_CUDA_TOKEN_MASKS=$sw
          MAX_NUM_SEQS=128 write_repo
          start_sluice "$repo" "$out/sluice_masks_$sw.log" || exit 1
          curl -s -X POST localhost:8000/v2/repository/models/qwen7b/load > /dev/null
          for c in ${MASK_CONCURRENCY:-1 32 128}; do
            n=$(( c == 1 ? 4 : ${MASK_WAVES:-2} * c ))
            for round in $(seq ${MASK_ROUNDS:-1}); do
              for kind in free regex json; do
                [ $kind = free ] && [ $sw = 0 ] && continue  # the switch changes constrained steps only
                extra='{}'; [ $kind = regex ] && extra=$regex; [ $kind = json ] && extra=$schema
                f="$out/masks_s${sw}_${kind}_c${c}_r$round"
                "$bin/sluice-bench" --url http://127.0.0.1:8000 -m qwen7b --api completions -c $c -n $n \
                  --warmup $c --input-len 128 --output-len ${MASK_OUTPUT_LEN:-64} --temperature 1 \
                  --sampling-seed 7 --seed 5 --extra-body "$extra" --no-progress --json "$f.json" \
                  > "$f.txt" 2>&1
                echo "masks=$sw $kind c=$c r=$round: $(grep -E 'Mean ITL|Median ITL|Output token throughput|Failed' "$f.txt" | tr -s ' ' | tr '\n' ';')"
              done
            done
          done
          kill -TERM $server; wait $server
        )
      done
      ;;
    llamacpp)
      # LLAMA_TYPE=bf16 (the model's own type) or f16 (llama.cpp's fastest unquantised path).
      llama_server=$1; llama_src=$2; shift 2
      type=${LLAMA_TYPE:-bf16}
      gguf=$work/qwen2-7b-random-$type.gguf
      [ -f "$gguf" ] || $py "$llama_src/convert_hf_to_gguf.py" "$model" --outtype "$type" --outfile "$gguf" \
        > "$out/convert.log" 2>&1 || { tail -20 "$out/convert.log"; exit 1; }
      "$llama_server" -m "$gguf" --host 127.0.0.1 --port 8090 -ngl 999 -c $((64 * (ISL + OSL + 64))) \
        -np 64 -fa on -b 4096 -ub 1024 > "$out/llama_server.log" 2>&1 &
      llama=$!
      for _ in $(seq 300); do curl -sf localhost:8090/health > /dev/null && break; sleep 0.5; done
      PEER_LOG=$out/llama_server.log bench_server llamacpp_$type http://127.0.0.1:8090 qwen2-7b-random
      cp "$out/llama_server.log" "$out/llama_server_$type.log"
      kill $llama; wait $llama
      ;;
    ab)
      # Batch-1 A/B of the stub's environment switches in one run, the configurations
      # alternated AB_ROUNDS times (default 2) so that drift hits each alike. CONFIG is NAME or
      # NAME:VAR=VALUE[,VAR=VALUE...], e.g. `ab base split0:SLUICE_CUDA_GEMV_SPLIT=0`;
      # AB_CONCURRENCY: the streams (default 1).
      configs=("$@"); set --
      for round in $(seq "${AB_ROUNDS:-2}"); do
        for cfg in "${configs[@]}"; do
          name=${cfg%%:*}; vars=""; [ "$cfg" != "$name" ] && vars=${cfg#*:}
          (
            for v in ${vars//,/ }; do export "$v"; done
            concurrency=(${AB_CONCURRENCY:-1})
            write_repo
            start_sluice "$repo" "$out/ab_${name}_$round.log" || exit 1
            curl -s -X POST localhost:8000/v2/repository/models/qwen7b/load > /dev/null
            bench_server "ab_${name}_$round" http://127.0.0.1:8000 qwen7b
            kill -TERM $server; wait $server
          )
        done
      done
      ;;
    *) echo "unknown phase $phase"; exit 2 ;;
  esac
done

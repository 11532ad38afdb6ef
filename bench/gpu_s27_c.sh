#!/usr/bin/env bash
# Session 27, call C. LIMIT=190 on an H100 (the session's last device time).
# Issue 17's many-stream table with session 26's defaults (the Hopper GEMM from 17 rows; its
# whole CUDA suite passed in call B) for Int4 and bf16 at 32, 64 and 256 streams, both models
# written before the first run (a writer beside a benchmark may cost the first run ~7 %). Int8
# (written last, ~25 s more) only where time is left.
source bench/gpu_call_setup.sh
write_models_bg int4 bf16 int8
echo "models: $(wait_model $m4) / $(wait_model $m) $(el)"
streamsq int4 "32 64 256"
streams7 "32 64 256"
echo "int8 model: $(wait_model $m8) $(el)"
streamsq int8 "32 64 256"
echo "done $(el)"

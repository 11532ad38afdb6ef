#pragma once
// The CUDA device's tuning knobs: every SLUICE_CUDA_* variable of the stub's environment,
// read and checked in one place (cuda_tuning.cc), so that a mistyped value fails the model's
// load naming the variable and the value instead of silently meaning 0 or the default.
// They exist for A/B measurements (bench/gpu_7b.sh's `ab` phase alternates both forms of a
// switch in one run on one machine); the defaults are what Sluice runs.
//
// clang-format off
// Variable                         Default  Accepted     Meaning
// SLUICE_CUDA_GEMV                 1        0 | 1        decode products of <= 4 rows through
//                                                        Sluice's GEMV (gemv.cu), not cuBLASLt
// SLUICE_CUDA_FUSE                 1        0 | 1        q|k|v and gate|up(+SiLU) as one GEMV
//                                                        launch each, rope with the KV write
// SLUICE_CUDA_PARTIALS_NORM        1        0 | 1        an output projection's slices added by
//                                                        the next norm (LinearAddRmsNorm)
// SLUICE_CUDA_PARTIALS_MAX_SPLITS  4        0 to 4       ... for products of at most this many
//                                                        slices
// SLUICE_CUDA_GEMV_PAIRS           1        0 | 1        the GEMV reads 2 output columns a warp
//                                                        (0: one)
// SLUICE_CUDA_GEMV_SPLIT           1        0 | 1        long GEMV rows cut into slices
// SLUICE_CUDA_GEMV_SLICE           1024     256 to 2^20  least slice length of a product whose
//                                                        partials the next norm adds
// SLUICE_CUDA_PREFILL_TC           1        0 | 1        prefill attention on tensor cores where
//                                                        the head dim allows
// SLUICE_CUDA_PREFILL_MTILES       2        1 to 3       m-tiles of 16 rows a warp of a head_dim
//                                                        128 tensor-core prefill block (2: 32-key
//                                                        tiles, 3: two, 64-key tiles)
// SLUICE_CUDA_PREFILL_WARPS        4        4 | 8        warps of that block when MTILES is 1 (8:
//                                                        128-row blocks)
// SLUICE_CUDA_PREFILL_WGMMA        4        0 to 5       on an sm_90 device (H100, H200), head_dim
//                                                        64 and 128 prefill through the wgmma
//                                                        kernel (0: the mma.sync one above; 1:
//                                                        each tile's two products in sequence,
//                                                        all warps copying, a barrier a tile;
//                                                        2: a tile's softmax under the previous
//                                                        tile's P V, three K/V stages: 10 %
//                                                        slower on an H100, RESULTS session 17;
//                                                        3: warp-specialized, a copying
//                                                        warpgroup and two computing ones
//                                                        taking turns at the tensor cores
//                                                        (attention_prefill_ws.cu), 4: the same
//                                                        without the turns, 5: 3 with 2's
//                                                        overlap, FlashAttention-3's schedule;
//                                                        4 is 3-5 % faster than 1 from 7,000
//                                                        tokens on, level at 1,800, RESULTS
//                                                        session 20)
// SLUICE_CUDA_DECODE_PIPELINE      1        0 | 1        decode attention streams K/V through
//                                                        each warp's cp.async pipeline (0: the
//                                                        previous kernel, rounds of loads)
// SLUICE_CUDA_DECODE_LATE_PDL      0        0 | 1        the pipelined kernel lets the next kernel
//                                                        launch once its tiles are streamed, not
//                                                        at its start (Int4 at 32 streams: +0.8 %,
//                                                        within noise; RESULTS session 17)
// SLUICE_CUDA_DECODE_EARLY_LAUNCH  1        0 | 1        the pipelined kernel is a dependent launch
//                                                        (0: placed after its predecessor ends;
//                                                        for the Int4 32-stream cost, which
//                                                        SLUICE_CUDA_PDL=0 removes)
// SLUICE_CUDA_DECODE_FUSED_COMBINE 1        0 | 1        a split decode context's partitions
//                                                        merged by the decode kernel's last
//                                                        block at 16 sequences and more (0:
//                                                        always CombineKernel's launch)
// SLUICE_CUDA_DECODE_FUSED_ROPE    1        0 | 1        decode steps' rope and KV write done by
//                                                        the decode attention kernel (0:
//                                                        RopeKvWrite's launch before it)
// SLUICE_CUDA_TOKEN_MASKS          1        0 | 1        structured output's token masks applied
//                                                        on the device (constrained rows sample
//                                                        there; 0: those steps sample on the host)
// SLUICE_CUDA_GPTQ_PARTIALS        0        0 | 1        a GPTQ output projection cut along its
//                                                        inputs, the slices added by the norm
// SLUICE_CUDA_GPTQ_MMA             1        0 | 1        GPTQ weights in the tensor-core layout
//                                                        where shape and groups allow
// SLUICE_CUDA_GPTQ_LOAD_ORDER      1        0 | 1        such weights whose 16-byte loads each lie
//                                                        in one group take the load order
//                                                        (gptq_kernels.h; 0: the step order)
// SLUICE_CUDA_GPTQ_SWIGLU          1        0 | 1        GPTQ gate and up of the tensor-core
//                                                        layout and SiLU in one launch at decode
//                                                        rows, and in the Hopper GEMM's where
//                                                        it is one whole-input launch (0: one
//                                                        product, then SiluMul)
// SLUICE_CUDA_GPTQ_MMA_MAX_ROWS    32       0 to 4096    rows up to which such a product runs the
//                                                        small-batch kernel (past: dequantize;
//                                                        where the Hopper GEMM runs, at most
//                                                        GEMM90_MIN_ROWS - 1)
// SLUICE_CUDA_GPTQ_MMA_TILES       0        0 | 1 | 2    16-column tiles a warp of the small-batch
//                                                        kernel sums at 9-32 rows (0: by the
//                                                        rule of gptq_mma_plan.h; 1: one; 2:
//                                                        two wherever the kernel has them;
//                                                        4-bit gate|up 19 % faster at 32 rows)
// SLUICE_CUDA_GPTQ_PDL_MAX_ROWS    0        0 to 4096    rows up to which the small-batch GPTQ
//                                                        kernels (gptq_mma.cu) are dependent
//                                                        launches (past: placed once the kernel
//                                                        before has ended; SLUICE_CUDA_PDL=0
//                                                        turns every dependent launch off;
//                                                        0: Int4 at 32 streams 4,285 tok/s,
//                                                        4,096: 3,579, RESULTS "Session 20")
// SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS   64       0 to 4096    rows up to which a larger one runs the
//                                                        GEMM (gptq_gemm.cu; 0: off, dequantize)
// SLUICE_CUDA_GPTQ_GEMM90          1        0 | 1        the GEMM of Hopper
//                                                        (gptq_gemm90.cu: wgmma, compute
//                                                        capability 9.0 only; 0: the mma.sync one)
// SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS 17       1 to 1024    rows from which a GEMM is the Hopper one,
//                                                        which also ends the small-batch kernel's
//                                                        rows there (the smaller of this - 1
//                                                        and MMA_MAX_ROWS; Int8 at 32 streams
//                                                        4,170 -> 4,798 tok/s, session 26)
// SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS 2048     0 to 4096    rows up to which the GEMM runs where the
//                                                        Hopper GEMM does (the larger of this and
//                                                        GEMM_MAX_ROWS; GEMM_MAX_ROWS=0: off;
//                                                        past it the dequantization + cuBLASLt;
//                                                        bench/RESULTS.md, sessions 23 and 30)
// SLUICE_CUDA_GPTQ_GEMM90_SHAPES   2        0 to 2       the Hopper GEMM's block shapes
//                                                        (gptq_gemm90_plan.h): 0, 128 or 256
//                                                        rows x 128 columns; 1, also 64 and 192
//                                                        rows and 192 columns (3 warpgroups),
//                                                        shape and slices by a wave model; 2,
//                                                        the fewest rows of 64, 128, 192, 256
//                                                        that hold the product's, 128 columns,
//                                                        slices by the wave model (Int4 at 64
//                                                        streams +18 % over 0, RESULTS s. 18)
// SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS 0       0 to 256,    rows a block of the Hopper GEMM (0: the
//                                           step 64      modelled choice; 64 and 192 also with
//                                                        SHAPES=0)
// SLUICE_CUDA_GPTQ_GEMM90_TILE_COLS 0       0|128|192    output columns a block (0: modelled;
//                                                        192: 3 warpgroups, rows <= 128 only,
//                                                        ignored with more)
// SLUICE_CUDA_GPTQ_GEMM90_SPLITS   0        0 to 8       input slices (split-k) of every Hopper
//                                                        GEMM product (0: modelled; cut to the
//                                                        workspace and one chunk a slice)
// SLUICE_CUDA_GPTQ_GEMM90_TMA      2        0 to 2       who fills the Hopper GEMM's stages: 0,
//                                                        every thread's cp.async, a block
//                                                        barrier a chunk; 1, the copy engine
//                                                        (TMA: x's box, the tiles' words; full
//                                                        and empty mbarriers) by computing warp
//                                                        0 (3-39 % slower, RESULTS "Session
//                                                        22"); 2, the same by a producing
//                                                        warpgroup (8-tile blocks of 128 rows
//                                                        and up, others cp.async; 22-25 %
//                                                        faster at 256 rows, "Session 23")
// SLUICE_CUDA_GPTQ_CHUNK           1        0 | 1        the column layout's chunk kernel for
//                                                        layers of whole chunks
// SLUICE_CUDA_GPTQ_GEMM90_TAIL     1        0 | 1        the Hopper GEMM's last wave of column
//                                                        blocks cut in input slices where it is
//                                                        at most half full (gptq_gemm90_plan.h;
//                                                        gate|up 17 % faster at 256 rows)
// SLUICE_CUDA_GPTQ_GEMM90_CLUSTER  1        0 | 1        the Hopper GEMM's input slices launched
//                                                        as clusters that add their sums in
//                                                        distributed shared memory (0: fp32
//                                                        partials through the workspace and a
//                                                        reduction kernel; 1: o and down 10-20 %
//                                                        faster at 128-512 rows, RESULTS
//                                                        "Session 25")
// SLUICE_CUDA_GPTQ_DEQUANT_ROWS    1        0 | 1        a prefill's GPTQ dequantization staged
//                                                        in shared memory, stored in row runs
//                                                        (0: a thread's scattered 4-byte stores;
//                                                        1 is 5-27 % faster, RESULTS "Session 25")
// SLUICE_CUDA_GPTQ_DEQUANT_AHEAD   0        0 | 1        a prefill's next GPTQ weight dequantized
//                                                        on a side stream during this product's
//                                                        GEMM (gptq_dequant_ahead.h; 0: each
//                                                        in turn, one weight's bf16 less memory;
//                                                        1 was within 2 % of 0 at 2,000 and
//                                                        7,000 tokens, RESULTS session 18)
// SLUICE_CUDA_MATMUL_EXACT_ROWS    1024     0 to 2^20    rows from which a cuBLASLt product takes
//                                                        the heuristic's algorithm for its own
//                                                        row count, not its bucket's (0: never;
//                                                        cublaslt_plans.h)
// SLUICE_CUDA_PDL                  1        0 | 1        programmatic dependent launches
//                                                        (compute capability 9.0 and later)
// SLUICE_CUDA_PROFILE              0        0 | 1        per-step and per-op GPU times in the
//                                                        log (step_profiler.h)
// clang-format on
//
// An unset or empty variable takes its default.
//
// This header is plain C++17 without CUDA: the kernels (.cu) include it, and the parser is
// compiled into sluice_llm_device, which the CPU-only build compiles and tests.

#include <functional>

namespace sluice {
class Status;
template <typename T>
class Result;
}  // namespace sluice

namespace sluice::llm::cuda {

struct CudaTuning {
  bool small_batch_gemv = true;      // SLUICE_CUDA_GEMV
  bool fuse = true;                  // SLUICE_CUDA_FUSE
  bool partials_norm = true;         // SLUICE_CUDA_PARTIALS_NORM
  int partials_max_splits = 4;       // SLUICE_CUDA_PARTIALS_MAX_SPLITS (kSmallBatchLinearMaxSplits)
  bool gemv_pairs = true;            // SLUICE_CUDA_GEMV_PAIRS
  bool gemv_split = true;            // SLUICE_CUDA_GEMV_SPLIT
  int gemv_slice = 1024;             // SLUICE_CUDA_GEMV_SLICE
  bool prefill_tensor_cores = true;  // SLUICE_CUDA_PREFILL_TC
  int prefill_warps = 4;             // SLUICE_CUDA_PREFILL_WARPS
  int prefill_mtiles = 2;            // SLUICE_CUDA_PREFILL_MTILES
  int prefill_wgmma = 4;             // SLUICE_CUDA_PREFILL_WGMMA
  bool decode_pipeline = true;       // SLUICE_CUDA_DECODE_PIPELINE
  bool decode_late_pdl = false;      // SLUICE_CUDA_DECODE_LATE_PDL
  bool decode_early_launch = true;   // SLUICE_CUDA_DECODE_EARLY_LAUNCH
  bool decode_fused_combine = true;  // SLUICE_CUDA_DECODE_FUSED_COMBINE
  bool decode_fused_rope = true;     // SLUICE_CUDA_DECODE_FUSED_ROPE
  bool token_masks = true;           // SLUICE_CUDA_TOKEN_MASKS
  bool gptq_partials = false;        // SLUICE_CUDA_GPTQ_PARTIALS
  bool gptq_mma = true;              // SLUICE_CUDA_GPTQ_MMA
  bool gptq_load_order = true;       // SLUICE_CUDA_GPTQ_LOAD_ORDER
  bool gptq_swiglu = true;           // SLUICE_CUDA_GPTQ_SWIGLU
  int gptq_mma_max_rows = 32;        // SLUICE_CUDA_GPTQ_MMA_MAX_ROWS (kGptqMmaMaxRows)
  int gptq_mma_tiles = 0;            // SLUICE_CUDA_GPTQ_MMA_TILES
  int gptq_pdl_max_rows = 0;         // SLUICE_CUDA_GPTQ_PDL_MAX_ROWS
  int gptq_gemm_max_rows = 64;       // SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS (kGptqGemmMaxRows)
  bool gptq_gemm90 = true;           // SLUICE_CUDA_GPTQ_GEMM90
  int gptq_gemm90_min_rows = 17;     // SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS
  int gptq_gemm90_max_rows = 2048;   // SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS
  int gptq_gemm90_shapes = 2;        // SLUICE_CUDA_GPTQ_GEMM90_SHAPES
  int gptq_gemm90_tile_rows = 0;     // SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS
  int gptq_gemm90_tile_cols = 0;     // SLUICE_CUDA_GPTQ_GEMM90_TILE_COLS
  int gptq_gemm90_splits = 0;        // SLUICE_CUDA_GPTQ_GEMM90_SPLITS
  int gptq_gemm90_tma = 2;           // SLUICE_CUDA_GPTQ_GEMM90_TMA
  bool gptq_gemm90_tail = true;      // SLUICE_CUDA_GPTQ_GEMM90_TAIL
  bool gptq_dequant_ahead = false;   // SLUICE_CUDA_GPTQ_DEQUANT_AHEAD
  bool gptq_gemm90_cluster = true;   // SLUICE_CUDA_GPTQ_GEMM90_CLUSTER
  bool gptq_dequant_rows = true;     // SLUICE_CUDA_GPTQ_DEQUANT_ROWS
  bool gptq_chunk = true;            // SLUICE_CUDA_GPTQ_CHUNK
  int matmul_exact_rows = 1024;      // SLUICE_CUDA_MATMUL_EXACT_ROWS
  bool dependent_launch = true;      // SLUICE_CUDA_PDL
  bool profile = false;              // SLUICE_CUDA_PROFILE

  bool operator==(const CudaTuning& other) const;
};

// Looks a variable up: the value, or null when unset (std::getenv's contract).
using EnvLookup = std::function<const char*(const char* name)>;

// The tuning `env` describes; InvalidArgument naming the first variable whose value is not
// one of those the table above allows, and that value.
Result<CudaTuning> ParseCudaTuning(const EnvLookup& env);

// The process's environment, parsed on the first call (thread-safe) and kept: a stub drives
// one device, and the kernels read their knobs on every launch. CreateCudaDevice refuses to
// load with its error.
const Result<CudaTuning>& ProcessCudaTuning();

// ProcessCudaTuning's value, or the defaults when the environment is invalid (no device is
// then created, so only a kernel test run directly can see them).
const CudaTuning& Tuning();

}  // namespace sluice::llm::cuda

# The CUDA device's SLUICE_CUDA_* knobs: the parser is plain C++, tested in every build (the
# kernels' tests are tests/gpu).
sluice_add_test(cuda_tuning_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cuda_tuning_test.cc
  DEPS sluice_llm_device LABELS unit)

# The wgmma prefill kernel's shared-memory layout and descriptors, against the PTX ISA's
# canonical layouts (plain C++).
sluice_add_test(wgmma_layout_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/wgmma_layout_test.cc LABELS unit)

# The warp-specialized wgmma prefill kernel's copy map and barrier protocol, on a model of the
# barriers (plain C++).
sluice_add_test(attention_ws_pipeline_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/attention_ws_pipeline_test.cc LABELS unit)

# The GPTQ kernels' launch plans (plain C++): the Hopper GEMM's and its x-copy indices, the
# small-batch product's column tiles a warp; the arithmetic of the Hopper GEMM's 4-bit
# dequantization on bf16 pairs (with the CPU device's bf16 / fp16 conversions). One binary.
sluice_add_test(gptq_gemm90_plan_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/gptq_gemm90_plan_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/gptq_mma_plan_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/gptq_split_scale_test.cc
  DEPS sluice_device_cpu LABELS unit)

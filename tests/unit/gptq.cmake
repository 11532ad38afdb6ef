# GPTQ checkpoints on the CPU device: the quantized linear against float64, a GPTQ copy of
# the qwen2 fixture against its dequantized twin, config and tensor errors.
sluice_add_test(gptq_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/gptq_test.cc
  DEPS sluice_llm_model sluice_device_cpu LABELS unit)

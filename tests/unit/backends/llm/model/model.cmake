# The LLM model area: safetensors reader, HF config, and the decoder model against the
# transformers reference (tests/fixtures/models, scripts/make_test_models.py).
sluice_add_test(safetensors_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/safetensors_test.cc
  DEPS sluice_llm_model LABELS unit)
sluice_add_test(model_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/model_test.cc ${CMAKE_CURRENT_LIST_DIR}/model_config_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/tensor_parallel_test.cc ${CMAKE_CURRENT_LIST_DIR}/kv_cache_sizing_test.cc
  DEPS sluice_llm_model sluice_device_cpu LABELS unit)
# GPTQ checkpoints on the CPU device: the quantized linear against float64, a GPTQ copy of
# the qwen2 fixture against its dequantized twin, config and tensor errors.
sluice_add_test(gptq_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/gptq_test.cc
  DEPS sluice_llm_model sluice_device_cpu LABELS unit)
# The CUDA device module's loader; in a CUDA build also the module itself, from the build tree.
sluice_add_test(cuda_module_loader_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cuda_module_loader_test.cc
  DEPS sluice_llm_model ${CMAKE_DL_LIBS} LABELS unit)
if(SLUICE_HAVE_CUDA)
  target_compile_definitions(cuda_module_loader_test PRIVATE
    SLUICE_CUDA_MODULE_BUILD_DIR="$<TARGET_FILE_DIR:sluice_cuda_device>")
  add_dependencies(cuda_module_loader_test sluice_cuda_device)
endif()

# The LLM model area: safetensors reader, HF config, CPU ops, and the decoder model
# against the transformers reference (tests/fixtures/models, scripts/make_test_models.py).
sluice_add_test(safetensors_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/safetensors_test.cc
  DEPS sluice_llm_model LABELS unit)
sluice_add_test(cpu_ops_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cpu_ops_test.cc
  DEPS sluice_device_cpu LABELS unit)
sluice_add_test(model_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/model_test.cc ${CMAKE_CURRENT_LIST_DIR}/model_config_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/tensor_parallel_test.cc ${CMAKE_CURRENT_LIST_DIR}/kv_cache_sizing_test.cc
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
# The CUDA device's SLUICE_CUDA_* knobs: the parser is plain C++, tested in every build.
sluice_add_test(cuda_tuning_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cuda_tuning_test.cc
  DEPS sluice_llm_device LABELS unit)

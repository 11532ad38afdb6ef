# The CUDA device's SLUICE_CUDA_* knobs: the parser is plain C++, tested in every build (the
# kernels' tests are tests/gpu).
sluice_add_test(cuda_tuning_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cuda_tuning_test.cc
  DEPS sluice_llm_device LABELS unit)

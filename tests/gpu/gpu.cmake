# One gtest binary for the CUDA kernels; every test compares against a CPU reference on
# fresh random inputs (the seed is printed) and skips when no GPU is usable.
file(GLOB gpu_test_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_test.cc)
if(gpu_test_srcs)
  sluice_add_test(cuda_kernels_test
    SOURCES ${gpu_test_srcs}
    DEPS sluice_device_cuda sluice_llm_engine sluice_llm_model LABELS gpu)
endif()

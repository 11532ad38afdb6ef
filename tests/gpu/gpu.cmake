# One gtest binary for the CUDA kernels; every test compares against a CPU reference on
# fresh random inputs (the seed is printed) and skips when no GPU is usable.
file(GLOB gpu_test_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_test.cc)
if(gpu_test_srcs)
  sluice_add_test(cuda_kernels_test
    SOURCES ${gpu_test_srcs}
    DEPS sluice_device_cuda sluice_llm_engine sluice_llm_model LABELS gpu)
endif()

# Prefill attention timings, the CUDA-core against the tensor-core kernel (a tool, not a test).
add_executable(prefill_attention_bench ${PROJECT_SOURCE_DIR}/bench/prefill_attention_bench.cc)
target_compile_options(prefill_attention_bench PRIVATE ${SLUICE_WARNINGS})
target_link_libraries(prefill_attention_bench PRIVATE sluice_device_cuda)

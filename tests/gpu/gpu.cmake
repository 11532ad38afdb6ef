# One gtest binary for the CUDA kernels; every test compares against a CPU reference on
# fresh random inputs (the seed is printed) and skips when no GPU is usable. It links the
# device with the module's entry points (linked_cuda_device.cc) rather than opening the module.
file(GLOB gpu_test_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_test.cc)
if(gpu_test_srcs)
  sluice_add_test(cuda_kernels_test
    SOURCES ${gpu_test_srcs} ${CMAKE_CURRENT_LIST_DIR}/linked_cuda_device.cc
            ${PROJECT_SOURCE_DIR}/src/backends/llm/device/cuda/cuda_module.cc
    DEPS sluice_device_cuda sluice_llm_engine sluice_llm_model LABELS gpu)
endif()

# Prefill attention timings, the CUDA-core against the tensor-core kernel (a tool, not a test).
add_executable(prefill_attention_bench ${PROJECT_SOURCE_DIR}/bench/prefill_attention_bench.cc)
target_compile_options(prefill_attention_bench PRIVATE ${SLUICE_WARNINGS})
target_link_libraries(prefill_attention_bench PRIVATE sluice_device_cuda)
target_include_directories(prefill_attention_bench PRIVATE ${PROJECT_SOURCE_DIR})

# GPTQ small-batch product timings against the copy bandwidth (a tool, not a test).
add_executable(gptq_product_bench ${PROJECT_SOURCE_DIR}/bench/gptq_product_bench.cc)
target_compile_options(gptq_product_bench PRIVATE ${SLUICE_WARNINGS})
target_link_libraries(gptq_product_bench PRIVATE sluice_device_cuda)
target_include_directories(gptq_product_bench PRIVATE ${PROJECT_SOURCE_DIR})

# cuBLASLt algorithm choices for the prefill products, timed (a tool, not a test).
add_executable(matmul_algo_bench ${PROJECT_SOURCE_DIR}/bench/matmul_algo_bench.cc)
target_compile_options(matmul_algo_bench PRIVATE ${SLUICE_WARNINGS})
target_link_libraries(matmul_algo_bench PRIVATE sluice_device_cuda)
target_include_directories(matmul_algo_bench PRIVATE ${PROJECT_SOURCE_DIR})

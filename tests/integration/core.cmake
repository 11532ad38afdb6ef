# Integration tests: the real sluice binary on ephemeral loopback ports.
add_library(sluice_it_support STATIC ${CMAKE_CURRENT_LIST_DIR}/server_process.cc)
target_include_directories(sluice_it_support PUBLIC ${PROJECT_SOURCE_DIR}/tests ${PROJECT_SOURCE_DIR}/src)
target_compile_definitions(sluice_it_support PUBLIC
  SLUICE_SOURCE_DIR="${PROJECT_SOURCE_DIR}" SLUICE_BINARY_DIR="${PROJECT_BINARY_DIR}")
target_link_libraries(sluice_it_support PUBLIC GTest::gtest sluice_client)

sluice_add_test(lifecycle_http_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/lifecycle_http_test.cc
  DEPS sluice_it_support LABELS integration)
sluice_add_test(bad_input_http_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/bad_input_http_test.cc
  DEPS sluice_it_support LABELS integration)
# The tests start the binaries; build them first.
foreach(t lifecycle_http_test bad_input_http_test)
  add_dependencies(${t} sluice sluice-stub)
endforeach()

sluice_add_test(llm_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/llm_test.cc
  DEPS sluice_it_support LABELS integration)
add_dependencies(llm_test sluice sluice-stub)

sluice_add_test(streaming_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/streaming_test.cc
  DEPS sluice_it_support LABELS integration)
add_dependencies(streaming_test sluice sluice-stub)
add_dependencies(llm_test sluice-bench)

# GPTQ checkpoints (written at test time by tests/support/gptq_fixture.h) through the server.
sluice_add_test(gptq_serving_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/gptq_serving_test.cc
  DEPS sluice_it_support sluice_llm_model sluice_device_cpu LABELS integration)
add_dependencies(gptq_serving_test sluice sluice-stub)

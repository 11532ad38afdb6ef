# Unit tests of src/tools: the client library, the bench's statistics, arrivals, workload
# and report, and the lifecycle checker's pure parts.
sluice_add_test(tools_client_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tools_sse_parser_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/tools_http_client_test.cc
  DEPS sluice_client LABELS unit)
sluice_add_test(tools_bench_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tools_bench_stats_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/tools_bench_workload_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/tools_bench_http_test.cc
  DEPS sluice_bench_lib LABELS unit)
if(TARGET sluice_lifecycle_lib)
  sluice_add_test(tools_lifecycle_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tools_lifecycle_test.cc
    DEPS sluice_lifecycle_lib LABELS unit)
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/proto/grpc_service.proto)
  sluice_add_test(tools_grpc_client_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tools_grpc_client_test.cc
    DEPS sluice_bench_lib LABELS unit)
endif()

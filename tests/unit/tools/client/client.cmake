# The client library of src/tools (SSE parser, HTTP client) and the gRPC streaming client
# under the bench's gRPC transport.
sluice_add_test(tools_client_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tools_sse_parser_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/tools_http_client_test.cc
  DEPS sluice_client LABELS unit)
if(EXISTS ${PROJECT_SOURCE_DIR}/proto/grpc_service.proto)
  sluice_add_test(tools_grpc_client_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tools_grpc_client_test.cc
    DEPS sluice_bench_lib LABELS unit)
endif()

# sluice-bench's statistics, arrivals, workload, report and HTTP transport.
sluice_add_test(tools_bench_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tools_bench_stats_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/tools_bench_workload_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/tools_bench_http_test.cc
  DEPS sluice_bench_lib LABELS unit)

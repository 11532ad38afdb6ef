# The CPU device's ops against float64 references.
sluice_add_test(cpu_ops_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cpu_ops_test.cc
  DEPS sluice_device_cpu LABELS unit)

sluice_add_test(common_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/status_test.cc ${CMAKE_CURRENT_LIST_DIR}/tensor_test.cc
  DEPS sluice_common LABELS unit)

sluice_add_test(repository_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/repository_config_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/repository_paths_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/repository_test.cc
  DEPS sluice_core LABELS unit)

sluice_add_test(core_lifecycle_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/core/lifecycle_test.cc ${CMAKE_CURRENT_LIST_DIR}/core/fake_launcher.cc
          ${CMAKE_CURRENT_LIST_DIR}/core/instance_placement_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/core/model_table_test.cc
  DEPS sluice_core LABELS unit)

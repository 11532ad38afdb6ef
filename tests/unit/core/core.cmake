sluice_add_test(core_lifecycle_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/lifecycle_test.cc ${sluice_test_support}/fake_launcher.cc
          ${CMAKE_CURRENT_LIST_DIR}/instance_placement_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/model_table_test.cc
  DEPS sluice_core LABELS unit)

sluice_add_test(repository_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/repository_config_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/repository_paths_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/repository_test.cc
  DEPS sluice_core LABELS unit)

# StubProcess is compiled in directly (sluice_core is the lead's target) and spawns the
# real sluice-stub binary.
sluice_add_test(stub_process_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/stub_process_test.cc
          ${PROJECT_SOURCE_DIR}/src/core/stub_process.cc
          ${PROJECT_SOURCE_DIR}/src/core/stub_spawner.cc
  DEPS sluice_ipc sluice_proto sluice_common
  LABELS unit)
add_dependencies(stub_process_test sluice-stub)

# The stub process's built-in test backends (identity, repeat) and test behaviours.
sluice_add_test(stub_backends_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/stub_backends_test.cc
  DEPS sluice_stub_runtime
  LABELS unit)

# Issue 21: a burst of long prompts does not delay the llm stub's heartbeats and cancels.
# StubProcess (src/core) is compiled in to drive the real sluice-stub binary.
sluice_add_test(stub_prompt_burst_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/stub_prompt_burst_test.cc
          ${PROJECT_SOURCE_DIR}/src/core/stub_process.cc
          ${PROJECT_SOURCE_DIR}/src/core/stub_spawner.cc
  DEPS sluice_ipc sluice_proto sluice_common nlohmann_json::nlohmann_json
  LABELS unit)
add_dependencies(stub_prompt_burst_test sluice-stub)

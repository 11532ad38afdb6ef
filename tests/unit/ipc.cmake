# IPC protocol, stub process and built-in test backends.
sluice_add_test(ipc_message_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/ipc_message_test.cc
  DEPS sluice_ipc
  LABELS unit)

# StubProcess is compiled in directly (sluice_core is the lead's target) and spawns the
# real sluice-stub binary.
sluice_add_test(stub_process_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/stub_process_test.cc
          ${PROJECT_SOURCE_DIR}/src/core/stub_process.cc
          ${PROJECT_SOURCE_DIR}/src/core/stub_spawner.cc
  DEPS sluice_ipc sluice_proto sluice_common
  LABELS unit)
add_dependencies(stub_process_test sluice-stub)

sluice_add_test(stub_backends_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/stub_backends_test.cc
  DEPS sluice_stub_runtime
  LABELS unit)

# The typed LLM contract: its table of sampling ranges and its binary codec (round trip,
# truncated and hostile buffers).
sluice_add_test(llm_contract_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/llm_contract_test.cc
  DEPS sluice_ipc
  LABELS unit)

# Issue 21: a burst of long prompts does not delay the llm stub's heartbeats and cancels.
sluice_add_test(stub_prompt_burst_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/stub_prompt_burst_test.cc
          ${PROJECT_SOURCE_DIR}/src/core/stub_process.cc
          ${PROJECT_SOURCE_DIR}/src/core/stub_spawner.cc
  DEPS sluice_ipc sluice_proto sluice_common nlohmann_json::nlohmann_json
  LABELS unit)
add_dependencies(stub_prompt_burst_test sluice-stub)

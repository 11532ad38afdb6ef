# The IPC protocol: frames, channel, connection, shared memory and the codecs.
sluice_add_test(ipc_message_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/ipc_message_test.cc
  DEPS sluice_ipc
  LABELS unit)

# The typed LLM contract: its table of sampling ranges and its binary codec (round trip,
# truncated and hostile buffers).
sluice_add_test(llm_contract_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/llm_contract_test.cc
  DEPS sluice_ipc
  LABELS unit)

sluice_add_test(common_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/status_test.cc ${CMAKE_CURRENT_LIST_DIR}/tensor_test.cc
  DEPS sluice_common LABELS unit)
# Tool calling's shared rules and the contract's tool fields through their codec (issue 22).
sluice_add_test(tool_contract_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tool_contract_test.cc
  DEPS sluice_ipc sluice_common LABELS unit)
# JSON with its big integer literals kept as written (a schema's enum of them, issue 22).
sluice_add_test(json_numerals_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/json_numerals_test.cc
  DEPS sluice_common LABELS unit)

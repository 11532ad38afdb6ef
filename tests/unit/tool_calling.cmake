# Tool calling (issue 22): the contract's tool fields and their codec, the OpenAI frontend's
# tools / tool_choice / message fields and its tool-call JSON (streamed and not), and the llm
# backend's tool-call parsers, tool_choice constraints and template inputs.
sluice_add_test(tool_contract_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/common/tool_contract_test.cc
  DEPS sluice_ipc sluice_common LABELS unit)
sluice_add_test(openai_tool_calling_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/frontend/openai/tool_fields_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/frontend/openai/tool_call_assembler_test.cc
  DEPS sluice_openai LABELS unit)
sluice_add_test(tool_call_parser_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/backends/llm/backend/tool_call_parser_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/backends/llm/backend/tool_calling_test.cc
  DEPS sluice_llm_backend LABELS unit)

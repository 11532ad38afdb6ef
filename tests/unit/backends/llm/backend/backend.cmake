# The `llm` backend's own parsing: model.json engine arguments (issue 20: arguments Sluice
# cannot honour are refused, never silently ignored) and the typed requests.
sluice_add_test(llm_backend_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/engine_args_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/llm_request_test.cc
  DEPS sluice_llm_backend LABELS unit)
# The prompt workers that keep tokenization off the stub's IPC thread (issue 21).
sluice_add_test(prompt_pool_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/prompt_pool_test.cc
  DEPS sluice_llm_backend LABELS unit)
# The llm backend's tool-call parsers (pythonic calls among them), tool_choice constraints and
# template inputs.
sluice_add_test(tool_call_parser_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tool_call_parser_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/pythonic_call_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/tool_calling_test.cc
  DEPS sluice_llm_backend LABELS unit)

# The OpenAI frontend's parts: request parsing into the LLM contract, and the completion
# assembler (typed outputs to OpenAI's chunks and bodies).
sluice_add_test(openai_request_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/openai_request_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/openai_completion_assembler_test.cc
  DEPS sluice_openai LABELS unit)
# Tool calling in the OpenAI frontend: tools / tool_choice / message fields, the tool-call JSON
# (streamed and not), and /tokenize with tools.
sluice_add_test(openai_tool_calling_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tool_fields_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/tool_call_assembler_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/tokenize_request_test.cc
  DEPS sluice_openai LABELS unit)

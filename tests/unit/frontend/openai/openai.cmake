# The OpenAI frontend's parts: request parsing into the LLM contract, and the completion
# assembler (typed outputs to OpenAI's chunks and bodies).
sluice_add_test(openai_request_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/openai_request_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/openai_completion_assembler_test.cc
  DEPS sluice_openai LABELS unit)

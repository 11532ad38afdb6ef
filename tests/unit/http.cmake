sluice_add_test(http_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_server_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/http_kserve_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/http_codec_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/fake_inference_service.cc
  DEPS sluice_http LABELS unit)

# The OpenAI frontend's parts: request parsing into the LLM contract, and the completion
# assembler (typed outputs to OpenAI's chunks and bodies).
sluice_add_test(openai_request_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/openai_request_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/openai_completion_assembler_test.cc
  DEPS sluice_openai LABELS unit)

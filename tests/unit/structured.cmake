# Constrained decoding: the grammar compilers (GBNF, regex, choice, JSON Schema), the
# matcher over a toy vocabulary and over the real Qwen tokenizer, the grammar cache.
sluice_add_test(structured_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/structured_grammar_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/structured_json_schema_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/structured_matcher_test.cc
  DEPS sluice_structured LABELS unit)
# The engine hook, on the CPU demo model (examples/sluice-demo).
sluice_add_test(engine_structured_output_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_structured_output_test.cc
  DEPS sluice_llm_engine sluice_llm_model sluice_device_cpu sluice_tokenizer LABELS unit)

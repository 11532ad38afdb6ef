# Constrained decoding: the grammar compilers (GBNF, regex, choice, JSON Schema), the
# matcher over a toy vocabulary and over the real Qwen tokenizer, the grammar cache. The
# engine's hook is tested in ../engine.
sluice_add_test(structured_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/structured_grammar_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/structured_json_schema_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/structured_matcher_test.cc
  DEPS sluice_structured LABELS unit)
# JSON Schema's numeric bounds (exact decimals, digit automata) and its object and array
# counts.
sluice_add_test(json_schema_numbers_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/exact_decimal_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/json_schema_numbers_test.cc
  DEPS sluice_structured LABELS unit)

# Reasoning models (issue 22): vLLM's reasoning parsers and their model.json arguments, the
# chat template's kwargs, structured output after the reasoning in the engine (and errors that
# name no internal request id), the OpenAI frontend's reasoning fields, and grammar compiles
# off the engine's critical path.
sluice_add_test(reasoning_parser_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/backends/llm/backend/reasoning_parser_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/backends/llm/backend/reasoning_args_test.cc
  DEPS sluice_llm_backend LABELS unit)
sluice_add_test(engine_grammar_after_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/backends/llm/engine/engine_grammar_after_test.cc
          ${sluice_test_support}/demo_engine.cc
  DEPS sluice_llm_engine sluice_llm_model sluice_device_cpu sluice_tokenizer LABELS unit)
sluice_add_test(openai_reasoning_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/frontend/openai/openai_reasoning_test.cc
  DEPS sluice_openai LABELS unit)
# A slow grammar compile does not stop other requests' steps (the llm backend in-process).
sluice_add_test(grammar_compile_off_engine_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/backends/llm/backend/grammar_compile_off_engine_test.cc
  DEPS sluice_llm_backend sluice_device_cpu LABELS unit)
# Regressions that the random schemas of tests/python/test_random_schemas.py found.
sluice_add_test(json_schema_formats_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/backends/llm/structured/json_schema_formats_test.cc
  DEPS sluice_structured LABELS unit)

# Issue 22's remaining parts: structured output after a reasoning model's reasoning in the
# engine (and errors that name no internal request id).
sluice_add_test(engine_grammar_after_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/backends/llm/engine/engine_grammar_after_test.cc
  DEPS sluice_llm_engine sluice_llm_model sluice_device_cpu sluice_tokenizer LABELS unit)
# A slow grammar compile does not stop other requests' steps (the llm backend in-process).
sluice_add_test(grammar_compile_off_engine_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/backends/llm/backend/grammar_compile_off_engine_test.cc
  DEPS sluice_llm_backend sluice_device_cpu LABELS unit)

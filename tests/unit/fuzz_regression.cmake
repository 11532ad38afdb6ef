# What the fuzzers (fuzz/) found, one named regression test each (fuzz/RESULTS.md).
sluice_add_test(fuzz_regression_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_regression_test.cc
  DEPS sluice_llm_backend sluice_openai sluice_core LABELS unit)

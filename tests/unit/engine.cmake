sluice_add_test(llm_engine_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/kv_cache_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/scheduler_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/sampler_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/sampler_stop_string_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/engine_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/engine_metrics_test.cc
  DEPS sluice_llm_engine LABELS unit)

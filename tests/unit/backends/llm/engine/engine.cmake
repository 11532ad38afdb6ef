# The engine: KV blocks, scheduler, sampler, stop strings, the engine loop, its metrics and
# its periodic stats line.
sluice_add_test(llm_engine_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/kv_cache_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/scheduler_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/sampler_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/sampler_stop_string_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/engine_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/row_workers_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/engine_metrics_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/stats_log_test.cc
  DEPS sluice_llm_engine LABELS unit)
# The structured-output hook, on the CPU demo model (examples/sluice-demo).
sluice_add_test(engine_structured_output_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_structured_output_test.cc
          ${sluice_test_support}/demo_engine.cc
  DEPS sluice_llm_engine sluice_llm_model sluice_device_cpu sluice_tokenizer LABELS unit)

# The metrics renderer (Prometheus text) over a fake inference service.
if(TARGET sluice_metrics)
  sluice_add_test(metrics_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/metrics_renderer_test.cc
            ${sluice_test_support}/grpc_fake_service.cc
    DEPS sluice_metrics LABELS unit)
endif()

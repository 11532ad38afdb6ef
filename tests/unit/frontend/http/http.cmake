sluice_add_test(http_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_server_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/http_kserve_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/http_codec_test.cc
          ${sluice_test_support}/fake_inference_service.cc
  DEPS sluice_http LABELS unit)

# gRPC frontend and metrics tests (the gRPC ones run a real loopback server).
sluice_add_test(grpc_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/grpc_server_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/grpc_codec_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/grpc_proto_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/grpc_fake_service.cc
  DEPS sluice_grpc LABELS unit)
if(TARGET sluice_metrics)
  sluice_add_test(metrics_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/metrics_renderer_test.cc
            ${CMAKE_CURRENT_LIST_DIR}/grpc_fake_service.cc
    DEPS sluice_metrics LABELS unit)
endif()

# gRPC frontend tests (the server ones run a real loopback server).
sluice_add_test(grpc_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/grpc_server_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/grpc_codec_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/grpc_proto_test.cc
          ${sluice_test_support}/grpc_fake_service.cc
  DEPS sluice_grpc LABELS unit)

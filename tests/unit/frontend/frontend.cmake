# Access control: the API key / restricted-category policy, the HTTP guard over every
# registered route (KServe, generate, repository, OpenAI), CORS, and the gRPC RPC table.
sluice_add_test(access_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/access_test.cc
          ${sluice_test_support}/fake_inference_service.cc
  DEPS sluice_openai sluice_http sluice_grpc LABELS unit)

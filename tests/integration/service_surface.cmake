# Issue 20's service surface: vLLM's routes, OpenAI errors, served names, engine arguments,
# server flags (the real binary, the demo model).
sluice_add_test(service_surface_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/service_surface_test.cc
  DEPS sluice_it_support LABELS integration)
add_dependencies(service_surface_test sluice sluice-stub)

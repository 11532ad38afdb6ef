# The server executable's own pieces (src/server/).
sluice_add_test(listener_watch_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/listener_watch_test.cc
  DEPS sluice_listener_watch LABELS unit)

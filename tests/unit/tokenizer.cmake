# Tokenizer and chat template tests. The Qwen tokenizer comes from tests/node_modules
# (scripts/setup.sh runs npm ci); tests fail, not skip, when it is missing.
sluice_add_test(tokenizer_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_test.cc ${CMAKE_CURRENT_LIST_DIR}/tokenizer_detokenizer_test.cc
  DEPS sluice_tokenizer LABELS unit)
if(TARGET sluice_chat_template)
  sluice_add_test(chat_template_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/chat_template_test.cc
    DEPS sluice_chat_template sluice_tokenizer LABELS unit)
endif()

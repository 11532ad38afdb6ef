# Chat templates against transformers' rendering (tests/tools/chat_template_reference.py); the
# real Qwen3 tokenizer's template comes from .venv, as in tokenizer_test.
if(TARGET sluice_chat_template)
  sluice_add_test(chat_template_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/chat_template_test.cc
    DEPS sluice_chat_template sluice_tokenizer LABELS unit)
endif()

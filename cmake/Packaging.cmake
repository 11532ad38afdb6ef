# Install layout (cmake --install) and the Debian package (cpack -G DEB), packaging/README.md:
#   <prefix>/bin/               sluice and the tools (sluice-bench, sluice-lifecycle, ...)
#   <prefix>/lib/sluice/        sluice-stub (the server finds it there: server_flags.cc), and
#                               libsluice_cuda_device.so beside it in a CUDA build (the stub
#                               opens it for a GPU model: backends/llm/model/cuda_module_loader.h)
#   <prefix>/share/sluice/examples/   the demo repository (the server's default repository)
#   <prefix>/lib/systemd/system/sluice.service, <sysconf>/default/sluice (its flags)
# The package: configure with -DCMAKE_INSTALL_PREFIX=/usr (so that the flags file lands in
# /etc/default), build, then `cpack -G DEB` in the build directory.
include(GNUInstallDirs)

set(SLUICE_TOOLS sluice-bench sluice-lifecycle sluice-kernel-bench)
foreach(tool ${SLUICE_TOOLS})
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
install(TARGETS sluice RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Not GNUInstallDirs' LIBDIR: under /usr that is the multiarch lib/x86_64-linux-gnu, and the
# server looks for the stub in <prefix>/lib/sluice.
install(TARGETS sluice-stub RUNTIME DESTINATION lib/sluice)
if(TARGET sluice_cuda_device)
  install(TARGETS sluice_cuda_device LIBRARY DESTINATION lib/sluice)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/ DESTINATION ${CMAKE_INSTALL_DATADIR}/sluice/examples)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/sluice.service DESTINATION lib/systemd/system)
# /etc/default/sluice for the package (prefix /usr); under any other prefix <prefix>/etc, so
# that `cmake --install --prefix <dir>` writes nothing outside <dir>.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(SLUICE_DEFAULTS_DIR /etc/default)
else()
  set(SLUICE_DEFAULTS_DIR ${CMAKE_INSTALL_SYSCONFDIR}/default)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/packaging/sluice.default DESTINATION ${SLUICE_DEFAULTS_DIR} RENAME sluice)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/packaging/README.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VENDOR "Sluice")
set(CPACK_PACKAGE_CONTACT "Sluice maintainers <sluice@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "LLM inference server: KServe v2 (Triton-compatible) and OpenAI APIs")
# The extended description, in lines of at most 80 characters (Debian policy).
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
  "Sluice serves Triton model repositories over KServe v2 HTTP and gRPC and the"
  "OpenAI API, with a built-in LLM engine (Qwen2, Llama) and every model instance"
  "in its own sluice-stub process. Includes the sluice systemd service, the tools"
  "sluice-bench and sluice-lifecycle, and a demo model repository.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The runtime libraries (libgrpc++, libprotobuf, libopenblas, libpcre2, libicu, ...) as
# dpkg-shlibdeps finds them; passwd for useradd in postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles
  ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
  ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
  ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)

# Fuzz targets of the upper modules. Each also builds a replay driver that runs
# the checked-in corpus as a unit test; the libFuzzer binary needs clang.
foreach(target request policy)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND MEDVAULT_SANITIZE)
    add_executable(${target}_fuzz fuzz/${target}_fuzz.cc)
    target_compile_options(${target}_fuzz PRIVATE ${MEDVAULT_WARNINGS} -fsanitize=fuzzer)
    target_link_options(${target}_fuzz PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${target}_fuzz PRIVATE mv_app)
  endif()
  add_executable(fuzz_${target}_replay fuzz/${target}_fuzz.cc fuzz/replay_main.cc)
  target_compile_options(fuzz_${target}_replay PRIVATE ${MEDVAULT_WARNINGS})
  target_link_libraries(fuzz_${target}_replay PRIVATE mv_app)
  add_test(NAME fuzz_${target}_replay
           COMMAND fuzz_${target}_replay ${CMAKE_SOURCE_DIR}/fuzz/corpus/${target})
  set_tests_properties(fuzz_${target}_replay PROPERTIES LABELS unit)
endforeach()

# Fuzz targets. Every target has a replay driver, registered as a unit test
# that runs the checked-in corpus with any compiler (request and policy here,
# envelope in crypto_tests.cmake, ccda and fhir in interop.cmake, ledger_entry in
# ledger.cmake), and a
# libFuzzer binary <target>_fuzz, defined here for all of them by one rule:
# built when the compiler is clang and MEDVAULT_FUZZ is ON (scripts/fuzz.sh and
# `make asan-test` configure build-asan that way; see docs/fuzzing.md).
foreach(target request policy)
  add_executable(fuzz_${target}_replay fuzz/${target}_fuzz.cc fuzz/replay_main.cc)
  target_compile_options(fuzz_${target}_replay PRIVATE ${MEDVAULT_WARNINGS})
  target_link_libraries(fuzz_${target}_replay PRIVATE mv_app)
  add_test(NAME fuzz_${target}_replay
           COMMAND fuzz_${target}_replay ${CMAKE_SOURCE_DIR}/fuzz/corpus/${target})
  set_tests_properties(fuzz_${target}_replay PROPERTIES LABELS unit)
endforeach()

if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND MEDVAULT_FUZZ)
  # <target>_fuzz from fuzz/<target>_fuzz.cc, linked against <library>.
  foreach(pair request:mv_app policy:mv_app envelope:mv_crypto ccda:mv_interop fhir:mv_interop
      ledger_entry:mv_ledger)
    string(REPLACE ":" ";" pair "${pair}")
    list(GET pair 0 target)
    list(GET pair 1 library)
    add_executable(${target}_fuzz fuzz/${target}_fuzz.cc)
    target_compile_options(${target}_fuzz PRIVATE ${MEDVAULT_WARNINGS} -fsanitize=fuzzer)
    target_link_options(${target}_fuzz PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${target}_fuzz PRIVATE ${library})
  endforeach()

  # Coverage feedback: without it libFuzzer only sees the edges of the harness
  # file and mutates blindly. Our libraries get the coverage instrumentation
  # (-fsanitize=fuzzer-no-link, no fuzzer main); whatever links them gets the
  # same flag at link time, so the unit tests of this build dir still link and
  # run as before. Deferred to the end of the top-level directory so that
  # libraries declared after this file are instrumented too.
  function(medvault_instrument_for_fuzzing)
    get_property(targets DIRECTORY ${CMAKE_SOURCE_DIR} PROPERTY BUILDSYSTEM_TARGETS)
    foreach(t IN LISTS targets)
      get_target_property(type ${t} TYPE)
      if(type STREQUAL "STATIC_LIBRARY" AND t MATCHES "^mv_")
        target_compile_options(${t} PRIVATE -fsanitize=fuzzer-no-link)
        target_link_options(${t} INTERFACE -fsanitize=fuzzer-no-link)
      endif()
    endforeach()
  endfunction()
  cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL medvault_instrument_for_fuzzing)
endif()

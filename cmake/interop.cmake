# src/interop (C-CDA and FHIR R4 in and out) and src/engine (the record
# engine: selection, masking, split/join, share packages).
pkg_check_modules(LIBXML2 REQUIRED IMPORTED_TARGET libxml-2.0)

medvault_library(mv_interop
  src/interop/model.cc src/interop/datetime.cc src/interop/mapping.cc
  src/interop/ccda_reader.cc src/interop/ccda_writer.cc
  src/interop/fhir_json.cc src/interop/fhir_reader.cc src/interop/fhir_writer.cc)
target_link_libraries(mv_interop PUBLIC mv_record mv_common nlohmann_json::nlohmann_json
  PkgConfig::LIBXML2)

medvault_library(mv_engine src/engine/engine.cc src/engine/share_package.cc)
target_link_libraries(mv_engine PUBLIC mv_interop mv_record mv_crypto mv_common
  nlohmann_json::nlohmann_json)

medvault_test(model_test mv_interop)
medvault_test(datetime_test mv_interop)
medvault_test(mapping_test mv_interop)
medvault_test(ccda_reader_test mv_interop)
medvault_test(ccda_writer_test mv_interop)
medvault_test(fhir_json_test mv_interop)
medvault_test(fhir_reader_test mv_interop)
medvault_test(fhir_writer_test mv_interop)
medvault_test(engine_test mv_engine)
medvault_test(share_package_test mv_engine)

# Fuzz targets of the importers: corpus replayed as unit tests here; the
# libFuzzer binaries are built by scripts/fuzz.sh (clang, own build dir).
foreach(target ccda fhir)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND MEDVAULT_FUZZ)
    add_executable(${target}_fuzz fuzz/${target}_fuzz.cc)
    target_compile_options(${target}_fuzz PRIVATE ${MEDVAULT_WARNINGS} -fsanitize=fuzzer)
    target_link_options(${target}_fuzz PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${target}_fuzz PRIVATE mv_interop)
  endif()
  add_executable(fuzz_${target}_replay fuzz/${target}_fuzz.cc fuzz/replay_main.cc)
  target_compile_options(fuzz_${target}_replay PRIVATE ${MEDVAULT_WARNINGS})
  target_link_libraries(fuzz_${target}_replay PRIVATE mv_interop)
  add_test(NAME fuzz_${target}_replay
           COMMAND fuzz_${target}_replay ${CMAKE_SOURCE_DIR}/fuzz/corpus/${target})
  set_tests_properties(fuzz_${target}_replay PROPERTIES LABELS unit)
endforeach()

# src/exchange: import and export against the record service.
medvault_library(mv_exchange src/exchange/exchange.cc)
target_link_libraries(mv_exchange PUBLIC mv_interop mv_record mv_crypto mv_common)
medvault_test(exchange_test mv_exchange)

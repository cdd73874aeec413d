# src/interop (C-CDA and FHIR R4 in and out) and src/engine (the record
# engine: selection, masking, split/join, share packages).
pkg_check_modules(LIBXML2 REQUIRED IMPORTED_TARGET libxml-2.0)

medvault_library(mv_interop
  src/interop/model.cc src/interop/datetime.cc src/interop/mapping.cc
  src/interop/ccda_reader.cc src/interop/ccda_writer.cc
  src/interop/fhir_json.cc src/interop/fhir_reader.cc src/interop/fhir_writer.cc)
target_link_libraries(mv_interop PUBLIC mv_vocab mv_record mv_common nlohmann_json::nlohmann_json
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
# libFuzzer binaries ccda_fuzz and fhir_fuzz are defined with the others in
# cmake/fuzz_targets.cmake (clang, MEDVAULT_FUZZ=ON; run by scripts/fuzz.sh).
foreach(target ccda fhir)
  add_executable(fuzz_${target}_replay fuzz/${target}_fuzz.cc fuzz/replay_main.cc)
  target_compile_options(fuzz_${target}_replay PRIVATE ${MEDVAULT_WARNINGS})
  target_link_libraries(fuzz_${target}_replay PRIVATE mv_interop)
  add_test(NAME fuzz_${target}_replay
           COMMAND fuzz_${target}_replay ${CMAKE_SOURCE_DIR}/fuzz/corpus/${target})
  set_tests_properties(fuzz_${target}_replay PROPERTIES LABELS unit)
endforeach()

# src/exchange: import and export against the record service.
medvault_library(mv_exchange src/exchange/exchange.cc src/exchange/summary.cc)
target_link_libraries(mv_exchange PUBLIC mv_interop mv_record mv_crypto mv_common)
medvault_test(exchange_test mv_exchange)
medvault_test(summary_test mv_exchange)

# Import benchmarks (issue 5): C-CDA and FHIR import against a bare parse of
# the same bytes (libxml2, nlohmann::json), in the same run.
if(MEDVAULT_BUILD_BENCH)
  find_package(benchmark REQUIRED)
  add_executable(interop_bench bench/interop_bench.cc)
  target_compile_options(interop_bench PRIVATE ${MEDVAULT_WARNINGS})
  target_compile_definitions(interop_bench PRIVATE MEDVAULT_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  target_link_libraries(interop_bench PRIVATE mv_exchange mv_interop benchmark::benchmark
    PkgConfig::LIBXML2)
  # The clinical summary of a 5,000-observation record (issue 15).
  add_executable(summary_bench bench/summary_bench.cc)
  target_compile_options(summary_bench PRIVATE ${MEDVAULT_WARNINGS})
  target_link_libraries(summary_bench PRIVATE mv_exchange benchmark::benchmark)
endif()
medvault_test(code_preservation_test mv_interop)

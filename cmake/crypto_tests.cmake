# Crypto module: unit tests, envelope fuzzer (+ plain corpus replay) and benchmark.
medvault_test(random_test mv_crypto)
medvault_test(aead_test mv_crypto nlohmann_json::nlohmann_json)
medvault_test(hash_test mv_crypto nlohmann_json::nlohmann_json)
medvault_test(key_tree_test mv_crypto)
medvault_test(key_provider_test mv_crypto)
medvault_test(envelope_test mv_crypto)

# Envelope fuzzer: the replay driver runs the target over the checked-in corpus
# with any compiler, as a unit test; the libFuzzer binary envelope_fuzz is
# defined with the others in cmake/fuzz_targets.cmake.
add_executable(fuzz_envelope_replay fuzz/envelope_fuzz.cc fuzz/replay_main.cc)
target_compile_options(fuzz_envelope_replay PRIVATE ${MEDVAULT_WARNINGS})
target_link_libraries(fuzz_envelope_replay PRIVATE mv_crypto)
add_test(NAME fuzz_envelope_replay
         COMMAND fuzz_envelope_replay ${CMAKE_SOURCE_DIR}/fuzz/corpus/envelope)
set_tests_properties(fuzz_envelope_replay PROPERTIES LABELS unit)

if(MEDVAULT_BUILD_BENCH)
  find_package(benchmark REQUIRED)
  add_executable(crypto_bench bench/crypto_bench.cc)
  target_compile_options(crypto_bench PRIVATE ${MEDVAULT_WARNINGS})
  target_link_libraries(crypto_bench PRIVATE mv_crypto benchmark::benchmark)
endif()

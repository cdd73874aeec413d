# Tamper-evident ledger: library, tests and benchmark.
medvault_library(mv_ledger
  src/ledger/merkle.cc src/ledger/entry.cc src/ledger/entry_compact.cc src/ledger/checkpoint.cc src/ledger/sqlite_ledger.cc
  src/ledger/witness.cc src/ledger/checkpoint_scheduler.cc)
target_link_libraries(mv_ledger PUBLIC mv_store mv_crypto mv_common nlohmann_json::nlohmann_json
  PkgConfig::SODIUM)

foreach(test merkle_test ledger_entry_test entry_compact_test checkpoint_test sqlite_ledger_test witness_test
    checkpoint_scheduler_test)
  medvault_test(${test} mv_ledger)
endforeach()

# The ledger entry fuzz target's corpus replay (cmake/fuzz_targets.cmake
# builds the libFuzzer binary ledger_entry_fuzz).
add_executable(fuzz_ledger_entry_replay fuzz/ledger_entry_fuzz.cc fuzz/replay_main.cc)
target_compile_options(fuzz_ledger_entry_replay PRIVATE ${MEDVAULT_WARNINGS})
target_link_libraries(fuzz_ledger_entry_replay PRIVATE mv_ledger)
add_test(NAME fuzz_ledger_entry_replay
         COMMAND fuzz_ledger_entry_replay ${CMAKE_SOURCE_DIR}/fuzz/corpus/ledger_entry)
set_tests_properties(fuzz_ledger_entry_replay PROPERTIES LABELS unit)

if(MEDVAULT_BUILD_BENCH)
  find_package(benchmark REQUIRED)
  add_executable(ledger_bench bench/ledger_bench.cc)
  target_compile_options(ledger_bench PRIVATE ${MEDVAULT_WARNINGS})
  target_link_libraries(ledger_bench PRIVATE mv_ledger benchmark::benchmark)
endif()

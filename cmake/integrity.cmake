# Integrity scrubber: library, tests and benchmark.
medvault_library(mv_integrity
  src/integrity/scrubber.cc src/integrity/report.cc src/integrity/scheduler.cc)
target_link_libraries(mv_integrity PUBLIC mv_record mv_store mv_crypto mv_common
  nlohmann_json::nlohmann_json Threads::Threads)

medvault_test(scrubber_test mv_integrity)
# The tests edit metadata rows behind the store's back, as an attacker would.
target_link_libraries(scrubber_test PRIVATE PkgConfig::SQLITE)

if(MEDVAULT_BUILD_BENCH)
  find_package(benchmark REQUIRED)
  add_executable(scrub_bench bench/scrub_bench.cc)
  target_compile_options(scrub_bench PRIVATE ${MEDVAULT_WARNINGS})
  target_link_libraries(scrub_bench PRIVATE mv_integrity benchmark::benchmark)
endif()

# The report and the scheduler have their own test files (sharing the fixture).
foreach(test scrub_report_test scrub_scheduler_test)
  medvault_test(${test} mv_integrity)
  target_link_libraries(${test} PRIVATE PkgConfig::SQLITE)
endforeach()

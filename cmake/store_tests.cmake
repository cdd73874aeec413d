# Storage module: tests and benchmark.
medvault_test(object_store_test mv_store)
medvault_test(file_object_store_test mv_store)
medvault_test(sqlite_metadata_store_test mv_store)
medvault_test(sqlite_util_test mv_store)
medvault_test(group_commit_test mv_store)
medvault_test(shared_writer_test mv_store)
medvault_test(sqlite_change_feed_test mv_store)
# The contract of each storage interface, run against every backend
# (docs/architecture.md, "Test doubles and conformance suites").
medvault_test(object_store_conformance_test mv_store)
medvault_test(metadata_store_conformance_test mv_store)
medvault_test(account_store_conformance_test mv_account_store)
medvault_test(policy_entry_conformance_test mv_access)
medvault_test(ledger_conformance_test mv_ledger)
# The fault-injecting wrappers, alone and under the record service.
medvault_test(faulty_store_test mv_store_faults)
medvault_test(record_fault_test mv_record mv_store_faults)

if(MEDVAULT_BUILD_BENCH)
  find_package(benchmark REQUIRED)
  add_executable(store_bench bench/store_bench.cc)
  target_compile_options(store_bench PRIVATE ${MEDVAULT_WARNINGS})
  target_link_libraries(store_bench PRIVATE mv_store benchmark::benchmark)
endif()
# The in-memory doubles' own behaviour beyond the shared contract.
medvault_test(memory_metadata_store_test mv_store)
medvault_test(memory_object_store_test mv_store)

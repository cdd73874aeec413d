# Access decision point: library, tests and benchmark.
medvault_library(mv_policy
  src/policy/vocabulary.cc src/policy/policy_file.cc src/policy/policy_data.cc
  src/policy/decision_point.cc)
target_link_libraries(mv_policy PUBLIC mv_vocab mv_common Threads::Threads)

# The tests read the shipped config/policy.conf, so that what ships is what is tested.
foreach(test policy_file_test decision_point_test pdp_table_test)
  medvault_test(${test} mv_policy)
  target_compile_definitions(${test} PRIVATE MEDVAULT_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
endforeach()

if(MEDVAULT_BUILD_BENCH)
  find_package(benchmark REQUIRED)
  add_executable(pdp_bench bench/pdp_bench.cc)
  target_compile_options(pdp_bench PRIVATE ${MEDVAULT_WARNINGS})
  target_compile_definitions(pdp_bench PRIVATE MEDVAULT_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  target_link_libraries(pdp_bench PRIVATE mv_policy mv_vocab benchmark::benchmark)
endif()

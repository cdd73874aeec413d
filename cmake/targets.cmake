# Upper modules: record, api, app and the medvault binary.
medvault_library(mv_record
  src/record/segment_path.cc src/record/measurements.cc src/record/record_service.cc)
target_link_libraries(mv_record PUBLIC mv_store mv_crypto mv_common nlohmann_json::nlohmann_json)

medvault_library(mv_api src/api/http_server.cc src/api/json_input.cc src/api/metrics.cc)
target_link_libraries(mv_api PUBLIC mv_record PkgConfig::HTTPLIB OpenSSL::SSL Threads::Threads)

medvault_library(mv_app src/app/config.cc src/app/data_dir.cc src/app/tls_cert.cc
  src/app/demo.cc src/app/cli.cc)
target_link_libraries(mv_app PUBLIC mv_api mv_record OpenSSL::SSL OpenSSL::Crypto)

add_executable(medvault src/app/main.cc)
target_compile_options(medvault PRIVATE ${MEDVAULT_WARNINGS})
target_link_libraries(medvault PRIVATE mv_app)
set_target_properties(medvault PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})

medvault_test(record_service_test mv_record)
medvault_test(segment_path_test mv_record)
medvault_test(measurements_test mv_record)
medvault_test(http_server_test mv_app)
medvault_test(canary_test mv_app)

add_executable(crash_writer tests/crash_writer_main.cc)
target_compile_options(crash_writer PRIVATE ${MEDVAULT_WARNINGS})
target_link_libraries(crash_writer PRIVATE mv_app)
medvault_test(crash_test mv_app)
target_compile_definitions(crash_test PRIVATE CRASH_WRITER_BINARY="$<TARGET_FILE:crash_writer>")
add_dependencies(crash_test crash_writer)
medvault_test(config_test mv_app)
medvault_test(json_input_test mv_app)
medvault_test(metrics_test mv_app)
medvault_test(data_dir_test mv_app)
medvault_test(tls_cert_test mv_app)
medvault_test(demo_test mv_app)
medvault_test(cli_test mv_app)
add_dependencies(cli_test medvault)

if(MEDVAULT_BUILD_BENCH)
  find_package(benchmark REQUIRED)
  add_executable(service_bench bench/service_bench.cc)
  target_link_libraries(service_bench PRIVATE mv_app benchmark::benchmark)
endif()

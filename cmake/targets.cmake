# Upper modules: record, api, app and the medvault binary.
medvault_library(mv_record
  src/record/segment_path.cc src/record/measurements.cc src/record/record_service.cc)
target_link_libraries(mv_record PUBLIC mv_vocab mv_store mv_crypto mv_common nlohmann_json::nlohmann_json)

medvault_library(mv_access src/access/access_service.cc)
target_link_libraries(mv_access PUBLIC mv_policy mv_ledger mv_store mv_crypto mv_common
  nlohmann_json::nlohmann_json)

# The enforcement layer: decisions, their ledger entries and obligations for
# every door (src/enforce).
medvault_library(mv_enforce src/enforce/scope.cc src/enforce/entries.cc src/enforce/operations.cc)
target_link_libraries(mv_enforce PUBLIC mv_exchange mv_engine mv_record mv_auth mv_access mv_policy
  mv_ledger mv_integrity nlohmann_json::nlohmann_json)

medvault_library(mv_api src/api/http_server.cc src/api/http_helpers.cc src/api/json_input.cc
  src/api/metrics.cc src/api/routes_auth.cc src/api/routes_admin.cc src/api/routes_access.cc
  src/api/routes_ledger.cc src/api/routes_exchange.cc src/api/portal.cc src/api/conn_guard.cc
  src/api/http_transport.cc)
target_link_libraries(mv_api PUBLIC mv_enforce mv_record mv_exchange mv_engine mv_auth mv_access mv_policy mv_ledger
  OpenSSL::SSL Threads::Threads)
# Asio and Beast stay inside http_transport.cc: no public header includes them.
target_link_libraries(mv_api PRIVATE Boost::headers)
target_compile_definitions(mv_api PRIVATE BOOST_ASIO_NO_DEPRECATED BOOST_BEAST_USE_STD_STRING_VIEW)

# The default policy is compiled in, so that `medvault init` can write it.
file(READ ${CMAKE_SOURCE_DIR}/config/policy.conf MEDVAULT_DEFAULT_POLICY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/config/policy.conf)
configure_file(${CMAKE_SOURCE_DIR}/src/app/default_policy.cc.in
  ${CMAKE_BINARY_DIR}/generated/default_policy.cc @ONLY)

medvault_library(mv_app src/app/config.cc src/app/data_dir.cc src/app/tls_cert.cc
  src/app/demo.cc src/app/change_watcher.cc src/app/command.cc src/app/cli.cc src/app/admin_cli.cc src/app/ledger_cli.cc src/app/exchange_cli.cc ${CMAKE_BINARY_DIR}/generated/default_policy.cc)
target_link_libraries(mv_app PUBLIC mv_api mv_record mv_auth mv_access mv_ledger mv_integrity
  PkgConfig::HTTPLIB OpenSSL::SSL OpenSSL::Crypto)

add_executable(medvault src/app/main.cc)
target_compile_options(medvault PRIVATE ${MEDVAULT_WARNINGS})
target_link_libraries(medvault PRIVATE mv_app)
set_target_properties(medvault PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})

medvault_test(record_service_test mv_record)
medvault_test(key_rotation_test mv_record)
medvault_test(access_service_test mv_access mv_record)
target_compile_definitions(access_service_test PRIVATE MEDVAULT_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
target_link_libraries(access_service_test PRIVATE PkgConfig::SQLITE)
medvault_test(segment_path_test mv_record)
medvault_test(measurements_test mv_record)
medvault_test(http_server_test mv_app)
target_link_libraries(http_server_test PRIVATE PkgConfig::SQLITE)
medvault_test(http_authz_test mv_app)
medvault_test(canary_test mv_app)

add_executable(crash_writer tests/crash_writer_main.cc)
target_compile_options(crash_writer PRIVATE ${MEDVAULT_WARNINGS})
target_link_libraries(crash_writer PRIVATE mv_app)
medvault_test(crash_test mv_app)
medvault_test(change_watcher_test mv_app)
target_compile_definitions(crash_test PRIVATE CRASH_WRITER_BINARY="$<TARGET_FILE:crash_writer>")
add_dependencies(crash_test crash_writer medvault)
medvault_test(config_test mv_app)
medvault_test(command_test mv_app)
medvault_test(json_input_test mv_app)
medvault_test(metrics_test mv_app)
medvault_test(data_dir_test mv_app)
medvault_test(tls_cert_test mv_app)
medvault_test(demo_test mv_app)
medvault_test(cli_test mv_app)
add_dependencies(cli_test medvault)
medvault_test(admin_cli_test mv_app)
add_dependencies(admin_cli_test medvault)
medvault_test(ledger_cli_test mv_app)
add_dependencies(ledger_cli_test medvault)

if(MEDVAULT_BUILD_BENCH)
  find_package(benchmark REQUIRED)
  add_executable(service_bench bench/service_bench.cc)
  target_link_libraries(service_bench PRIVATE mv_app benchmark::benchmark)
endif()
medvault_test(routes_ledger_test mv_app)
medvault_test(ledger_privacy_test mv_app)
target_link_libraries(ledger_privacy_test PRIVATE PkgConfig::SQLITE)
medvault_test(routes_auth_test mv_app)
medvault_test(routes_admin_test mv_app)
medvault_test(routes_access_test mv_app)
medvault_test(http_helpers_test mv_app)
medvault_test(conn_guard_test mv_app)
medvault_test(http_transport_test mv_api)
medvault_test(sqlite_policy_entry_store_test mv_store mv_ledger)
medvault_test(routes_exchange_test mv_app)
medvault_test(exchange_cli_test mv_app)
add_dependencies(exchange_cli_test medvault)

# The web portal: static files copied beside the binary at every build (the
# server serves build/web by default; see docs/portal.md).
if(EXISTS ${CMAKE_SOURCE_DIR}/web)
  add_custom_target(portal ALL
    COMMAND ${CMAKE_COMMAND} -E rm -rf ${CMAKE_BINARY_DIR}/web
    COMMAND ${CMAKE_COMMAND} -E copy_directory ${CMAKE_SOURCE_DIR}/web ${CMAKE_BINARY_DIR}/web
    COMMENT "Copying the web portal")
endif()
medvault_test(portal_test mv_app)

# The enforcement layer's tests run over a real data directory (mv_app).
medvault_test(enforce_scope_test mv_app)
medvault_test(enforce_entries_test mv_enforce)
medvault_test(enforce_operations_test mv_app)

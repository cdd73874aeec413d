# Accounts and authentication: the account store, the auth library, tests and benchmark.

# The SQLite AccountStore lives in its own small library so that mv_store's
# source list stays with the storage module.
medvault_library(mv_account_store src/store/sqlite_account_store.cc)
target_link_libraries(mv_account_store PUBLIC mv_store mv_crypto mv_common PkgConfig::SQLITE)

medvault_library(mv_auth src/auth/password.cc src/auth/totp.cc src/auth/account_service.cc)
target_link_libraries(mv_auth PUBLIC mv_account_store mv_store mv_crypto mv_common
  OpenSSL::Crypto PkgConfig::SODIUM Threads::Threads)

medvault_test(password_test mv_auth)
medvault_test(totp_test mv_auth)
medvault_test(account_service_test mv_auth)
medvault_test(sqlite_account_store_test mv_account_store)

if(MEDVAULT_BUILD_BENCH)
  find_package(benchmark REQUIRED)
  add_executable(auth_bench bench/auth_bench.cc)
  target_compile_options(auth_bench PRIVATE ${MEDVAULT_WARNINGS})
  target_link_libraries(auth_bench PRIVATE mv_auth benchmark::benchmark)
endif()

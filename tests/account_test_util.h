// Rows for AccountStore tests.
#pragma once

#include <cstdio>
#include <string>

#include "store/account_store.h"

namespace medvault::store_testing::accounts {

using store::AccountRow;
using store::SessionRow;
using store::SessionTokenRow;
using store::TokenKind;

// A 32-hex id for a small number.
inline std::string Id(int i) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%032x", i);
  return buf;
}

// `n` bytes derived from `seed`.
inline Bytes Filled(uint8_t seed, size_t n = 32) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) {
    b[i] = static_cast<uint8_t>(seed + i * 13);
  }
  return b;
}

inline AccountRow MakeAccount(int i) {
  AccountRow r;
  r.account_id = Id(1000 + i);
  r.username_index = Filled(static_cast<uint8_t>(i));
  r.sealed_profile = Filled(static_cast<uint8_t>(100 + i), 80);
  r.password_hash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA";
  r.roles = {"doctor", "auditor"};
  r.created_at_ms = 1700000000000 + i;
  r.updated_at_ms = r.created_at_ms;
  return r;
}

inline SessionRow MakeSession(const std::string& account_id, int i) {
  SessionRow s;
  s.session_id = Id(5000 + i);
  s.account_id = account_id;
  s.audience = "medvault-api";
  s.mfa_verified = true;
  s.created_at_ms = 1000 + i;
  s.expires_at_ms = 100000;
  return s;
}

inline SessionTokenRow MakeToken(uint8_t seed, TokenKind kind, int64_t expires) {
  SessionTokenRow t;
  t.token_hash = Filled(seed);
  t.kind = kind;
  t.created_at_ms = 1000;
  t.expires_at_ms = expires;
  return t;
}

}  // namespace medvault::store_testing::accounts

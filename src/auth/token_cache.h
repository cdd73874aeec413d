// In-memory cache of access tokens for AccountService::Authenticate (internal
// to src/auth).
//
// Key: the SHA-256 of the token (so lookups hash-compare a digest, never the
// secret). Value: a snapshot of the session and its account. Hits take a
// shared lock and copy the snapshot out; nothing else is allocated.
//
// Consistency with revocation: every path that revokes a session or changes
// an account first writes the store, then calls Invalidate*(), which erases
// the affected entries and bumps an epoch. A filler (Authenticate on a miss,
// Login, Refresh) reads the epoch BEFORE it reads the store and inserts only
// if the epoch is unchanged, so a snapshot read before a revocation can never
// be inserted after that revocation's invalidation. Changes made by another
// process (a CLI command beside the server) arrive through the database's
// change log: AccountService applies it (InvalidateAccount per changed
// account) before every lookup, so the same ordering holds for them.
//
// Bounded: at capacity, expired entries are dropped first, then a CLOCK sweep
// (an entry hit since the last sweep survives once) frees an eighth of the
// capacity, so the O(n) sweep is amortised over n/8 inserts.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "auth/auth.h"

namespace medvault::auth::internal {

struct TokenHash {
  std::array<uint8_t, 32> bytes{};
  bool operator==(const TokenHash&) const = default;
  ByteView view() const { return {bytes.data(), bytes.size()}; }
};

struct TokenHashHasher {
  // The key is a SHA-256 digest: its first bytes are already uniform.
  size_t operator()(const TokenHash& h) const noexcept {
    size_t v;
    std::memcpy(&v, h.bytes.data(), sizeof v);
    return v;
  }
};

class TokenCache {
 public:
  explicit TokenCache(size_t capacity) : capacity_(capacity) {}

  uint64_t Epoch() const { return epoch_.load(std::memory_order_acquire); }

  // Calls fn(session, session_expires_at_ms) under a shared lock when `key`
  // is cached and returns true; false on a miss.
  template <typename Fn>
  bool WithEntry(const TokenHash& key, Fn&& fn) const {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) {
      return false;
    }
    it->second.referenced.store(true, std::memory_order_relaxed);
    fn(it->second.session, it->second.session_expires_at_ms);
    return true;
  }

  // Inserts unless an invalidation happened since `epoch` was read.
  void Insert(const TokenHash& key, const AuthenticatedSession& session,
              int64_t session_expires_at_ms, uint64_t epoch, int64_t now_ms) {
    if (capacity_ == 0) {
      return;
    }
    std::unique_lock<std::shared_mutex> lock(mu_);
    if (epoch != epoch_.load(std::memory_order_relaxed)) {
      return;
    }
    if (map_.count(key) != 0) {
      return;
    }
    if (map_.size() >= capacity_) {
      EvictLocked(now_ms);
    }
    map_.try_emplace(key, session, session_expires_at_ms);
    by_account_[session.account.account_id].push_back(key);
  }

  // Drops the entries of one session of `account_id`.
  void InvalidateSession(const std::string& account_id, std::string_view session_id) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    epoch_.fetch_add(1, std::memory_order_acq_rel);
    auto acc = by_account_.find(account_id);
    if (acc == by_account_.end()) {
      return;
    }
    std::vector<TokenHash>& keys = acc->second;
    for (size_t i = 0; i < keys.size();) {
      auto it = map_.find(keys[i]);
      if (it == map_.end() || it->second.session.session_id == session_id) {
        if (it != map_.end()) {
          map_.erase(it);
        }
        keys[i] = keys.back();
        keys.pop_back();
      } else {
        ++i;
      }
    }
    if (keys.empty()) {
      by_account_.erase(acc);
    }
  }

  // Drops every entry of `account_id` (revocation, roles, disabling).
  void InvalidateAccount(const std::string& account_id) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    epoch_.fetch_add(1, std::memory_order_acq_rel);
    auto acc = by_account_.find(account_id);
    if (acc == by_account_.end()) {
      return;
    }
    for (const TokenHash& key : acc->second) {
      map_.erase(key);
    }
    by_account_.erase(acc);
  }

  // Drops every entry (changes made by another process that cannot be
  // narrowed to accounts: the change log was pruned past us).
  void InvalidateAll() {
    std::unique_lock<std::shared_mutex> lock(mu_);
    epoch_.fetch_add(1, std::memory_order_acq_rel);
    map_.clear();
    by_account_.clear();
  }

  size_t size() const {
    std::shared_lock<std::shared_mutex> lock(mu_);
    return map_.size();
  }

 private:
  struct Entry {
    Entry(const AuthenticatedSession& s, int64_t session_expiry)
        : session(s), session_expires_at_ms(session_expiry) {}
    AuthenticatedSession session;  // expires_at_ms: of the access token
    int64_t session_expires_at_ms;
    mutable std::atomic<bool> referenced{false};
  };
  using Map = std::unordered_map<TokenHash, Entry, TokenHashHasher>;

  // REQUIRES: mu_ held exclusively.
  Map::iterator EraseLocked(Map::iterator it) {
    auto acc = by_account_.find(it->second.session.account.account_id);
    if (acc != by_account_.end()) {
      std::vector<TokenHash>& keys = acc->second;
      for (size_t i = 0; i < keys.size(); ++i) {
        if (keys[i] == it->first) {
          keys[i] = keys.back();
          keys.pop_back();
          break;
        }
      }
      if (keys.empty()) {
        by_account_.erase(acc);
      }
    }
    return map_.erase(it);
  }

  // REQUIRES: mu_ held exclusively.
  void EvictLocked(int64_t now_ms) {
    for (auto it = map_.begin(); it != map_.end();) {
      if (now_ms >= it->second.session.expires_at_ms ||
          now_ms >= it->second.session_expires_at_ms) {
        it = EraseLocked(it);
      } else {
        ++it;
      }
    }
    const size_t target = capacity_ - std::max<size_t>(1, capacity_ / 8);
    // Two passes at most: the first clears every reference bit it keeps.
    for (int pass = 0; pass < 2 && map_.size() > target; ++pass) {
      for (auto it = map_.begin(); it != map_.end() && map_.size() > target;) {
        if (it->second.referenced.exchange(false, std::memory_order_relaxed)) {
          ++it;
        } else {
          it = EraseLocked(it);
        }
      }
    }
  }

  const size_t capacity_;
  mutable std::shared_mutex mu_;
  std::atomic<uint64_t> epoch_{0};
  Map map_;                                                             // guarded by mu_
  std::unordered_map<std::string, std::vector<TokenHash>> by_account_;  // guarded by mu_
};

}  // namespace medvault::auth::internal

// Ledger entries, format version 2: the compact canonical binary encoding
// (docs/ledger.md, "Compact encoding (format version 2)").
//
// Why: version 1 (canonical JSON) spells every key and every known word in
// full, about 330-570 bytes for one audited read. Version 2 writes the fields
// in a fixed order without keys, integers as LEB128, strings of lower-case hex
// as their bytes, and the words medvault writes all the time (effects,
// actions, reason codes, purposes, route names, ...) as an index into a
// frozen table. The leaf hash is still SHA-256(0x00 || stored bytes), so
// version 1 entries already in a log keep their hashes and stay verifiable.
//
// Canonical: every choice (varint length, string form) is fixed by the
// entry's content, and Decode re-encodes and demands the very same bytes, so
// one entry has exactly one encoding.
#include <string>
#include <string_view>
#include <unordered_map>

#include "ledger/internal.h"
#include "ledger/ledger.h"

namespace medvault::ledger::internal {
namespace {

// The string table of version 2. FROZEN: an edit changes the meaning of
// stored entries. A new table is a new format version (docs/ledger.md). The
// first 32 strings have one-byte codes; they are the words of a read audit.
constexpr std::string_view kDictionaryV2[] = {
    // 0-31: one-byte codes.
    "permit",
    "deny",
    "done",
    "decision",
    "anonymous",
    "treatment",
    "read",
    "list",
    "route",
    "basis",
    "/api/v1/patients/{id}/segments/{path}",
    "/api/v1/patients/{id}/segments",
    "/api/v1/patients/{id}/versions/{path}",
    "/api/v1/patients/{id}/attachments/{path}",
    "/api/v1/patients/{id}",
    "/api/v1/patients",
    "treating-relationship",
    "role-permission",
    "consent-granted",
    "patient-self",
    "proxy-within-scope",
    "delegated-relationship",
    "break-glass",
    "default-deny",
    "no-relationship",
    "notify-patient",
    "flag-for-review",
    "mask-fields",
    "emergency",
    "patient-request",
    "write",
    "export",
    // 32-: two-byte codes. Actors and effects' neighbours.
    "system",
    "cli",
    "audit",
    // Purposes.
    "family-care",
    "payment",
    "operations",
    "research",
    // Decision reason codes (policy/vocabulary.cc).
    "unauthenticated",
    "no-health-data-role",
    "mfa-required",
    "proxy-out-of-scope",
    "never-break-glass",
    "break-glass-reason-missing",
    "consent-denied",
    "consent-expired",
    "no-role-permission",
    "insufficient-clearance",
    "outside-time-window",
    "purpose-not-allowed",
    "zone-not-allowed",
    "delegation-not-allowed",
    "relationship-ended",
    "other-institution",
    "ledger-damaged",
    // Policy action names (resource kinds of decisions).
    "erase-patient",
    "create-patient",
    "search-patients",
    "read-demographics",
    "manage-consent",
    "manage-relationship",
    "delegate",
    "read-access-history",
    "read-audit",
    "manage-accounts",
    "read-metrics",
    // Ledger actions (ledger.h, kKnownActions and segment.read).
    "segment.read",
    "segment.write",
    "consent.grant",
    "consent.deny",
    "consent.revoke",
    "relationship.start",
    "relationship.end",
    "delegation.grant",
    "delegation.revoke",
    "proxy.grant",
    "proxy.revoke",
    "settings.change",
    "break-glass.grant",
    "sharing.forget",
    "institution.create",
    "department.create",
    "account.create",
    "account.roles",
    "account.disable",
    "account.enable",
    "account.reset-password",
    "account.change-password",
    "account.reset-totp",
    "account.recovery-request",
    "account.recovery-cancel",
    "account.recovery-complete",
    "account.recovery-read",
    "account.read",
    "account.revoke-sessions",
    "auth.login",
    "auth.logout",
    "key.patient-root-created",
    "key.patient-root-destroyed",
    "scrub.finding",
    "ledger.epoch",
    "ledger.damage-acknowledged",
    // Resource kinds of the other producers.
    "segment",
    "consent",
    "relationship",
    "delegation",
    "proxy",
    "settings",
    "account",
    "institution",
    "department",
    "patient",
    "key",
    "object",
    "ledger",
    "session",
    // Detail keys.
    "version",
    "content_sha256",
    "object_id",
    "entry_id",
    "epoch",
    "reason_sha256",
    "subject",
    "recovery_withdrawn",
    // Route names (api), besides those above.
    "unmatched",
    "auth",
    "rejected",
    "portal",
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/me",
    "/api/v1/me/notifications",
    "/api/v1/me/password",
    "/api/v1/me/recovery",
    "/api/v1/auth/login",
    "/api/v1/auth/logout",
    "/api/v1/auth/refresh",
    "/api/v1/accounts",
    "/api/v1/accounts/{id}",
    "/api/v1/accounts/{id}/recovery",
    "/api/v1/accounts/{id}/recovery/approve",
    "/api/v1/accounts/{id}/roles",
    "/api/v1/break-glass",
    "/api/v1/institutions",
    "/api/v1/institutions/{id}/departments",
    "/api/v1/integrity/report",
    "/api/v1/ledger/checkpoint",
    "/api/v1/ledger/cosignatures",
    "/api/v1/ledger/entries",
    "/api/v1/ledger/proof/consistency",
    "/api/v1/ledger/proof/inclusion",
    "/api/v1/ledger/status",
    "/api/v1/patients/search",
    "/api/v1/patients/{id}/access-history",
    "/api/v1/patients/{id}/break-glass",
    "/api/v1/patients/{id}/consents",
    "/api/v1/patients/{id}/consents/{consent_id}",
    "/api/v1/patients/{id}/delegations",
    "/api/v1/patients/{id}/delegations/{delegation_id}",
    "/api/v1/patients/{id}/documents",
    "/api/v1/patients/{id}/export",
    "/api/v1/patients/{id}/proxies",
    "/api/v1/patients/{id}/proxies/{proxy_id}",
    "/api/v1/patients/{id}/relationships",
    "/api/v1/patients/{id}/relationships/{relationship_id}",
    "/api/v1/patients/{id}/settings",
    "/api/v1/segment-types",
    // Top-level segments (record/segment_path.cc), as path components.
    "personal-information",
    "health-status",
    "physical-signs",
    "body-measures",
    "family-history",
    "patient-narrative",
    "life-record",
    "other",
    "doctor-description",
    "third-party-description",
    "source-documents",
    "internal-medicine",
    "surgery",
    "pediatrics",
    "obstetrics-gynecology",
    "neurology",
    "oncology",
    "psychiatry",
    "infectious-disease",
    "radiology",
    "laboratory",
    "ophthalmology",
    "dermatology",
    "genetics",
    // Appended with the key tree's rotation (before any version-2 entry was
    // released): the action, its resource kind and detail key.
    "key.subtree-rotated",
    "subtree",
    "key_version",
};

// String forms: the low two bits of a string's header.
constexpr uint64_t kRaw = 0;   // header >> 2 = byte length, then the bytes
constexpr uint64_t kHex = 1;   // header >> 2 = n >= 1, then n bytes = 2n hex chars
constexpr uint64_t kWord = 2;  // header >> 2 = index into kDictionaryV2
constexpr uint64_t kPath = 3;  // header >> 2 = n >= 2 components joined by '/'

const std::unordered_map<std::string_view, uint64_t>& WordIndex() {
  static const auto* index = [] {
    auto* m = new std::unordered_map<std::string_view, uint64_t>;
    for (size_t i = 0; i < std::size(kDictionaryV2); ++i) {
      m->emplace(kDictionaryV2[i], i);
    }
    return m;
  }();
  return *index;
}

bool IsPackableHex(std::string_view s) {
  if (s.empty() || s.size() % 2 != 0) {
    return false;
  }
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

int HexValue(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

// ---------------------------------------------------------------------------
// Writer.

void PutVarint(Bytes& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

// The canonical choice, in this order: a word of the table; lower-case hex
// of even, non-zero length; (where allowed) a path of '/'-separated
// components; raw UTF-8.
void PutString(Bytes& out, std::string_view s, bool allow_path) {
  const auto& words = WordIndex();
  if (auto it = words.find(s); it != words.end()) {
    PutVarint(out, it->second << 2 | kWord);
    return;
  }
  if (IsPackableHex(s)) {
    PutVarint(out, (s.size() / 2) << 2 | kHex);
    for (size_t i = 0; i < s.size(); i += 2) {
      out.push_back(static_cast<uint8_t>(HexValue(s[i]) << 4 | HexValue(s[i + 1])));
    }
    return;
  }
  if (allow_path && s.find('/') != std::string_view::npos) {
    size_t parts = 1;
    for (char c : s) {
      parts += c == '/' ? 1 : 0;
    }
    PutVarint(out, parts << 2 | kPath);
    size_t start = 0;
    for (;;) {
      const size_t slash = s.find('/', start);
      PutString(out, s.substr(start, slash - start), /*allow_path=*/false);
      if (slash == std::string_view::npos) {
        break;
      }
      start = slash + 1;
    }
    return;
  }
  PutVarint(out, s.size() << 2 | kRaw);
  out.insert(out.end(), s.begin(), s.end());
}

void PutList(Bytes& out, const std::vector<std::string>& items) {
  PutVarint(out, items.size());
  for (const std::string& s : items) {
    PutString(out, s, true);
  }
}

// ---------------------------------------------------------------------------
// Reader. Every read is bounds-checked; lengths and counts are checked
// against the limits before anything is allocated. The messages name the
// field and never echo content.

class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}

  bool AtEnd() const { return pos_ == data_.size(); }

  // LEB128, at most 9 bytes (so below 2^63), in its shortest form.
  Status Varint(std::string_view field, uint64_t* v) {
    uint64_t out = 0;
    for (int shift = 0; shift <= 56; shift += 7) {
      if (pos_ >= data_.size()) {
        return Status::InvalidArgument("entry is truncated in " + std::string(field));
      }
      const uint8_t b = data_[pos_++];
      out |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        if (b == 0 && shift > 0) {
          return Status::InvalidArgument("entry " + std::string(field) +
                                         " has a non-minimal integer");
        }
        *v = out;
        return Status::Ok();
      }
    }
    return Status::InvalidArgument("entry " + std::string(field) + " integer is out of range");
  }

  Status String(std::string_view field, bool allow_path, std::string* out) {
    uint64_t header = 0;
    MV_RETURN_IF_ERROR(Varint(field, &header));
    const uint64_t n = header >> 2;
    switch (header & 3) {
      case kRaw:
        if (n > kMaxEntryStringBytes) {
          return TooLong(field);
        }
        MV_RETURN_IF_ERROR(Need(field, n));
        out->append(reinterpret_cast<const char*>(data_.data() + pos_), n);
        pos_ += n;
        break;
      case kHex: {
        if (n == 0) {
          return Status::InvalidArgument("entry " + std::string(field) + " has an empty hex form");
        }
        if (n > kMaxEntryStringBytes / 2) {
          return TooLong(field);
        }
        MV_RETURN_IF_ERROR(Need(field, n));
        static constexpr char kDigits[] = "0123456789abcdef";
        for (uint64_t i = 0; i < n; ++i) {
          const uint8_t b = data_[pos_++];
          out->push_back(kDigits[b >> 4]);
          out->push_back(kDigits[b & 15]);
        }
        break;
      }
      case kWord:
        if (n >= std::size(kDictionaryV2)) {
          return Status::InvalidArgument("entry " + std::string(field) +
                                         " names an unknown table word");
        }
        out->append(kDictionaryV2[n]);
        break;
      case kPath:
        if (!allow_path) {
          return Status::InvalidArgument("entry " + std::string(field) + " nests a path in a path");
        }
        if (n < 2 || n > kMaxEntryStringBytes + 1) {
          return Status::InvalidArgument("entry " + std::string(field) +
                                         " has a bad path component count");
        }
        for (uint64_t i = 0; i < n; ++i) {
          if (i > 0) {
            out->push_back('/');
          }
          MV_RETURN_IF_ERROR(String(field, /*allow_path=*/false, out));
          if (out->size() > kMaxEntryStringBytes) {
            return TooLong(field);
          }
        }
        break;
    }
    return Status::Ok();
  }

  Status List(std::string_view field, std::vector<std::string>* out) {
    uint64_t count = 0;
    MV_RETURN_IF_ERROR(Varint(field, &count));
    if (count > kMaxEntryListItems) {
      return Status::InvalidArgument("entry field " + std::string(field) + " has too many items");
    }
    for (uint64_t i = 0; i < count; ++i) {
      std::string item;
      MV_RETURN_IF_ERROR(String(field, true, &item));
      out->push_back(std::move(item));
    }
    return Status::Ok();
  }

 private:
  Status Need(std::string_view field, uint64_t n) const {
    if (data_.size() - pos_ < n) {
      return Status::InvalidArgument("entry is truncated in " + std::string(field));
    }
    return Status::Ok();
  }
  static Status TooLong(std::string_view field) {
    return Status::InvalidArgument("entry " + std::string(field) + " is longer than " +
                                   std::to_string(kMaxEntryStringBytes) + " bytes");
  }

  ByteView data_;
  size_t pos_ = 0;
};

}  // namespace

std::span<const std::string_view> CompactDictionary() { return kDictionaryV2; }

Bytes EncodeCompact(const Entry& e) {
  Bytes out;
  out.reserve(96);
  out.push_back(static_cast<uint8_t>(kEntryVersion));
  PutVarint(out, static_cast<uint64_t>(e.time_ms));
  PutString(out, e.request_id, true);
  PutString(out, e.actor, true);
  PutString(out, e.action, true);
  PutString(out, e.effect, true);
  PutList(out, e.reasons);
  PutList(out, e.obligations);
  PutString(out, e.purpose, true);
  PutString(out, e.resource.kind, true);
  PutString(out, e.resource.path, true);
  PutString(out, e.patient_ref, true);
  PutVarint(out, e.details.size());
  for (const auto& [key, value] : e.details) {  // std::map: byte order of keys
    PutString(out, key, true);
    PutString(out, value, true);
  }
  return out;
}

Result<Entry> DecodeCompact(ByteView bytes) {
  if (bytes.empty() || bytes[0] != kEntryVersion) {
    return Status::InvalidArgument("entry is not of format version 2");
  }
  Reader r(bytes.subspan(1));
  Entry e;
  uint64_t time = 0;
  MV_RETURN_IF_ERROR(r.Varint("time_ms", &time));
  e.time_ms = static_cast<int64_t>(time);  // Varint refuses >= 2^63
  MV_RETURN_IF_ERROR(r.String("request_id", true, &e.request_id));
  MV_RETURN_IF_ERROR(r.String("actor", true, &e.actor));
  MV_RETURN_IF_ERROR(r.String("action", true, &e.action));
  MV_RETURN_IF_ERROR(r.String("effect", true, &e.effect));
  MV_RETURN_IF_ERROR(r.List("reasons", &e.reasons));
  MV_RETURN_IF_ERROR(r.List("obligations", &e.obligations));
  MV_RETURN_IF_ERROR(r.String("purpose", true, &e.purpose));
  MV_RETURN_IF_ERROR(r.String("resource kind", true, &e.resource.kind));
  MV_RETURN_IF_ERROR(r.String("resource path", true, &e.resource.path));
  MV_RETURN_IF_ERROR(r.String("patient_ref", true, &e.patient_ref));
  uint64_t details = 0;
  MV_RETURN_IF_ERROR(r.Varint("details", &details));
  if (details > kMaxEntryListItems) {
    return Status::InvalidArgument("entry field details has too many items");
  }
  for (uint64_t i = 0; i < details; ++i) {
    std::string key;
    std::string value;
    MV_RETURN_IF_ERROR(r.String("details key", true, &key));
    MV_RETURN_IF_ERROR(r.String("details value", true, &value));
    if (!e.details.emplace(std::move(key), std::move(value)).second) {
      return Status::InvalidArgument("entry field details repeats a key");
    }
  }
  if (!r.AtEnd()) {
    return Status::InvalidArgument("entry has trailing bytes");
  }
  MV_RETURN_IF_ERROR(ValidateFields(e));
  if (EncodeCompact(e) != Bytes(bytes.begin(), bytes.end())) {
    return Status::InvalidArgument("entry is not in canonical form");
  }
  return e;
}

}  // namespace medvault::ledger::internal

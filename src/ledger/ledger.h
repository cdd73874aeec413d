// medvault tamper-evident ledger: the public interface of src/ledger.
//
// Every access decision and every change of state is appended as an Entry to
// one append-only log. The entries are the leaves of an RFC 9162 Merkle tree;
// the log signs checkpoints of the tree (C2SP tlog-checkpoint, signed-note,
// Ed25519) and independent witnesses cosign them (C2SP tlog-cosignature,
// cosignature/v1) after checking that each new checkpoint is consistent with
// the last one they saw. An edit, deletion, reordering or truncation of stored
// entries then shows up as a root that does not match a signed checkpoint, a
// consistency proof that does not verify, or a witness that refuses to cosign.
//
// Entries never hold a patient identity in plaintext: a patient is named by a
// keyed pseudonym (PatientRef), so the log is not an index of who is a
// patient where. The formats are specified in docs/ledger.md.
//
// Thread-safety: free functions and const methods of value types are safe to
// call concurrently. MerkleTree is not synchronised. SqliteLedger and Witness
// are safe to share between threads.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/secret.h"
#include "common/status.h"
#include "store/store.h"

namespace medvault::ledger {

// ===========================================================================
// Merkle tree hashing (RFC 9162 §2.1)

inline constexpr size_t kHashSize = 32;
using Hash = std::array<uint8_t, kHashSize>;

// SHA-256(0x00 || entry_bytes).
Hash LeafHash(ByteView entry_bytes);
// SHA-256(0x01 || left || right).
Hash NodeHash(const Hash& left, const Hash& right);
// SHA-256("") : the root of the empty tree.
Hash EmptyRoot();
// InvalidArgument unless `bytes` is exactly kHashSize long.
Result<Hash> HashFromBytes(ByteView bytes);
inline ByteView HashView(const Hash& h) { return {h.data(), h.size()}; }

// An append-only Merkle tree over leaf hashes that keeps every complete
// subtree hash in memory (one vector per level, about 64 bytes per leaf), so
// that roots at any earlier size and proofs cost O(log n) lookups plus at
// most O(log n) hashes for the one incomplete subtree on the right edge.
// Not synchronised: guard it externally when shared.
class MerkleTree {
 public:
  void Append(const Hash& leaf_hash);
  void Reserve(uint64_t leaves);
  uint64_t Size() const { return levels_.empty() ? 0 : levels_[0].size(); }

  // The root of the whole tree (EmptyRoot() when empty).
  Hash Root() const;
  // The root of the first `size` leaves. InvalidArgument when size > Size().
  Result<Hash> Root(uint64_t size) const;
  Result<Hash> LeafHashAt(uint64_t index) const;

  // RFC 9162 §2.1.3.1 PATH(index, D[0:size]), leaf sibling first.
  // InvalidArgument unless index < size <= Size().
  Result<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size) const;
  // RFC 9162 §2.1.4.1 PROOF(old_size, D[0:new_size]). Empty when
  // old_size == 0 or old_size == new_size. InvalidArgument unless
  // old_size <= new_size <= Size().
  Result<std::vector<Hash>> ConsistencyProof(uint64_t old_size, uint64_t new_size) const;

 private:
  // Hash of the n leaves from `start`; REQUIRES start aligned as in the RFC
  // recursion (start is a multiple of the largest power of two <= n).
  Hash Subtree(uint64_t start, uint64_t n) const;
  void Path(uint64_t m, uint64_t start, uint64_t n, std::vector<Hash>& out) const;
  void SubProof(uint64_t m, uint64_t start, uint64_t n, bool whole, std::vector<Hash>& out) const;

  // levels_[k][i] is the hash of leaves [i * 2^k, (i + 1) * 2^k).
  std::vector<std::vector<Hash>> levels_;
};

// RFC 9162 §2.1.3.2. OK when `proof` proves leaf `index` in the tree of
// `size` leaves with root `root`; DataLoss with the reason otherwise;
// InvalidArgument when index >= size.
Status VerifyInclusion(const Hash& leaf_hash, uint64_t index, uint64_t size,
                       std::span<const Hash> proof, const Hash& root);
// RFC 9162 §2.1.4.2, extended to the trivial cases: old_size == new_size
// needs equal roots and an empty proof; old_size == 0 needs old_root ==
// EmptyRoot() and an empty proof. InvalidArgument when old_size > new_size.
Status VerifyConsistency(uint64_t old_size, uint64_t new_size, const Hash& old_root,
                         const Hash& new_root, std::span<const Hash> proof);

// Text form of a proof for the wire: one standard-base64 hash per line, each
// line ending in "\n" (the empty proof is the empty string).
std::string FormatProof(std::span<const Hash> proof);
// InvalidArgument on anything else (at most 64 hashes).
Result<std::vector<Hash>> ParseProof(std::string_view text);

// ===========================================================================
// Entries

// The format medvault writes: version 2, compact binary (docs/ledger.md).
// Version 1, canonical JSON, is still read: entries already in a log keep
// their bytes and leaf hashes.
inline constexpr int kEntryVersion = 2;
inline constexpr int kEntryVersionJson = 1;
// Limits checked by ValidateEntry.
inline constexpr size_t kMaxEntryBytes = 64 * 1024;   // encoded
inline constexpr size_t kMaxEntryStringBytes = 2048;  // any one string
inline constexpr size_t kMaxEntryListItems = 32;      // reasons, obligations, details

// Effects.
inline constexpr std::string_view kEffectPermit = "permit";
inline constexpr std::string_view kEffectDeny = "deny";
inline constexpr std::string_view kEffectDone = "done";

// Actions used by medvault (the format allows others: [a-z0-9._-]{1,64}).
// Every action a medvault producer writes is declared here and listed in
// kKnownActions: the privacy test (tests/ledger_privacy_test.cc) drives every
// one of them through the real services and fails on an action it did not
// see, or sees one that is not listed.
inline constexpr std::string_view kActionSegmentRead = "segment.read";  // docs example only
inline constexpr std::string_view kActionSegmentWrite = "segment.write";
inline constexpr std::string_view kActionConsentGrant = "consent.grant";
inline constexpr std::string_view kActionConsentDeny = "consent.deny";
inline constexpr std::string_view kActionConsentRevoke = "consent.revoke";
inline constexpr std::string_view kActionRelationshipStart = "relationship.start";
inline constexpr std::string_view kActionRelationshipEnd = "relationship.end";
inline constexpr std::string_view kActionDelegationGrant = "delegation.grant";
inline constexpr std::string_view kActionDelegationRevoke = "delegation.revoke";
inline constexpr std::string_view kActionProxyGrant = "proxy.grant";
inline constexpr std::string_view kActionProxyRevoke = "proxy.revoke";
inline constexpr std::string_view kActionSettingsChange = "settings.change";
inline constexpr std::string_view kActionBreakGlassGrant = "break-glass.grant";
inline constexpr std::string_view kActionSharingForget = "sharing.forget";
inline constexpr std::string_view kActionBreakGlass = "break-glass";
inline constexpr std::string_view kActionInstitutionCreate = "institution.create";
inline constexpr std::string_view kActionDepartmentCreate = "department.create";
inline constexpr std::string_view kActionAccountCreate = "account.create";
inline constexpr std::string_view kActionAccountRoles = "account.roles";
inline constexpr std::string_view kActionAccountDisable = "account.disable";
inline constexpr std::string_view kActionAccountEnable = "account.enable";
inline constexpr std::string_view kActionAccountResetPassword = "account.reset-password";
inline constexpr std::string_view kActionAccountChangePassword = "account.change-password";
inline constexpr std::string_view kActionAccountResetTotp = "account.reset-totp";
// Account recovery (two people) and the administrative refusals that name
// an account (docs/api.md, the authorisation table).
inline constexpr std::string_view kActionAccountRecoveryRequest = "account.recovery-request";
inline constexpr std::string_view kActionAccountRecoveryCancel = "account.recovery-cancel";
inline constexpr std::string_view kActionAccountRecoveryComplete = "account.recovery-complete";
inline constexpr std::string_view kActionAccountRecoveryRead = "account.recovery-read";
inline constexpr std::string_view kActionAccountRead = "account.read";
inline constexpr std::string_view kActionAccountRevokeSessions = "account.revoke-sessions";
inline constexpr std::string_view kActionAuthLogin = "auth.login";
inline constexpr std::string_view kActionAuthLogout = "auth.logout";
inline constexpr std::string_view kActionPatientRootCreated = "key.patient-root-created";
inline constexpr std::string_view kActionPatientRootDestroyed = "key.patient-root-destroyed";
// A subtree's node key rotated (record::RecordService::RotateSubtreeKey):
// resource = the node's path, details.version = its new key version.
inline constexpr std::string_view kActionSubtreeRotated = "key.subtree-rotated";
inline constexpr std::string_view kActionScrubFinding = "scrub.finding";
inline constexpr std::string_view kActionDecision = "decision";
inline constexpr std::string_view kActionLedgerEpoch = "ledger.epoch";
inline constexpr std::string_view kActionLedgerDamageAcknowledged = "ledger.damage-acknowledged";

// Every action medvault writes (kActionSegmentRead is not one: reads are
// decisions).
inline constexpr std::array<std::string_view, 38> kKnownActions = {
    kActionLedgerEpoch,
    kActionLedgerDamageAcknowledged,
    kActionSegmentWrite,
    kActionConsentGrant,
    kActionConsentDeny,
    kActionConsentRevoke,
    kActionRelationshipStart,
    kActionRelationshipEnd,
    kActionDelegationGrant,
    kActionDelegationRevoke,
    kActionProxyGrant,
    kActionProxyRevoke,
    kActionSettingsChange,
    kActionBreakGlassGrant,
    kActionSharingForget,
    kActionBreakGlass,
    kActionInstitutionCreate,
    kActionDepartmentCreate,
    kActionAccountCreate,
    kActionAccountRoles,
    kActionAccountDisable,
    kActionAccountEnable,
    kActionAccountResetPassword,
    kActionAccountChangePassword,
    kActionAccountResetTotp,
    kActionAccountRecoveryRequest,
    kActionAccountRecoveryCancel,
    kActionAccountRecoveryComplete,
    kActionAccountRecoveryRead,
    kActionAccountRead,
    kActionAccountRevokeSessions,
    kActionAuthLogin,
    kActionAuthLogout,
    kActionPatientRootCreated,
    kActionPatientRootDestroyed,
    kActionSubtreeRotated,
    kActionScrubFinding,
    kActionDecision,
};

// What was touched: a kind ("segment", "consent", "account", ...) and a path
// inside it (a segment path such as "internal-medicine/cardiology"). Never an
// identity: the patient goes into Entry::patient_ref.
struct Resource {
  std::string kind;
  std::string path;
  bool operator==(const Resource&) const = default;
};

// One ledger entry (docs/ledger.md; the same fields in both formats). Strings are UTF-8
// without control characters. Nothing here may be health data, a secret, or
// a patient identity in plaintext.
struct Entry {
  int64_t time_ms = 0;                         // Unix milliseconds, >= 0
  std::string request_id;                      // may be empty
  std::string actor;                           // account id, "system" or "cli"; non-empty
  std::string action;                          // kAction*; [a-z0-9._-]{1,64}
  std::string effect;                          // kEffectPermit, kEffectDeny or kEffectDone
  std::vector<std::string> reasons;            // codes, the deciding one first
  std::vector<std::string> obligations;        // e.g. "notify-patient"
  std::string purpose;                         // may be empty
  Resource resource;                           // may be empty
  std::string patient_ref;                     // PatientRef() or empty
  std::map<std::string, std::string> details;  // small facts: version, content hash hex, ...
  bool operator==(const Entry&) const = default;
};

// InvalidArgument naming the field that breaks the rules above or a limit.
Status ValidateEntry(const Entry& entry);
// The canonical encoding medvault writes: format version 2, compact binary
// (a version byte 0x02, fields in a fixed order, LEB128 integers, strings as
// table words, packed hex, paths or raw UTF-8; see docs/ledger.md).
// Deterministic. REQUIRES: ValidateEntry(entry).ok(); otherwise the output
// is unspecified and Decode refuses it.
Bytes Encode(const Entry& entry);
// Format version 1, canonical JSON (sorted keys, no whitespace, strings and
// integers only). Not written by medvault any more; for tests and tools that
// need entries as older logs hold them. REQUIRES as Encode.
Bytes EncodeJsonV1(const Entry& entry);
// The format of stored bytes, from their first byte: kEntryVersion (0x02)
// or kEntryVersionJson ('{'). InvalidArgument otherwise: "unsupported entry
// version N" for a first byte N in 0x01..0x1f (reserved for binary
// versions), "entry is not in a known format" for others, and for empty
// bytes.
Result<int> EntryFormatVersion(ByteView bytes);
// The inverse of both encoders, by EntryFormatVersion. InvalidArgument for
// anything the encoder of that format would not have produced: version 1:
// other key order, whitespace, escapes, missing or extra fields, wrong types,
// invalid UTF-8; version 2: truncation, trailing bytes, non-minimal
// integers, lengths beyond the input or the limits, unknown table words, a
// non-canonical string form; both: an unknown version, a field ValidateEntry
// refuses. For accepted bytes b of version 2, Encode(*Decode(b)) == b; of
// version 1, EncodeJsonV1(*Decode(b)) == b.
Result<Entry> Decode(ByteView bytes);

// Platform key purpose (KeyProvider::DerivePlatformKey) for PatientRef.
inline constexpr std::string_view kPatientRefKeyPurpose = "ledger-patient-ref";
// Keyed pseudonym of a patient: lower-case hex of the first 16 bytes of
// HMAC-SHA-256(key, patient_id). REQUIRES: key.size() >= 32 (aborts
// otherwise: an unkeyed reference would let anyone test patient ids).
std::string PatientRef(const SecretBytes& key, std::string_view patient_id);
// True for 32 lower-case hex characters.
bool IsValidPatientRef(std::string_view ref);

// The forms of a patient id CheckNoPatientId looks for: the id as given, and
// for a 32-hex id also its upper-case hex, UUID form (8-4-4-4-12, any case)
// and the 16 bytes in standard and URL-safe base64 (unpadded prefix, so the
// padded form matches too).
std::vector<std::string> PatientIdForms(std::string_view patient_id);
// OK when no string of `entry` (request_id, actor, action, purpose, reasons,
// obligations, resource, details keys and values, patient_ref) holds
// `patient_id` in one of the forms above. InvalidArgument naming the field
// otherwise (the message never holds the id). InvalidArgument for an empty
// patient id.
Status CheckNoPatientId(const Entry& entry, std::string_view patient_id);
// Replaces every clear occurrence of `patient_id` (the forms above) in the
// entry's strings with "{patient}". For entries that must be recorded
// whatever the caller sent (a decision on a requested path).
void RedactPatientId(Entry& entry, std::string_view patient_id);
// The one way medvault producers name the patient of an entry: sets
// entry.patient_ref = PatientRef(key, patient_id) and then requires
// CheckNoPatientId (InvalidArgument otherwise: the caller refuses the action
// rather than write the id in clear). REQUIRES as PatientRef.
Status BindPatient(Entry& entry, const SecretBytes& key, std::string_view patient_id);

// ===========================================================================
// Keys, signed notes, checkpoints and cosignatures (C2SP)

inline constexpr size_t kPublicKeySize = 32;
inline constexpr size_t kSeedSize = 32;
inline constexpr size_t kSignatureSize = 64;
using PublicKey = std::array<uint8_t, kPublicKeySize>;

// Signature type bytes of C2SP signed-note.
enum class KeyType : uint8_t {
  kEd25519 = 0x01,        // signed-note Ed25519 (checkpoint signatures)
  kCosignatureV1 = 0x04,  // tlog-cosignature cosignature/v1 (witnesses)
};

// Non-empty UTF-8 without Unicode spaces, control characters or '+', at most
// 255 bytes.
bool IsValidKeyName(std::string_view name);
// SHA-256(name || "\n" || type || public_key)[:4], big-endian.
uint32_t KeyId(std::string_view name, KeyType type, const PublicKey& public_key);

// A public key with its name and signature type; text form (vkey)
// "<name>+<8 hex key id>+<base64(type || public key)>".
class VerifierKey {
 public:
  static Result<VerifierKey> Create(std::string_view name, KeyType type,
                                    const PublicKey& public_key);
  // InvalidArgument when malformed, of another type, or when the key id
  // does not match the name and key.
  static Result<VerifierKey> Parse(std::string_view vkey);

  const std::string& name() const { return name_; }
  KeyType type() const { return type_; }
  const PublicKey& public_key() const { return public_key_; }
  uint32_t key_id() const { return key_id_; }
  std::string ToString() const;
  bool operator==(const VerifierKey&) const = default;

 private:
  VerifierKey() = default;
  std::string name_;
  KeyType type_ = KeyType::kEd25519;
  PublicKey public_key_{};
  uint32_t key_id_ = 0;
};

// A named Ed25519 signing key. The same key type serves the log (checkpoint
// signatures, key id type 0x01) and a witness (cosignatures, type 0x04).
// Move-only; the secret lives in SecretBytes and is never logged.
class Signer {
 public:
  // REQUIRES crypto::InitCrypto(). InvalidArgument for a bad name or seed.
  static Result<Signer> FromSeed(std::string_view name, ByteView seed);
  static Result<Signer> Generate(std::string_view name);

  const std::string& name() const { return name_; }
  const PublicKey& public_key() const { return public_key_; }
  // The verifier for checkpoints this signer signs (type 0x01).
  VerifierKey Verifier() const;
  // The verifier for cosignatures this signer makes as a witness (type 0x04).
  VerifierKey CosignatureVerifier() const;
  // Raw Ed25519 signature (64 bytes) over `message`.
  Bytes Sign(ByteView message) const;

 private:
  friend Result<Signer> LoadOrCreateSigner(const std::filesystem::path& path,
                                           std::string_view name);
  Signer() = default;
  std::string name_;
  SecretBytes secret_key_;  // libsodium's 64-byte secret key (seed || public key)
  PublicKey public_key_{};
};

// Loads the signing key at `path`, or creates it (32 random seed bytes) when
// the file does not exist. The file holds one line in the signed-note signer
// key form "PRIVATE+KEY+<name>+<key id>+<base64(0x01 || seed)>", mode 0600.
// FailedPrecondition when the file is readable or writable by group or
// others, not a regular file, or holds the key of another name; DataLoss
// when it is malformed.
Result<Signer> LoadOrCreateSigner(const std::filesystem::path& path, std::string_view name);

// One signature line of a signed note.
struct NoteSignature {
  std::string name;
  uint32_t key_id = 0;
  Bytes signature;  // the bytes after the key id
  bool operator==(const NoteSignature&) const = default;
};

struct SignedNote {
  std::string text;  // ends in "\n"; the blank separator line is not part of it
  std::vector<NoteSignature> signatures;
};

// "— <name> <base64(key_id || signature)>\n" (em dash U+2014).
std::string FormatSignatureLine(std::string_view name, uint32_t key_id, ByteView signature);
// One signature line, with or without its final "\n". InvalidArgument when
// malformed.
Result<NoteSignature> ParseSignatureLine(std::string_view line);
// C2SP signed-note: text, blank line, 1..100 signature lines; valid UTF-8, no
// control characters but "\n", at most 1 MiB. InvalidArgument when malformed.
Result<SignedNote> ParseSignedNote(std::string_view note);

// Signs `text` (non-empty, ending in "\n") as a note: text + "\n" + line.
Result<std::string> SignNote(const Signer& signer, std::string_view text);
// Returns the text when a signature line with the key's name and id verifies.
// FailedPrecondition when no line is from the key; DataLoss when one is and
// does not verify. Lines from other keys are ignored (as the spec requires).
Result<std::string> VerifyNote(std::string_view note, const VerifierKey& key);

// A checkpoint body: "<origin>\n<size>\n<base64 root>\n" plus optional
// extension lines (medvault writes none).
struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
  std::vector<std::string> extensions;
  bool operator==(const Checkpoint&) const = default;
};

// REQUIRES the origin and extension lines to be non-empty and free of "\n".
std::string FormatCheckpointBody(const Checkpoint& checkpoint);
// InvalidArgument unless `text` is a well-formed checkpoint body.
Result<Checkpoint> ParseCheckpointBody(std::string_view text);
// The signed note of `checkpoint` (body + blank line + the signer's line).
Result<std::string> SignCheckpoint(const Signer& signer, const Checkpoint& checkpoint);
// Parses the note, verifies the log's signature (see VerifyNote for codes:
// DataLoss "checkpoint signature invalid"), and parses the body.
Result<Checkpoint> VerifyCheckpoint(std::string_view note, const VerifierKey& log_key);

// The message a cosignature/v1 signs:
// "cosignature/v1\ntime <timestamp>\n" || checkpoint body.
std::string CosignatureMessage(std::string_view checkpoint_body, uint64_t timestamp);
// The witness's signature line (ending in "\n") over `checkpoint_body` at
// `timestamp` (Unix seconds, < 2^63): "— <name> base64(key_id(0x04) ||
// u64be(timestamp) || signature)". InvalidArgument when the body is not a
// checkpoint body.
Result<std::string> Cosign(const Signer& witness, std::string_view checkpoint_body,
                           uint64_t timestamp);
// Verifies a cosignature line against the checkpoint body and returns its
// timestamp. InvalidArgument when `witness` is not a cosignature/v1 key or
// the line is malformed; FailedPrecondition when the line is from another
// key; DataLoss when the signature does not verify.
Result<uint64_t> VerifyCosignature(std::string_view checkpoint_body, std::string_view line,
                                   const VerifierKey& witness);

// ===========================================================================
// Witness (the library behind `medvault witness`)

struct WitnessOptions {
  // The checkpoint origin this witness accepts; empty means the log key's name.
  std::string origin;
  // Unix seconds for cosignature timestamps; empty means the system clock.
  std::function<int64_t()> now_unix_seconds;
};

// An HTTP answer of the witness's add-checkpoint endpoint.
struct WitnessResponse {
  int http_status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Holds the log's verifier key, its own signer, and the last checkpoint it
// verified (size, root, time), persisted in `state_dir/witness-state`
// (written atomically: temporary file, fsync, rename, fsync of the
// directory). A lock file keeps two processes off one state directory.
class Witness {
 public:
  // FailedPrecondition when the state directory is in use or the state is of
  // another origin; DataLoss when the state file is malformed (never reset
  // silently: that would let a fork through).
  static Result<std::unique_ptr<Witness>> Open(const std::filesystem::path& state_dir,
                                               VerifierKey log_key, Signer signer,
                                               WitnessOptions options = {});
  ~Witness();
  Witness(const Witness&) = delete;
  Witness& operator=(const Witness&) = delete;

  // Verifies the log's signature on `signed_checkpoint_note`, refuses a
  // smaller size than last seen, verifies `consistency_proof` from the last
  // state (same size: same root, else a fork), persists the new state and
  // returns the cosignature line (ending in "\n"). Errors say exactly why:
  //   InvalidArgument    "checkpoint is malformed: ..."
  //   FailedPrecondition "checkpoint is for origin X, this witness follows Y"
  //   FailedPrecondition "checkpoint is not signed by the log key ..."
  //   DataLoss           "checkpoint signature invalid"
  //   FailedPrecondition "size went backwards 42 -> 40"
  //   DataLoss           "fork: size 42 root differs from the one witnessed at <time>"
  //   DataLoss           "consistency proof from 40 to 42 does not verify: ..."
  Result<std::string> Observe(std::string_view signed_checkpoint_note,
                              std::span<const Hash> consistency_proof);

  // C2SP tlog-witness `add-checkpoint`: parses the request body ("old N\n",
  // at most 63 base64 proof lines, an empty line, the signed checkpoint), and
  // answers as the spec says: 200 with the cosignature line; 400 malformed
  // or old size beyond the checkpoint; 403 not signed by the log key; 404 an
  // origin this witness does not follow; 409 when the old size is not the
  // witnessed size (body "<witnessed size>\n", Content-Type
  // text/x.tlog.size) or on a fork or rollback (body: the reason); 422 when
  // the consistency proof does not verify. The old-size check and the state
  // update happen under one lock (no rollback race).
  WitnessResponse AddCheckpoint(std::string_view request_body);

  // The last witnessed size and root (size 0 and no root before the first).
  uint64_t size() const;
  std::optional<Hash> root() const;
  const VerifierKey& log_key() const;
  // The key log clients configure to check this witness's cosignatures.
  VerifierKey CosignatureVerifier() const;

 private:
  struct Impl;
  explicit Witness(std::unique_ptr<Impl> impl);
  // REQUIRES impl_->mu held. With old_size, the add-checkpoint check; sets
  // *http_status when given.
  Result<std::string> ObserveLocked(std::string_view note, std::span<const Hash> proof,
                                    const uint64_t* old_size, int* http_status);
  std::unique_ptr<Impl> impl_;
};

// ===========================================================================
// The ledger on SQLite

// One stored entry.
struct LedgerRecord {
  uint64_t seq = 0;  // 0-based leaf index
  Bytes bytes;       // the canonical encoding, as stored and hashed (either format)
  Entry entry;
  Hash leaf_hash{};
};

struct CheckpointRecord {
  uint64_t size = 0;
  Hash root{};
  std::string note;  // the signed note
  int64_t created_at_ms = 0;
};

struct CosignatureRecord {
  uint64_t size = 0;
  std::string witness;  // the witness key name
  std::string line;     // the cosignature line, ending in "\n"
  int64_t received_at_ms = 0;
};

// What VerifyAll found. Integrity failures are reported here (ok == false),
// not as an error status; problems are in log order, so problems[0] is the
// first failing point, e.g. "entry 17: leaf hash does not match its content"
// or "checkpoint at size 40: root does not match the stored entries".
struct VerifyReport {
  bool ok = true;
  uint64_t entries = 0;               // contiguous entries from seq 0
  Hash root{};                        // root over those entries
  uint64_t checkpoints = 0;           // stored checkpoints
  uint64_t checkpoints_verified = 0;  // root and signature good
  uint64_t cosignatures_verified = 0;
  uint64_t cosignatures_unchecked = 0;           // from a witness whose key was not given
  std::optional<uint64_t> first_bad_entry;       // seq
  std::optional<uint64_t> first_bad_checkpoint;  // size
  std::optional<uint64_t> last_good_checkpoint;  // the largest size that verified
  std::vector<std::string> problems;             // at most 100, then "... more"
};

// A log epoch that follows a damaged one (docs/ledger.md, "Damage and
// epochs"). Epoch 0 is the original log and has no record; epoch k >= 1
// started because epoch k-1 failed its checks at an Open, whose rows were
// moved unchanged to the archive tables. Epoch k's first entry
// (kActionLedgerEpoch) commits to what was found.
struct EpochRecord {
  uint64_t epoch = 0;
  int64_t started_at_ms = 0;
  uint64_t archived_entries = 0;            // rows of epoch - 1 in the archive
  std::optional<uint64_t> first_bad_entry;  // of epoch - 1
  std::string damage;                       // the first problem (numbers, no data)
  int64_t acknowledged_at_ms = 0;           // 0 = nobody has accepted the damage yet
  std::string acknowledged_by;              // account id or "cli"
  std::string acknowledgement;              // the reason given
};

// The checkpoint origin of an epoch: `origin` for epoch 0, else
// "<origin>/epoch/<k>" (a witness following the old origin refuses the new
// one until its operator decides to follow it).
std::string EpochOrigin(std::string_view origin, uint64_t epoch);

struct LedgerOpenOptions {
  // What Open does when the stored log fails Sync. false: DataLoss (Open
  // refuses). true: degraded mode: the failing epoch's rows are moved to the
  // archive tables in one transaction and a new epoch starts with a
  // kActionLedgerEpoch entry that commits to the damage (sizes, first bad
  // entry, roots, hashes of what was found); the damage stays reported
  // (Epochs) until and after a privacy officer acknowledges it.
  bool new_epoch_on_damage = false;
  // The log key, to name the last good checkpoint in that entry (without it
  // no checkpoint counts as good).
  std::optional<VerifierKey> log_key;
};

// ===========================================================================
// The log interface (docs/architecture.md, "Persistence seam")

// What producers of entries need of the ledger, whatever stores it: durable
// group-committed appends, and appends inside a store's write transaction so
// that an action and its entries commit or roll back together. As a
// store::AuditSink it is what the stores are given to append their writes'
// entries to (AppendEncodedInTransaction). Services that only append hold a
// Log*. Safe to share between threads.
class Log : public store::AuditSink {
 public:
  ~Log() override = default;
  // Appends durably (returns after the commit, fsync paid once per group of
  // concurrent callers). InvalidArgument when an entry fails ValidateEntry
  // (nothing appended). Empty input is a no-op.
  virtual Status Append(std::vector<Entry> entries) = 0;
  // Append without waiting for the commit: `done` receives what Append
  // would have returned, once the entries are durable (or refused), on
  // whichever thread finished the commit, possibly before AppendAsync
  // returns. `done` must not block. For a caller whose only remaining work
  // is to release an answer after its audit entry (docs/architecture.md,
  // "Answers held for their audit"). The default calls Append.
  virtual void AppendAsync(std::vector<Entry> entries, std::function<void(const Status&)> done);
  // Inserts `entries` as the next leaves inside `txn` (a transaction a store
  // opened on this log's backend and database): they commit or roll back
  // with it. FailedPrecondition when `txn` is not open or is another
  // backend's or another database's; InvalidArgument when an entry fails
  // ValidateEntry (nothing inserted). Empty input is a no-op.
  virtual Status AppendInTransaction(store::Transaction& txn, std::span<const Entry> entries) = 0;
  // store::AuditSink: the same for entries already encoded (Encode), stored
  // as given after Decode has checked them (InvalidArgument otherwise,
  // nothing inserted).
  Status AppendEncodedInTransaction(store::Transaction& txn,
                                    std::span<const Bytes> encoded) override = 0;
};

// The ledger in tables of the shared database file (metadata.db): entries,
// checkpoints and cosignatures, with its own migration table
// "ledger_migrations". An in-memory MerkleTree mirrors the entries.
//
// Writes: Append (its own writer connection, group commit) and, from other
// stores, AppendInTransaction inside their own write transaction (a
// store::Transaction of the SQLite backend on the same file), so that an
// action and its entry commit or roll back together. Rows written by other
// connections reach the tree on the next Sync().
class SqliteLedger final : public Log {
 public:
  // Creates the file if needed (mode 0600), runs the migrations and Syncs:
  // DataLoss when the stored log fails Sync's checks, so that a server does
  // not start on a tampered log (VerifyDatabase then reports everything).
  static Result<std::unique_ptr<SqliteLedger>> Open(const std::filesystem::path& db_file,
                                                    const store::SqliteOptions& options = {},
                                                    const LedgerOpenOptions& open = {});
  ~SqliteLedger() override;
  SqliteLedger(const SqliteLedger&) = delete;
  SqliteLedger& operator=(const SqliteLedger&) = delete;

  // Log. Rows appended in another connection's transaction reach the tree
  // at the next Sync.
  Status Append(std::vector<Entry> entries) override;
  void AppendAsync(std::vector<Entry> entries, std::function<void(const Status&)> done) override;
  Status AppendInTransaction(store::Transaction& txn, std::span<const Entry> entries) override;
  Status AppendEncodedInTransaction(store::Transaction& txn,
                                    std::span<const Bytes> encoded) override;

  // Loads stored rows from seq = Size() on into the tree, in seq order, and
  // checks them: contiguous seq, leaf_hash == LeafHash(entry), no shrinking
  // of the log, and the newest checkpoint's root against the tree. DataLoss
  // naming the entry or checkpoint otherwise.
  Status Sync();

  // As of the last Sync or Append (cheap, no I/O).
  uint64_t Size() const;
  Hash Root() const;
  // Sync first when `size` > Size().
  Result<Hash> RootAt(uint64_t size);
  Result<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size);
  Result<std::vector<Hash>> ConsistencyProof(uint64_t old_size, uint64_t new_size);

  // NotFound when there is no such entry; DataLoss when it does not decode.
  Result<LedgerRecord> GetEntry(uint64_t seq);
  // A patient's own history: entries with this patient_ref and seq >
  // after_seq (from the start when nullopt), in seq order, at most `limit`.
  Result<std::vector<LedgerRecord>> EntriesForPatientRef(std::string_view patient_ref,
                                                         std::optional<uint64_t> after_seq,
                                                         size_t limit);

  // Syncs, signs the current size and root with origin `origin` and stores
  // the checkpoint. Returns the signed note. When a checkpoint of this size
  // exists already (nothing appended since), returns that one.
  Result<std::string> Checkpoint(const Signer& signer, std::string_view origin);
  // The latest checkpoint, signing a new one first when the log grew and the
  // latest is older than `min_interval_ms` (what a public endpoint serves:
  // fresh, but not a signature per request).
  Result<CheckpointRecord> FreshCheckpoint(const Signer& signer, std::string_view origin,
                                           int64_t min_interval_ms);
  // NotFound when no checkpoint has been made.
  Result<CheckpointRecord> LatestCheckpoint();
  Result<CheckpointRecord> CheckpointAt(uint64_t size);
  // Verifies `line` against the stored checkpoint of `size` and stores it
  // (replacing an older line from the same witness for that size).
  // NotFound when there is no checkpoint of that size; see VerifyCosignature.
  Status AddCosignature(uint64_t size, std::string_view line, const VerifierKey& witness);
  Result<std::vector<CosignatureRecord>> WitnessedBy(uint64_t size);
  // True when at least k of `witnesses` have a stored cosignature on the
  // checkpoint of `size` that verifies now. Fails closed (false) on errors.
  bool IsWitnessed(uint64_t size, size_t k, std::span<const VerifierKey> witnesses);

  // Re-reads everything: recomputes every leaf hash from the stored entry
  // and decodes it, checks seq contiguity, the patient_ref index column, the
  // entries against what this process had loaded, rebuilds the tree, checks
  // every checkpoint's root at its size and its signature, and every
  // cosignature whose witness key is given. Error status only for I/O.
  Result<VerifyReport> VerifyAll(const VerifierKey& log_key,
                                 std::span<const VerifierKey> witnesses = {});

  // The same checks on a database file without opening the ledger (Open
  // refuses a log that fails Sync): what `medvault ledger verify` runs. Uses
  // a read-only connection. NotFound when the database has no ledger tables.
  static Result<VerifyReport> VerifyDatabase(const std::filesystem::path& db_file,
                                             const VerifierKey& log_key,
                                             std::span<const VerifierKey> witnesses = {},
                                             const store::SqliteOptions& options = {});

  // The current epoch (0 until damage was found at an Open).
  uint64_t Epoch() const;
  // A patient's history in an archived epoch (epoch < Epoch()), as
  // EntriesForPatientRef. Rows that fail their own checks (leaf hash,
  // canonical form, index column) are left out: they are the damage, which
  // the epoch record and the verification report.
  Result<std::vector<LedgerRecord>> ArchivedEntriesForPatientRef(uint64_t epoch,
                                                                 std::string_view patient_ref,
                                                                 std::optional<uint64_t> after_seq,
                                                                 size_t limit);
  // Every epoch record, oldest first (empty when the log was never damaged).
  Result<std::vector<EpochRecord>> Epochs();
  // The same from a database file, read-only (what `medvault ledger verify`
  // prints).
  static Result<std::vector<EpochRecord>> EpochsInDatabase(
      const std::filesystem::path& db_file, const store::SqliteOptions& options = {});
  // A privacy officer accepts the damage that started `epoch`: records the
  // actor, time and reason in the epoch record and appends a
  // kActionLedgerDamageAcknowledged entry (holding the reason's SHA-256, not
  // the text) in the same transaction. InvalidArgument for a reason that is
  // not 10..500 bytes of UTF-8 without control characters; NotFound for an
  // unknown epoch; FailedPrecondition when already acknowledged.
  Status AcknowledgeDamage(uint64_t epoch, std::string_view actor, std::string_view reason,
                           std::string_view request_id = "");
  // The same checks as VerifyDatabase on the archived epochs of a database
  // file: (epoch, report) in epoch order; empty when there are none.
  static Result<std::vector<std::pair<uint64_t, VerifyReport>>> VerifyArchivedEpochs(
      const std::filesystem::path& db_file, const VerifierKey& log_key,
      std::span<const VerifierKey> witnesses = {}, const store::SqliteOptions& options = {});

 private:
  struct Impl;
  explicit SqliteLedger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ===========================================================================
// Automatic checkpoints

struct AutoCheckpointOptions {
  // Sign when entries are past the newest checkpoint and it is at least this
  // old (0 = no time trigger).
  std::chrono::milliseconds interval{10'000};
  // Sign as soon as this many entries are past the newest checkpoint (0 = no
  // count trigger).
  uint64_t every_entries = 1000;
  // How often the scheduler looks at the log (Sync: one indexed query).
  std::chrono::milliseconds poll{200};
  // Called on the scheduler's thread after each checkpoint it signed (the
  // witness push). Not called for checkpoints signed elsewhere.
  std::function<void(const CheckpointRecord&)> on_checkpoint;
  // Called on the scheduler's thread every `periodic_interval` (the app logs
  // unacknowledged ledger damage with it).
  std::function<void()> periodic;
  std::chrono::milliseconds periodic_interval{60'000};
};

// Signs checkpoints of a ledger in the background, so that the unsigned tail
// (entries past the newest signed checkpoint, which could be rewritten
// without a signature noticing) stays at most `every_entries` long and
// `interval` old, and signs a last one at Stop(). The checkpoints are stored
// in the ledger's table, so Open's Sync checks the stored log against the
// newest one at the next start. Errors are logged (never the keys) and
// retried at the next poll. The ledger and signer must outlive the scheduler.
class CheckpointScheduler {
 public:
  CheckpointScheduler(SqliteLedger* ledger, const Signer* signer, std::string origin,
                      AutoCheckpointOptions options);
  // Stop().
  ~CheckpointScheduler();
  CheckpointScheduler(const CheckpointScheduler&) = delete;
  CheckpointScheduler& operator=(const CheckpointScheduler&) = delete;

  // Stops the thread and signs the tail, if any (the shutdown checkpoint).
  // Idempotent; returns the last signing error, OK when there was nothing to
  // sign.
  Status Stop();
  // Checkpoints signed by this scheduler so far.
  uint64_t signed_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace medvault::ledger

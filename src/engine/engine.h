// medvault record engine: the public interface of src/engine.
//
// The operations a sharing workflow needs, on top of src/record (segment
// paths) and src/interop (documents spread over segments):
//
//   - PathPattern / Selection: choose segments by path or pattern;
//   - FieldMasker: hide or mask fields inside a JSON segment;
//   - SplitForSharing / JoinParts: a document as shareable parts and back;
//   - BuildSharePackage / OpenSharePackage: a self-contained file carrying
//     the chosen segments and nothing else, optionally sealed to a
//     recipient's X25519 key. The byte format is in docs/share-package.md.
//
// Access control is not decided here: callers authorise before calling.
// Error messages name patterns, field names and segment paths, never
// content. Everything is thread-safe (no shared mutable state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/secret.h"
#include "common/status.h"
#include "interop/interop.h"
#include "interop/mapping.h"
#include "record/record.h"

namespace medvault::engine {

// ---------------------------------------------------------------------------
// Path patterns and selections
//
//   pattern   = "**" / component *("/" component) ["/**"]
//   component = "*" / name          ; name: 1..64 of [a-z0-9-], not starting
//                                   ; or ending with '-' (as in segment paths)
//
// A name matches itself, "*" matches exactly one component, and a final
// "**" matches the path before it and everything below it ("physical-signs/
// **" matches "physical-signs" and "physical-signs/vital-signs/d01..."; "**"
// alone matches every path). A pattern without wildcards is an exact path.
// A literal first component must be a known top-level segment
// (vocab::kTopLevelSegments). At most kMaxPatternLength characters and
// record::kMaxPathDepth components besides the final "**".

inline constexpr size_t kMaxPatternLength = 256;
inline constexpr size_t kMaxPatternsPerSelection = 256;

class PathPattern {
 public:
  // InvalidArgument naming the pattern and the reason: empty, too long, too
  // deep, empty component, characters outside [a-z0-9-*/], a partial
  // wildcard ("d01*", "***"), "**" not last, unknown top-level segment.
  static Result<PathPattern> Parse(std::string_view text);

  // True when `path` matches, compared component by component. Paths are
  // not validated here (an invalid path simply may not match).
  bool Matches(std::string_view path) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::vector<std::string> components_;  // literal names and "*"
  bool subtree_ = false;                 // ended in "**"
};

// The paths matching any include pattern and no exclude pattern.
// Default-constructed: selects nothing.
class Selection {
 public:
  Selection() = default;
  // InvalidArgument for an empty include list, more than
  // kMaxPatternsPerSelection patterns, or any pattern PathPattern::Parse
  // refuses (the message says which list and which pattern).
  static Result<Selection> Create(const std::vector<std::string>& include,
                                  const std::vector<std::string>& exclude = {});

  bool Matches(std::string_view path) const;
  // The chosen ones, in the order given.
  std::vector<record::SegmentVersionInfo> Select(
      std::span<const record::SegmentVersionInfo> infos) const;
  std::vector<std::string> Select(std::span<const std::string> paths) const;

  bool empty() const { return include_.empty(); }

 private:
  std::vector<PathPattern> include_;
  std::vector<PathPattern> exclude_;
};

// ---------------------------------------------------------------------------
// Hiding and masking fields inside JSON segments
//
// A rule names a field and what to do with it: kMask replaces the value by
// "[masked]" (kMaskedValue), kHide removes it. A rule with `key` = true names
// a plain JSON object key, matched at any depth (exactly what the API's mask
// obligation does today: the whole value is replaced, nothing below it is
// visited). Otherwise the name must be one of the semantic fields of the
// interop patient JSON (vocab::kSemanticFields), matched at any depth, each
// of which also matches the plain key of the same name:
//
//   given_name        names[].given      mask: each given name -> "[masked]"; hide: "given" removed
//   family_name       names[].family     mask: "[masked]"; hide: "family" removed
//   birth_date        (the key only)
//   identifier        identifiers[]      mask: .value -> "[masked]"; hide: the identifier removed
//   insurance_number  identifiers[] of type "SB" or of an insurance system
//                     (vocab::kInsuranceIdentifierSystems), as for identifier
//   address           addresses[]        mask: every string in it -> "[masked]"; hide: removed
//   telecom           telecoms[]         mask: .value -> "[masked]"; hide: removed
//
// Masking keeps the structure, so masked parts still join into a document
// (interop::JoinSegments). When a value is hit by a hide and a mask rule,
// hide wins. The count returned is the number of values masked or removed:
// one per key hit, per names[] entry whose given or family was hit, per
// identifier, address and telecom.

inline constexpr std::string_view kMaskedValue = "[masked]";
// Nesting limit of JSON handled by this module (segments and packages).
inline constexpr size_t kMaxJsonDepth = 128;

enum class FieldAction { kMask, kHide };

struct FieldRule {
  std::string field;  // a semantic field, or (key = true) 1..64 of [A-Za-z0-9_.-]
  FieldAction action = FieldAction::kMask;
  bool key = false;
};

class FieldMasker {
 public:
  FieldMasker() = default;  // no rules: changes nothing
  // InvalidArgument for an unknown semantic field (the message lists the
  // known ones), a malformed key, or one field given both actions.
  // Identical duplicates are merged.
  static Result<FieldMasker> Create(const std::vector<FieldRule>& rules);
  // Every name a plain key with `action`: what the API's mask obligation
  // (policy "mask" names) does, as one call.
  static Result<FieldMasker> ForKeys(const std::vector<std::string>& keys,
                                     FieldAction action = FieldAction::kMask);

  bool empty() const { return rules_.empty(); }

  // Applies the rules in place to a JSON object; returns the count.
  // InvalidArgument when `j` is not an object or nests deeper than
  // kMaxJsonDepth (then `j` is left unchanged).
  Result<size_t> Apply(nlohmann::json& j) const;
  // The same on a segment's content. kJson: parsed (must be an object),
  // masked and re-serialised (unchanged bytes when nothing was hit);
  // InvalidArgument when not a JSON object. kText and kBinary:
  // FailedPrecondition ("text segments cannot be masked field by field")
  // unless the masker is empty: leaving a segment out is Selection's job.
  // An empty masker returns 0 without looking at the content.
  Result<size_t> ApplyToContent(record::ContentKind kind, Bytes& content) const;

 private:
  struct Rule {
    std::string field;
    FieldAction action;
    bool key;
  };
  std::vector<Rule> rules_;
};

// ---------------------------------------------------------------------------
// Split and join

struct SplitOptions {
  std::string document_key;        // "d" + 16 hex; "": interop::DocumentKey(doc, "")
  interop::OriginalInfo original;  // recorded in the header segment
};

// interop::SplitIntoSegments(doc), keeping the parts whose path the
// selection matches (in path order), each body masked by `masker`. Parts
// carry version 0 (not stored). InvalidArgument for a malformed document
// key; NotFound when the selection matches none of the document's parts.
Result<std::vector<interop::SegmentPart>> SplitForSharing(const interop::ClinicalDocument& doc,
                                                          const Selection& selection,
                                                          const FieldMasker& masker,
                                                          const SplitOptions& options = {});
// interop::JoinSegments: one document from the parts (any order).
Result<interop::ClinicalDocument> JoinParts(std::span<const interop::SegmentPart> parts);

// ---------------------------------------------------------------------------
// Share packages (docs/share-package.md)
//
// A package carries, per chosen segment, its path, version, category, kind,
// media type, content and SHA-256; and a random package id, the creation
// time, an optional note for the recipient, and a SHA-256 of the whole.
// Nothing else: no patient id (unless a chosen segment contains it), no
// author, no sensitivity, nothing about segments left out. A plain package
// detects edits and corruption but anyone can rewrite it with fresh hashes;
// a sealed one is confidential to the recipient and any change is refused,
// but it does not prove who made it (crypto_box_seal is anonymous).

inline constexpr std::string_view kSharePackageMagic = "MEDVAULT-SHARE-PACKAGE/1\n";
inline constexpr std::string_view kSealedSharePackageMagic = "MEDVAULT-SEALED-SHARE-PACKAGE/1\n";
inline constexpr std::string_view kSharePackageFormat = "medvault-share-package/1";
inline constexpr size_t kMaxPackageBytes = 64u * 1024 * 1024;
inline constexpr size_t kMaxPackageSegments = 10'000;
inline constexpr size_t kMaxNoteBytes = 4096;
inline constexpr size_t kRecipientKeySize = 32;  // X25519 public and secret keys

struct PackageItem {
  std::string path;      // record::ValidateSegmentPath; unique in a package
  uint64_t version = 0;  // >= 1
  std::string category;  // 1..64 of [a-z0-9-]; "" on build: the path's top-level category
  record::ContentKind kind = record::ContentKind::kJson;
  std::string media_type;  // 1..255 printable ASCII with a '/'; "" on build for
                           // JSON and text: the record service's defaults
  // kJson: a JSON object (serialised; packages hold it re-serialised in
  // canonical form, which is what Open returns); kText: UTF-8; kBinary: any.
  Bytes content;
  bool operator==(const PackageItem&) const = default;
};

// Copies what a package may carry: path, version, category, kind, media
// type and content (not the patient id, author, sensitivity or times).
PackageItem ItemFromSegment(const record::SegmentContent& segment);
// A JSON item of a part (set part.version first: packages refuse version 0).
// InvalidArgument when the body holds a string that is not valid UTF-8.
Result<PackageItem> ItemFromPart(const interop::SegmentPart& part);
// The part of a JSON item: FailedPrecondition for text and binary items,
// InvalidArgument when the content is not a JSON object.
Result<interop::SegmentPart> PartFromItem(const PackageItem& item);

struct RecipientKeyPair {
  Bytes public_key;        // kRecipientKeySize bytes
  SecretBytes secret_key;  // kRecipientKeySize bytes
};
// A fresh X25519 key pair (libsodium crypto_box_keypair).
Result<RecipientKeyPair> GenerateRecipientKeyPair();

struct PackageOptions {
  std::string note;           // for the recipient; UTF-8, <= kMaxNoteBytes, no control
                              // characters but tab and newline; "" = none
  int64_t created_at_ms = 0;  // 0: now
  // Empty: a plain package. Else the package is sealed to this X25519 key.
  Bytes recipient_public_key;
  size_t max_package_bytes = kMaxPackageBytes;  // of the output
};

// The package bytes. InvalidArgument for no items, more than
// kMaxPackageSegments, an invalid path, version 0, a duplicate path, a
// malformed category or media type (or an empty one for binary), JSON
// content that is not an object (or nests too deep), text that is not
// UTF-8, a malformed note or recipient key; ResourceExhausted when the
// output would exceed max_package_bytes.
Result<Bytes> BuildSharePackage(std::span<const PackageItem> items,
                                const PackageOptions& options = {});

struct SharePackage {
  std::string package_id;  // 32 lower-case hex
  std::string created_at;  // RFC 3339 UTC with milliseconds
  std::string note;
  std::vector<PackageItem> items;  // in package order
  std::string sha256_hex;          // of the plain package (its digest line), verified
};

struct OpenOptions {
  // Needed for sealed packages; ignored for plain ones.
  const SecretBytes* recipient_secret_key = nullptr;
  size_t max_package_bytes = kMaxPackageBytes;  // of the input
  size_t max_segments = kMaxPackageSegments;
};

// Opens a plain or sealed package and verifies everything:
//   ResourceExhausted  input above max_package_bytes, more than max_segments;
//   InvalidArgument    wrong magic, unsupported format version, truncated,
//                      malformed (not canonical JSON, unknown or missing
//                      fields, invalid path, version 0, duplicate path, ...);
//   DataLoss           a segment's content does not match its SHA-256 (the
//                      message names the path), the digest of the whole does
//                      not match, the body's format disagrees with the magic;
//                      sealed: the key block or the ciphertext does not
//                      authenticate (any altered, missing or added byte);
//   PermissionDenied   sealed to another recipient key (wrong key);
//   FailedPrecondition sealed, but no recipient key given.
Result<SharePackage> OpenSharePackage(ByteView bytes, const OpenOptions& options = {});
// The plain package inside a sealed one (errors as above), not yet verified:
// pass it to OpenSharePackage.
Result<Bytes> UnsealSharePackage(ByteView sealed, const SecretBytes& recipient_secret_key,
                                 size_t max_package_bytes = kMaxPackageBytes);

}  // namespace medvault::engine

// The witness: verifies each checkpoint of one log against the last one it
// saw and cosigns it (C2SP tlog-cosignature, cosignature/v1).
//
// State file (witness-state, mode 0600), rewritten atomically on every
// cosignature before the cosignature is returned:
//   medvault-witness-state v1
//   origin <origin>
//   size <decimal>
//   root <base64>
//   time <unix seconds of the last cosignature>
// A missing file is a fresh witness; a malformed one stops the witness (a
// silent reset would let it cosign a fork).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "common/ids.h"
#include "ledger/internal.h"
#include "ledger/ledger.h"

namespace medvault::ledger {
namespace {

constexpr std::string_view kStateFile = "witness-state";
constexpr std::string_view kLockFile = "witness.lock";
constexpr std::string_view kStateMagic = "medvault-witness-state v1";
constexpr size_t kMaxStateBytes = 4096;

struct State {
  uint64_t size = 0;
  Hash root{};
  int64_t time = 0;  // Unix seconds
};

std::string U(uint64_t v) { return std::to_string(v); }

std::string FormatState(std::string_view origin, const State& s) {
  return std::string(kStateMagic) + "\norigin " + std::string(origin) + "\nsize " + U(s.size) +
         "\nroot " + internal::Base64(HashView(s.root)) + "\ntime " + std::to_string(s.time) + "\n";
}

// Expects "<key> <value>" and returns the value.
std::optional<std::string_view> Field(std::string_view line, std::string_view key) {
  if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ' ') {
    return std::nullopt;
  }
  return line.substr(key.size() + 1);
}

Result<State> ParseState(std::string_view text, std::string_view want_origin,
                         const std::string& where) {
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < text.size();) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      return Status::DataLoss(where + " is malformed (no final newline)");
    }
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  if (lines.size() != 5 || lines[0] != kStateMagic) {
    return Status::DataLoss(where + " is malformed");
  }
  const auto origin = Field(lines[1], "origin");
  const auto size = Field(lines[2], "size");
  const auto root = Field(lines[3], "root");
  const auto time = Field(lines[4], "time");
  if (!origin || !size || !root || !time) {
    return Status::DataLoss(where + " is malformed");
  }
  if (*origin != want_origin) {
    return Status::FailedPrecondition(where + " is for origin " + std::string(*origin) +
                                      ", this witness follows " + std::string(want_origin));
  }
  State s;
  const auto n = internal::ParseDecimalU64(*size);
  const auto r = internal::FromBase64(*root);
  const auto t = internal::ParseDecimalU64(*time);
  if (!n || !r || r->size() != kHashSize || !t ||
      *t > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::DataLoss(where + " is malformed");
  }
  s.size = *n;
  std::copy(r->begin(), r->end(), s.root.begin());
  s.time = static_cast<int64_t>(*t);
  return s;
}

int64_t SystemSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct Witness::Impl {
  Impl(VerifierKey log, Signer s) : log_key(std::move(log)), signer(std::move(s)) {}

  std::filesystem::path state_path;
  std::string origin;
  VerifierKey log_key;
  Signer signer;
  std::function<int64_t()> now;
  std::optional<internal::Fd> lock_fd;  // holds the flock for the object's lifetime

  mutable std::mutex mu;
  std::optional<State> state;  // guarded by mu
};

Witness::Witness(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Witness::~Witness() = default;

Result<std::unique_ptr<Witness>> Witness::Open(const std::filesystem::path& state_dir,
                                               VerifierKey log_key, Signer signer,
                                               WitnessOptions options) {
  if (log_key.type() != KeyType::kEd25519) {
    return Status::InvalidArgument("the log key must be an Ed25519 (0x01) verifier key");
  }
  auto impl = std::make_unique<Impl>(std::move(log_key), std::move(signer));
  impl->origin = options.origin.empty() ? impl->log_key.name() : options.origin;
  if (impl->origin.find('\n') != std::string::npos) {
    return Status::InvalidArgument("witness origin must be one line");
  }
  impl->now = options.now_unix_seconds ? std::move(options.now_unix_seconds) : SystemSeconds;
  impl->state_path = state_dir / kStateFile;

  const std::filesystem::path lock_path = state_dir / kLockFile;
  const int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock < 0) {
    return Status::IOError("cannot open " + lock_path.string() + ": " + internal::ErrnoText(errno));
  }
  impl->lock_fd.emplace(lock);
  if (::flock(lock, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::FailedPrecondition("witness state directory " + state_dir.string() +
                                        " is in use by another witness");
    }
    return Status::IOError("cannot lock " + lock_path.string() + ": " + internal::ErrnoText(errno));
  }

  const std::string where = "witness state " + impl->state_path.string();
  auto text = internal::ReadSmallFile(impl->state_path, kMaxStateBytes, /*owner_only=*/false);
  if (text.ok()) {
    MV_ASSIGN_OR_RETURN(State s, ParseState(*text, impl->origin, where));
    impl->state = s;
  } else if (text.status().code() != StatusCode::kNotFound) {
    return text.status();
  }
  return std::unique_ptr<Witness>(new Witness(std::move(impl)));
}

Result<std::string> Witness::Observe(std::string_view signed_checkpoint_note,
                                     std::span<const Hash> consistency_proof) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return ObserveLocked(signed_checkpoint_note, consistency_proof, nullptr, nullptr);
}

// The add-checkpoint request body: "old N\n", up to 63 proof lines, an empty
// line, then the signed checkpoint note.
WitnessResponse Witness::AddCheckpoint(std::string_view body) {
  auto answer = [](int code, std::string text) {
    WitnessResponse r;
    r.http_status = code;
    r.body = std::move(text);
    if (!r.body.empty() && r.body.back() != '\n') {
      r.body += '\n';
    }
    return r;
  };
  const size_t nl = body.find('\n');
  if (nl == std::string_view::npos || body.substr(0, 4) != "old ") {
    return answer(400, "the request must start with an old size line");
  }
  const std::string_view old_text = body.substr(4, nl - 4);
  uint64_t old_size = 0;
  if (old_text.empty() || old_text.size() > 19 || (old_text.size() > 1 && old_text[0] == '0')) {
    return answer(400, "malformed old size");
  }
  for (char c : old_text) {
    if (c < '0' || c > '9') {
      return answer(400, "malformed old size");
    }
    old_size = old_size * 10 + static_cast<uint64_t>(c - '0');
  }
  const size_t blank = body.find("\n\n", nl);
  std::string_view proof_text;
  std::string_view note;
  if (blank == nl) {  // no proof lines: "old N\n\n<note>"
    note = body.substr(nl + 2);
  } else if (blank == std::string_view::npos) {
    return answer(400, "no empty line before the checkpoint");
  } else {
    proof_text = body.substr(nl + 1, blank + 1 - (nl + 1));
    note = body.substr(blank + 2);
  }
  auto proof = ParseProof(proof_text);
  if (!proof.ok() || proof->size() > 63) {
    return answer(400, "malformed consistency proof");
  }
  int code = 200;
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto line = ObserveLocked(note, *proof, &old_size, &code);
  if (!line.ok()) {
    WitnessResponse r = answer(code, line.status().message());
    if (code == 409 && line.status().code() == StatusCode::kAlreadyExists) {
      r.body = line.status().message() + "\n";  // the witnessed size
      r.content_type = "text/x.tlog.size";
    }
    return r;
  }
  return answer(200, *line);
}

Result<std::string> Witness::ObserveLocked(std::string_view signed_checkpoint_note,
                                           std::span<const Hash> consistency_proof,
                                           const uint64_t* old_size, int* http_status) {
  Impl& w = *impl_;
  int ignored = 0;
  int& code = http_status != nullptr ? *http_status : ignored;
  auto cp_or = VerifyCheckpoint(signed_checkpoint_note, w.log_key);
  if (!cp_or.ok()) {
    code = cp_or.status().code() == StatusCode::kInvalidArgument ? 400 : 403;
    return cp_or.status();
  }
  const ledger::Checkpoint& cp = *cp_or;
  if (cp.origin != w.origin) {
    code = 404;
    return Status::FailedPrecondition("checkpoint is for origin " + cp.origin +
                                      ", this witness follows " + w.origin);
  }
  if (cp.size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    code = 400;
    return Status::InvalidArgument("checkpoint size is out of range");
  }
  if (old_size != nullptr) {
    if (*old_size > cp.size) {
      code = 400;
      return Status::InvalidArgument("old size " + U(*old_size) + " is beyond the checkpoint");
    }
    const uint64_t witnessed = w.state.has_value() ? w.state->size : 0;
    if (*old_size != witnessed) {
      code = 409;
      return Status::AlreadyExists(U(witnessed));  // marker: the body is the witnessed size
    }
  }
  int64_t timestamp = w.now();
  if (w.state.has_value()) {
    const State& last = *w.state;
    if (cp.size < last.size) {
      code = 409;
      return Status::FailedPrecondition("size went backwards " + U(last.size) + " -> " +
                                        U(cp.size));
    }
    if (cp.size == last.size && cp.root != last.root) {
      code = 409;
      return Status::DataLoss("fork: size " + U(cp.size) +
                              " root differs from the one witnessed at " +
                              FormatRfc3339Millis(last.time * 1000));
    }
    Status st = VerifyConsistency(last.size, cp.size, last.root, cp.root, consistency_proof);
    if (!st.ok()) {
      code = 422;
      return Status::DataLoss("consistency proof from " + U(last.size) + " to " + U(cp.size) +
                              " does not verify: " + st.message());
    }
    timestamp = std::max(timestamp, last.time);  // never older than our last statement
  }
  if (timestamp < 0) {
    code = 500;
    return Status::Internal("clock is before 1970");
  }
  code = 500;  // until the state is persisted
  const std::string body = FormatCheckpointBody(cp);
  MV_ASSIGN_OR_RETURN(std::string line, Cosign(w.signer, body, static_cast<uint64_t>(timestamp)));
  State next{cp.size, cp.root, timestamp};
  // Persist before answering: a cosignature must never outlive the state
  // that justified it.
  MV_RETURN_IF_ERROR(internal::AtomicWriteFile(w.state_path, AsBytes(FormatState(w.origin, next))));
  w.state = next;
  code = 200;
  return line;
}

uint64_t Witness::size() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->state.has_value() ? impl_->state->size : 0;
}

std::optional<Hash> Witness::root() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->state.has_value()) {
    return std::nullopt;
  }
  return impl_->state->root;
}

const VerifierKey& Witness::log_key() const { return impl_->log_key; }

VerifierKey Witness::CosignatureVerifier() const { return impl_->signer.CosignatureVerifier(); }

}  // namespace medvault::ledger

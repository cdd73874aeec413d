#include "interop/fhir_json.h"

#include <cerrno>
#include <clocale>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>
#include <unordered_set>
#include <utility>

#include "common/log.h"
#include "interop/ccda_internal.h"

namespace medvault::interop::fhir_json {

using internal::kNone;
using internal::Node;

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return "a boolean";
    case Type::kNumber:
      return "a number";
    case Type::kString:
      return "a string";
    case Type::kArray:
      return "an array";
    case Type::kObject:
      return "an object";
  }
  return "a value";
}

std::string SafeKey(std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  const size_t n = key.size() > 64 ? 64 : key.size();
  out.reserve(n + 8);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (key.size() > n) out += "...";
  return out;
}

namespace {

// Path of the node `index` (its ancestors' keys and array positions).
std::string PathOf(const Node* nodes, const char* arena, uint32_t index) {
  std::vector<uint32_t> chain;
  for (uint32_t i = index; i != kNone && nodes[i].parent != kNone; i = nodes[i].parent) {
    chain.push_back(i);
  }
  std::string path;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const Node& n = nodes[*it];
    const Node& parent = nodes[n.parent];
    if (parent.type == Type::kObject) {
      if (!path.empty()) path.push_back('.');
      path += SafeKey({arena + n.key_off, n.key_len});
    } else {
      size_t pos = 0;
      for (uint32_t c = n.parent + 1; c != *it; c = nodes[c].end) ++pos;
      path += "[" + std::to_string(pos) + "]";
    }
  }
  return path;
}

std::string WhereOf(const std::string& path) {
  return path.empty() ? std::string("at the top level") : "at " + path;
}

}  // namespace

Value Value::operator[](std::string_view key) const {
  if (nodes_ == nullptr || node().type != Type::kObject) return {};
  const uint32_t end_index = node().end;
  for (uint32_t i = index_ + 1; i < end_index; i = nodes_[i].end) {
    const Node& n = nodes_[i];
    if (n.key_len == key.size() &&
        (key.empty() ||
         std::char_traits<char>::compare(arena_ + n.key_off, key.data(), key.size()) == 0)) {
      return Value(nodes_, arena_, i);
    }
  }
  return {};
}

Value::Iterator Value::begin() const {
  if (nodes_ == nullptr) return Iterator(nullptr, nullptr, 0);
  const Node& n = node();
  const bool container = n.type == Type::kArray || n.type == Type::kObject;
  return Iterator(nodes_, arena_, container ? index_ + 1 : n.end);
}

Value::Iterator Value::end() const {
  if (nodes_ == nullptr) return Iterator(nullptr, nullptr, 0);
  return Iterator(nodes_, arena_, node().end);
}

std::string Value::Path() const {
  if (nodes_ == nullptr) return "";
  return PathOf(nodes_, arena_, index_);
}

std::string Value::Where() const { return WhereOf(Path()); }

Value Document::root() const {
  if (nodes_.empty()) return {};
  return Value(nodes_.data(), arena_.data(), 0);
}

// The SAX handler: builds Document's nodes and refuses what the header says.
class SaxBuilder {
 public:
  using json = nlohmann::json;

  SaxBuilder(Document& doc, const ParseLimits& limits) : doc_(doc), limits_(limits) {}

  const Status& error() const { return error_; }

  bool null() { return Add(Type::kNull) != kNone; }
  bool boolean(bool v) {
    const uint32_t i = Add(Type::kBool);
    if (i == kNone) return false;
    doc_.nodes_[i].boolean = v;
    return true;
  }
  bool number_integer(json::number_integer_t v) {
    // Only numbers written with a leading '-' arrive here ("0" and positive
    // integers go to number_unsigned), so 0 can only have been "-0".
    return Number(v == 0 ? std::string("-0") : std::to_string(v));
  }
  bool number_unsigned(json::number_unsigned_t v) { return Number(std::to_string(v)); }
  bool number_float(json::number_float_t v, const std::string& raw) {
    if (!std::isfinite(v)) return OutOfRange();  // nlohmann reports these itself
    // The lexer writes the locale's decimal point for '.'; undo that.
    std::string text = raw;
    for (char& c : text) {
      if (!((c >= '0' && c <= '9') || c == 'e' || c == 'E' || c == '+' || c == '-')) c = '.';
    }
    return Number(text);
  }
  bool string(std::string& s) {
    if (!CheckLength(s.size(), "string")) return false;
    // What XML 1.0 cannot carry ("\u0000", other C0 controls, U+FFFE,
    // U+FFFF) would be stored and then fail the patient's C-CDA export.
    if (!ccda::IsXmlText(s)) {
      return Fail(Status::InvalidArgument(
          "a string with a character XML cannot carry (U+0000 or another control character "
          "but tab, line feed and carriage return, U+FFFE or U+FFFF) " +
          Where()));
    }
    const uint32_t i = Add(Type::kString);
    if (i == kNone) return false;
    StoreText(i, s);
    return true;
  }
  bool binary(json::binary_t& /*unused*/) {
    return Fail(Status::InvalidArgument("binary values are not JSON " + Where()));
  }

  bool start_object(std::size_t /*unused*/) { return Open(Type::kObject); }
  bool end_object() { return Close(); }
  bool start_array(std::size_t /*unused*/) { return Open(Type::kArray); }
  bool end_array() { return Close(); }

  bool key(std::string& k) {
    if (!CheckLength(k.size(), "key")) return false;
    // Keys are written too (resources kept verbatim): the same rule as strings.
    if (!ccda::IsXmlText(k)) {
      return Fail(Status::InvalidArgument(
          "a key with a character XML cannot carry (U+0000 or another control character but "
          "tab, line feed and carriage return, U+FFFE or U+FFFF) " +
          Where()));
    }
    Frame& f = stack_.back();
    // Bounds the per-object work of lookups (linear in the members) and of
    // the duplicate check (a hash set an attacker could aim collisions at).
    if (doc_.nodes_[f.node].count >= limits_.max_object_members) {
      return Fail(Status::ResourceExhausted(
          "more than " + std::to_string(limits_.max_object_members) + " members in one object " +
          WhereOf(PathOf(doc_.nodes_.data(), doc_.arena_.data(), f.node))));
    }

    if (IsDuplicate(f, k)) {
      return Fail(
          Status::InvalidArgument("duplicate key \"" + SafeKey(k) + "\" " +
                                  WhereOf(PathOf(doc_.nodes_.data(), doc_.arena_.data(), f.node))));
    }
    pending_key_off_ = Append(k);
    pending_key_len_ = static_cast<uint32_t>(k.size());
    return true;
  }

  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) {
    if (!error_.ok()) return false;  // our own refusal came first
    if (ex.id == 406) return OutOfRange();
    std::string what = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5:
    // syntax error while parsing value - invalid literal; last read: '<token>'"
    // The token is input text: cut it out.
    if (const size_t p = what.find("] "); p != std::string::npos && what.front() == '[') {
      what.erase(0, p + 2);
    }
    const std::string token = "; last read: '" + last_token + "'";
    if (const size_t p = what.find(token); p != std::string::npos) {
      what.erase(p, token.size());
    } else if (const size_t q = what.find("; last read"); q != std::string::npos) {
      what.erase(q);
    }
    // What remains is nlohmann's fixed wording ("unexpected end of input;
    // expected '[', '{', or a literal"), without input text.
    return Fail(Status::InvalidArgument("invalid JSON " + Where() + " (byte " +
                                        std::to_string(position) + "): " + what));
  }

 private:
  struct Frame {
    uint32_t node;
    std::unique_ptr<std::unordered_set<std::string>> keys;  // for big objects
  };
  static constexpr uint32_t kLinearKeys = 16;

  bool Fail(Status st) {
    if (error_.ok()) error_ = std::move(st);
    return false;
  }
  bool OutOfRange() { return Fail(Status::InvalidArgument("number out of range " + Where())); }

  // Where the value being added goes: the open container plus the pending key
  // or next index.
  std::string Where() const {
    if (stack_.empty()) return doc_.nodes_.empty() ? WhereOf("") : "after the top-level value";
    const Frame& f = stack_.back();
    std::string path = PathOf(doc_.nodes_.data(), doc_.arena_.data(), f.node);
    const Node& n = doc_.nodes_[f.node];
    if (n.type == Type::kObject) {
      if (pending_key_off_ != kNone) {
        if (!path.empty()) path.push_back('.');
        path += SafeKey({doc_.arena_.data() + pending_key_off_, pending_key_len_});
      }
    } else {
      path += "[" + std::to_string(n.count) + "]";
    }
    return WhereOf(path);
  }

  bool CheckLength(size_t len, const char* what) {
    if (len <= limits_.max_text_bytes) return true;
    return Fail(Status::ResourceExhausted(std::string(what) + " longer than " +
                                          std::to_string(limits_.max_text_bytes) + " bytes " +
                                          Where()));
  }

  uint32_t Append(std::string_view s) {
    const size_t off = doc_.arena_.size();
    doc_.arena_.append(s);
    return static_cast<uint32_t>(off);
  }
  void StoreText(uint32_t i, std::string_view s) {
    doc_.nodes_[i].text_off = Append(s);
    doc_.nodes_[i].text_len = static_cast<uint32_t>(s.size());
  }

  bool Number(const std::string& text) {
    const uint32_t i = Add(Type::kNumber);
    if (i == kNone) return false;
    StoreText(i, text);
    return true;
  }

  // Adds a node under the open container; returns its index or kNone.
  uint32_t Add(Type t) {
    if (doc_.nodes_.size() >= limits_.max_nodes) {
      Fail(Status::ResourceExhausted("more than " + std::to_string(limits_.max_nodes) +
                                     " JSON values " + Where()));
      return kNone;
    }
    const auto i = static_cast<uint32_t>(doc_.nodes_.size());
    Node n;
    n.type = t;
    n.end = i + 1;
    if (!stack_.empty()) {
      Node& parent = doc_.nodes_[stack_.back().node];
      n.parent = stack_.back().node;
      ++parent.count;
      if (parent.type == Type::kObject) {
        n.key_off = pending_key_off_;
        n.key_len = pending_key_len_;
        pending_key_off_ = kNone;
      }
    }
    doc_.nodes_.push_back(n);
    return i;
  }

  bool Open(Type t) {
    if (stack_.size() >= limits_.max_depth) {
      return Fail(Status::ResourceExhausted(
          "JSON nested deeper than " + std::to_string(limits_.max_depth) + " levels " + Where()));
    }
    const uint32_t i = Add(t);
    if (i == kNone) return false;
    stack_.push_back(Frame{i, nullptr});
    return true;
  }
  bool Close() {
    const uint32_t i = stack_.back().node;
    doc_.nodes_[i].end = static_cast<uint32_t>(doc_.nodes_.size());
    stack_.pop_back();
    return true;
  }

  bool IsDuplicate(Frame& f, const std::string& k) {
    const Node& obj = doc_.nodes_[f.node];
    if (f.keys == nullptr && obj.count < kLinearKeys) {
      // Members before this key are complete: walk them.
      const char* arena = doc_.arena_.data();
      const auto total = static_cast<uint32_t>(doc_.nodes_.size());
      for (uint32_t c = f.node + 1; c < total; c = doc_.nodes_[c].end) {
        const Node& n = doc_.nodes_[c];
        if (n.key_len == k.size() &&
            std::char_traits<char>::compare(arena + n.key_off, k.data(), k.size()) == 0) {
          return true;
        }
      }
      return false;
    }
    if (f.keys == nullptr) {
      f.keys = std::make_unique<std::unordered_set<std::string>>();
      const char* arena = doc_.arena_.data();
      const auto total = static_cast<uint32_t>(doc_.nodes_.size());
      for (uint32_t c = f.node + 1; c < total; c = doc_.nodes_[c].end) {
        f.keys->emplace(arena + doc_.nodes_[c].key_off, doc_.nodes_[c].key_len);
      }
    }
    return !f.keys->insert(k).second;
  }

  Document& doc_;
  const ParseLimits& limits_;
  std::vector<Frame> stack_;
  uint32_t pending_key_off_ = kNone;
  uint32_t pending_key_len_ = 0;
  Status error_;
};

Result<Document> Document::Parse(std::string_view json, const ParseLimits& limits) {
  if (json.size() > limits.max_document_bytes) {
    return Status::ResourceExhausted("JSON document of " + std::to_string(json.size()) +
                                     " bytes exceeds the limit of " +
                                     std::to_string(limits.max_document_bytes));
  }
  // Offsets into the arena and node indices are 32-bit.
  if (json.size() >= std::numeric_limits<uint32_t>::max() / 2) {
    return Status::ResourceExhausted("JSON document too large");
  }
  // nlohmann's lexer takes a NUL byte for the end of the input, which would
  // let anything after it through. Valid JSON never has one (inside strings
  // it must be escaped).
  if (const void* nul = std::memchr(json.data(), 0, json.size()); nul != nullptr) {
    return Status::InvalidArgument("invalid JSON: NUL byte at byte " +
                                   std::to_string(static_cast<const char*>(nul) - json.data()));
  }
  Document doc;
  try {
    // Keep the arena on the heap so that moving the Document keeps pointers.
    // (Strings and number texts together are never longer than the input, so
    // the arena is never reallocated either.)
    doc.arena_.reserve(json.size() + 64);
    doc.nodes_.reserve(json.size() / 32 + 4);
    SaxBuilder builder(doc, limits);
    const bool ok = nlohmann::json::sax_parse(json.begin(), json.end(), &builder,
                                              nlohmann::json::input_format_t::json,
                                              /*strict=*/true, /*ignore_comments=*/false);
    if (!ok || !builder.error().ok()) {
      if (!builder.error().ok()) return builder.error();
      return Status::InvalidArgument("invalid JSON");
    }
    if (doc.nodes_.empty()) return Status::InvalidArgument("invalid JSON: no value");
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while parsing JSON");
  } catch (const std::exception&) {
    return Status::InvalidArgument("invalid JSON");
  }
  return doc;
}

void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  AppendJsonEscaped(out, s);
  out.push_back('"');
}

void AppendJson(std::string& out, Value v) {
  switch (v.type()) {
    case Type::kNull:
      out += "null";
      return;
    case Type::kBool:
      out += v.boolean() ? "true" : "false";
      return;
    case Type::kNumber:
      out += v.text();
      return;
    case Type::kString:
      AppendJsonString(out, v.text());
      return;
    case Type::kArray:
    case Type::kObject: {
      const bool object = v.type() == Type::kObject;
      out.push_back(object ? '{' : '[');
      bool first = true;
      for (Value c : v) {
        if (!first) out.push_back(',');
        first = false;
        if (object) {
          AppendJsonString(out, c.key());
          out.push_back(':');
        }
        AppendJson(out, c);
      }
      out.push_back(object ? '}' : ']');
      return;
    }
  }
}

bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  auto digit = [&](size_t k) { return k < n && s[k] >= '0' && s[k] <= '9'; };
  if (i < n && s[i] == '-') ++i;
  if (!digit(i)) return false;
  if (s[i] == '0') {
    ++i;
  } else {
    while (digit(i)) ++i;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  if (i != n) return false;
  // Same test as the parser: the value must be a finite double.
  // strtod reads the locale's decimal point.
  std::string copy(s);
  const char point = *std::localeconv()->decimal_point;
  for (char& c : copy) {
    if (c == '.') c = point;
  }
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(copy.c_str(), &end);
  return std::isfinite(v);
}

}  // namespace medvault::interop::fhir_json

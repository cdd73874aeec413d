// A strict JSON reader for hostile input, used by the FHIR reader.
//
// Built on nlohmann::json's SAX parser (which validates the grammar and
// UTF-8, refuses NaN/Infinity literals, lone surrogate escapes and trailing
// garbage, and skips a leading UTF-8 BOM). On top of that it
//  * refuses duplicate keys in any object, and objects of more than
//    ParseLimits::max_object_members members,
//  * refuses strings and keys with characters XML 1.0 cannot carry (U+0000,
//    other C0 controls but tab, line feed and carriage return, U+FFFE,
//    U+FFFF), so that whatever is read can be exported as C-CDA (keys too:
//    resources kept verbatim are written with theirs),
//  * enforces ParseLimits: document size, container nesting, number of
//    values, length of one string or key,
//  * refuses numbers that do not fit a double ("1e400"),
//  * keeps the exact text of every number ("1.00", "1E-22", "-0"), so FHIR
//    decimals keep their precision,
// and builds a small read-only DOM: a flat array of nodes in document order
// with one string arena. Values are cheap handles (two pointers and an index).
//
// Error messages name the problem and where it is as a path such as
// "entry[3].resource.valueQuantity.value" ("the top level" for the root).
// They never quote string values or number text (health data); object keys
// may appear, escaped and truncated. Limit violations are ResourceExhausted,
// everything else InvalidArgument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "interop/interop.h"

namespace medvault::interop::fhir_json {

enum class Type : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
// "null", "a boolean", "a number", "a string", "an array", "an object".
std::string_view TypeName(Type t);

namespace internal {
inline constexpr uint32_t kNone = 0xffffffffu;
struct Node {
  uint32_t key_off = 0;  // member name (in the arena) when the parent is an object
  uint32_t key_len = 0;
  uint32_t text_off = 0;  // string value or number text (in the arena)
  uint32_t text_len = 0;
  uint32_t parent = kNone;
  uint32_t end = 0;    // index one past the last node of this subtree
  uint32_t count = 0;  // number of children (arrays and objects)
  Type type = Type::kNull;
  bool boolean = false;
};
}  // namespace internal

class Document;

// A handle to one value of a Document, or "missing" (default-constructed, or
// the result of looking up an absent key). Valid while its Document lives
// (moving the Document keeps handles valid).
class Value {
 public:
  Value() = default;

  bool missing() const { return nodes_ == nullptr; }
  bool present() const { return nodes_ != nullptr; }
  // The accessors below are safe on a missing value: kNull, "", false, 0.
  Type type() const { return present() ? node().type : Type::kNull; }
  bool is_null() const { return present() && type() == Type::kNull; }
  bool is_bool() const { return type() == Type::kBool; }
  bool is_number() const { return type() == Type::kNumber; }
  bool is_string() const { return type() == Type::kString; }
  bool is_array() const { return type() == Type::kArray; }
  bool is_object() const { return type() == Type::kObject; }

  // The string value (kString) or the number exactly as written (kNumber).
  std::string_view text() const {
    return present() ? std::string_view(arena_ + node().text_off, node().text_len)
                     : std::string_view();
  }
  bool boolean() const { return present() && node().boolean; }
  // Number of elements (arrays) or members (objects); 0 for scalars.
  size_t size() const { return present() ? node().count : 0; }

  // Object member by name; missing() when absent or when this is not an object.
  Value operator[](std::string_view key) const;
  // The member name of this value when it is a member of an object, else "".
  std::string_view key() const {
    return present() ? std::string_view(arena_ + node().key_off, node().key_len)
                     : std::string_view();
  }

  // Iteration over the elements of an array or the members of an object
  // (in document order; use key() on the element for the member name).
  class Iterator {
   public:
    Value operator*() const { return Value(nodes_, arena_, index_); }
    Iterator& operator++() {
      index_ = nodes_[index_].end;
      return *this;
    }
    bool operator==(const Iterator& o) const { return index_ == o.index_; }
    bool operator!=(const Iterator& o) const { return index_ != o.index_; }

   private:
    friend class Value;
    Iterator(const internal::Node* nodes, const char* arena, uint32_t index)
        : nodes_(nodes), arena_(arena), index_(index) {}
    const internal::Node* nodes_;
    const char* arena_;
    uint32_t index_;
  };
  Iterator begin() const;
  Iterator end() const;

  // Where this value is: "entry[3].resource.code" ("" for the root).
  std::string Path() const;
  // "at entry[3].resource.code", or "at the top level".
  std::string Where() const;

  // Identity of the node (for maps keyed by value).
  uint32_t index() const { return index_; }

 private:
  friend class Document;
  Value(const internal::Node* nodes, const char* arena, uint32_t index)
      : nodes_(nodes), arena_(arena), index_(index) {}
  const internal::Node& node() const { return nodes_[index_]; }

  const internal::Node* nodes_ = nullptr;
  const char* arena_ = nullptr;
  uint32_t index_ = 0;
};

class Document {
 public:
  Document() = default;
  Document(Document&&) = default;
  Document& operator=(Document&&) = default;
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  // Parses one JSON value (any type at the top level). See the top of this
  // file for what is refused.
  static Result<Document> Parse(std::string_view json, const ParseLimits& limits = {});

  Value root() const;
  size_t node_count() const { return nodes_.size(); }

 private:
  friend class SaxBuilder;
  std::vector<internal::Node> nodes_;
  std::string arena_;
};

// Appends `s` to `out` as a JSON string literal (with quotes; escapes '"',
// '\\' and control characters; other bytes copied as they are).
void AppendJsonString(std::string& out, std::string_view s);

// Appends `v` to `out` as compact JSON: members in document order, strings
// escaped as AppendJsonString does, numbers exactly as written. The same
// value always gives the same text, and parsing that text gives it back.
void AppendJson(std::string& out, Value v);

// Whether `s` is a JSON number (RFC 8259 grammar) whose value fits a double,
// i.e. what Document::Parse accepts as a number.
bool IsJsonNumber(std::string_view s);

// A key made safe for an error message: printable ASCII only (other bytes as
// \xNN), at most 64 bytes (then "...").
std::string SafeKey(std::string_view key);

}  // namespace medvault::interop::fhir_json

// A JSON writer that appends text straight into a string: for answers too
// large to build as a DOM first (a FHIR bundle, a clinical summary). Strings
// are escaped as the log writer escapes them ('"', '\\' and control
// characters; other bytes as they are: the caller passes valid UTF-8).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"

namespace medvault {

// Tracks where commas go. REQUIRES: the caller keeps begin/end balanced and
// writes a key before every member of an object.
class JsonOut {
 public:
  std::string& str() { return out_; }

  void BeginObject() {
    Sep();
    out_.push_back('{');
    has_item_.push_back(false);
  }
  void EndObject() {
    out_.push_back('}');
    has_item_.pop_back();
  }
  void BeginArray() {
    Sep();
    out_.push_back('[');
    has_item_.push_back(false);
  }
  void EndArray() {
    out_.push_back(']');
    has_item_.pop_back();
  }
  void Key(std::string_view k) {
    Sep();
    out_.push_back('"');
    AppendJsonEscaped(out_, k);
    out_.push_back('"');
    out_.push_back(':');
    after_key_ = true;
  }
  void String(std::string_view s) {
    Sep();
    out_.push_back('"');
    AppendJsonEscaped(out_, s);
    out_.push_back('"');
  }
  // REQUIRES: `text` is valid JSON (a number, or a complete JSON value).
  void Raw(std::string_view text) {
    Sep();
    out_.append(text);
  }
  void Bool(bool b) { Raw(b ? "true" : "false"); }
  // Starts the next array element on a new line (the comma before it).
  void NextLine() {
    if (!has_item_.empty() && has_item_.back()) out_.push_back(',');
    out_.push_back('\n');
    if (!has_item_.empty()) has_item_.back() = true;
    after_key_ = true;  // no separator before the element itself
  }
  void Newline() { out_.push_back('\n'); }

  // Members written only when the value is not empty.
  void Str(std::string_view key, std::string_view value) {
    if (value.empty()) return;
    Key(key);
    String(value);
  }
  void Uint(uint64_t v) { Raw(std::to_string(v)); }

 private:
  void Sep() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!has_item_.empty()) {
      if (has_item_.back()) out_.push_back(',');
      has_item_.back() = true;
    }
  }

  std::string out_;
  std::vector<bool> has_item_;
  bool after_key_ = false;
};

}  // namespace medvault

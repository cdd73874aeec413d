// The record engine: path patterns, selections, field masking, split/join.
// Share packages are in share_package.cc.
#include "engine/engine.h"

#include <algorithm>
#include <array>
#include <utility>

#include "engine/internal.h"
#include "vocab/vocab.h"

namespace medvault::engine {

using nlohmann::json;

// ---------------------------------------------------------------------------
// Internal helpers

namespace internal {

Result<json> ParseJson(std::string_view text, size_t max_depth, std::string_view what) {
  bool too_deep = false;
  json::parser_callback_t limit = [&](int depth, json::parse_event_t event, json& /*parsed*/) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        static_cast<size_t>(depth) + 1 > max_depth) {
      too_deep = true;
    }
    return !too_deep;
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), limit);
  } catch (const json::exception&) {
    return Status::InvalidArgument(std::string(what) + " is not valid JSON");
  }
  if (too_deep) {
    return Status::InvalidArgument(std::string(what) + " nests deeper than " +
                                   std::to_string(max_depth) + " levels");
  }
  return j;
}

size_t JsonDepth(const json& j, size_t limit) {
  std::vector<std::pair<const json*, size_t>> stack = {{&j, 0}};
  size_t deepest = 0;
  while (!stack.empty()) {
    auto [v, depth] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) {
      continue;
    }
    deepest = std::max(deepest, depth + 1);
    if (deepest > limit) {
      return deepest;
    }
    for (const json& child : *v) {
      stack.emplace_back(&child, depth + 1);
    }
  }
  return deepest;
}

Result<std::string> Dump(const json& j, std::string_view what) {
  try {
    return j.dump();
  } catch (const json::exception&) {
    return Status::InvalidArgument(std::string(what) + " holds a string that is not valid UTF-8");
  }
}

}  // namespace internal

// ---------------------------------------------------------------------------
// Path patterns

namespace {

// `s` in double quotes when it is short printable ASCII; otherwise a
// placeholder, so that messages stay valid UTF-8 and free of control bytes.
std::string Quoted(std::string_view s) {
  if (s.size() > kMaxPatternLength ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; })) {
    return "(not shown: long or not printable ASCII)";
  }
  return "\"" + std::string(s) + "\"";
}

bool IsNameChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      return out;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

}  // namespace

Result<PathPattern> PathPattern::Parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("pattern " + Quoted(text) + ": " + std::string(why));
  };
  if (text.empty()) {
    return Status::InvalidArgument("pattern is empty");
  }
  if (text.size() > kMaxPatternLength) {
    return Status::InvalidArgument("pattern is longer than " + std::to_string(kMaxPatternLength) +
                                   " characters");
  }
  PathPattern p;
  p.text_ = std::string(text);
  const std::vector<std::string_view> comps = SplitPath(text);
  for (size_t i = 0; i < comps.size(); ++i) {
    const std::string_view c = comps[i];
    if (c.empty()) {
      return bad("empty component (leading, trailing or double '/')");
    }
    if (c == "**") {
      if (i + 1 != comps.size()) {
        return bad("'**' may only be the last component");
      }
      p.subtree_ = true;
      continue;
    }
    if (c == "*") {
      p.components_.emplace_back(c);
      continue;
    }
    if (c.find('*') != std::string_view::npos) {
      return bad("'*' and '**' must be whole components (no partial wildcards)");
    }
    if (!std::all_of(c.begin(), c.end(), IsNameChar)) {
      return bad("components may contain only a-z, 0-9 and '-', or be '*' or '**'");
    }
    if (c.front() == '-' || c.back() == '-') {
      return bad("component may not start or end with '-'");
    }
    if (c.size() > record::kMaxComponentLength) {
      return bad("component is longer than 64 characters");
    }
    if (i == 0 && vocab::FindTopLevel(c) == nullptr) {
      return bad("must start with a known top-level segment or a wildcard");
    }
    p.components_.emplace_back(c);
  }
  if (p.components_.size() > record::kMaxPathDepth) {
    return bad("deeper than " + std::to_string(record::kMaxPathDepth) + " components");
  }
  return p;
}

bool PathPattern::Matches(std::string_view path) const {
  if (path.empty()) {
    return false;
  }
  const std::vector<std::string_view> comps = SplitPath(path);
  if (subtree_ ? comps.size() < components_.size() : comps.size() != components_.size()) {
    return false;
  }
  for (size_t i = 0; i < components_.size(); ++i) {
    if (comps[i].empty()) {
      return false;
    }
    if (components_[i] != "*" && components_[i] != comps[i]) {
      return false;
    }
  }
  // Below a subtree every component must still be non-empty ("a//b" is no path).
  return std::none_of(comps.begin() + static_cast<std::ptrdiff_t>(components_.size()), comps.end(),
                      [](std::string_view c) { return c.empty(); });
}

// ---------------------------------------------------------------------------
// Selections

Result<Selection> Selection::Create(const std::vector<std::string>& include,
                                    const std::vector<std::string>& exclude) {
  if (include.empty()) {
    return Status::InvalidArgument("a selection needs at least one include pattern");
  }
  if (include.size() + exclude.size() > kMaxPatternsPerSelection) {
    return Status::InvalidArgument("a selection has at most " +
                                   std::to_string(kMaxPatternsPerSelection) + " patterns");
  }
  Selection s;
  for (const std::string& text : include) {
    auto p = PathPattern::Parse(text);
    if (!p.ok()) {
      return p.status().WithContext("include");
    }
    s.include_.push_back(std::move(*p));
  }
  for (const std::string& text : exclude) {
    auto p = PathPattern::Parse(text);
    if (!p.ok()) {
      return p.status().WithContext("exclude");
    }
    s.exclude_.push_back(std::move(*p));
  }
  return s;
}

bool Selection::Matches(std::string_view path) const {
  auto hit = [&](const PathPattern& p) { return p.Matches(path); };
  return std::any_of(include_.begin(), include_.end(), hit) &&
         std::none_of(exclude_.begin(), exclude_.end(), hit);
}

std::vector<record::SegmentVersionInfo> Selection::Select(
    std::span<const record::SegmentVersionInfo> infos) const {
  std::vector<record::SegmentVersionInfo> out;
  for (const record::SegmentVersionInfo& info : infos) {
    if (Matches(info.path)) {
      out.push_back(info);
    }
  }
  return out;
}

std::vector<std::string> Selection::Select(std::span<const std::string> paths) const {
  std::vector<std::string> out;
  for (const std::string& path : paths) {
    if (Matches(path)) {
      out.push_back(path);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Field masking

namespace {

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

std::string KnownFieldList() {
  std::string out;
  for (const vocab::SemanticField& f : vocab::kSemanticFields) {
    out += out.empty() ? "" : ", ";
    out += f.name;
  }
  return out;
}

// What the rules say for one target: nothing, mask or hide (hide wins).
enum class Act { kNone, kMask, kHide };

Act Stronger(Act a, Act b) { return static_cast<int>(a) >= static_cast<int>(b) ? a : b; }

Act ToAct(FieldAction a) { return a == FieldAction::kHide ? Act::kHide : Act::kMask; }

// Replaces every scalar inside `v` (v itself when a scalar) by "[masked]".
void MaskAllScalars(json& v) {
  std::vector<json*> stack = {&v};
  while (!stack.empty()) {
    json* cur = stack.back();
    stack.pop_back();
    if (cur->is_structured()) {
      for (json& child : *cur) {
        stack.push_back(&child);
      }
    } else {
      *cur = kMaskedValue;
    }
  }
}

bool IsInsuranceIdentifier(const json& id) {
  auto str = [&](const char* k) -> std::string_view {
    auto it = id.find(k);
    return it != id.end() && it->is_string() ? std::string_view(it->get_ref<const std::string&>())
                                             : std::string_view();
  };
  if (str("type") == "SB") {
    return true;
  }
  return vocab::IsInsuranceIdentifierSystem(str("system"));
}

// The rules resolved for one walk.
struct Plan {
  std::vector<std::pair<std::string, Act>> keys;  // plain keys, semantic names included
  Act given = Act::kNone, family = Act::kNone, identifier = Act::kNone, insurance = Act::kNone,
      address = Act::kNone, telecom = Act::kNone;

  Act ForKey(std::string_view k) const {
    for (const auto& [name, act] : keys) {
      if (name == k) {
        return act;
      }
    }
    return Act::kNone;
  }
};

// Applies an action to the members of `arr` (an array of objects) chosen by
// `pick`; mask() masks one element in place. Returns the number hit.
template <typename Pick, typename MaskFn>
size_t ApplyToElements(json& arr, Pick pick, MaskFn mask) {
  size_t count = 0;
  for (size_t i = arr.size(); i-- > 0;) {
    json& e = arr[i];
    if (!e.is_object()) {
      continue;
    }
    const Act act = pick(e);
    if (act == Act::kHide) {
      arr.erase(i);
      ++count;
    } else if (act == Act::kMask) {
      mask(e);
      ++count;
    }
  }
  return count;
}

// Applies the structural rules to the members of one object.
size_t ApplyStructural(json& obj, const Plan& plan) {
  size_t count = 0;
  auto names = obj.find("names");
  if (names != obj.end() && names->is_array() &&
      (plan.given != Act::kNone || plan.family != Act::kNone)) {
    for (json& n : *names) {
      if (!n.is_object()) {
        continue;
      }
      for (auto [member, act] : {std::pair<const char*, Act>{"given", plan.given},
                                 std::pair<const char*, Act>{"family", plan.family}}) {
        auto it = n.find(member);
        if (act == Act::kNone || it == n.end()) {
          continue;
        }
        if (act == Act::kHide) {
          n.erase(it);
        } else {
          MaskAllScalars(*it);
        }
        ++count;
      }
    }
  }
  auto ids = obj.find("identifiers");
  if (ids != obj.end() && ids->is_array() &&
      (plan.identifier != Act::kNone || plan.insurance != Act::kNone)) {
    count += ApplyToElements(
        *ids,
        [&](const json& e) {
          return Stronger(plan.identifier, IsInsuranceIdentifier(e) ? plan.insurance : Act::kNone);
        },
        [](json& e) {
          if (e.contains("value")) {
            e["value"] = kMaskedValue;
          }
        });
  }
  auto addresses = obj.find("addresses");
  if (addresses != obj.end() && addresses->is_array() && plan.address != Act::kNone) {
    count += ApplyToElements(
        *addresses, [&](const json&) { return plan.address; }, MaskAllScalars);
  }
  auto telecoms = obj.find("telecoms");
  if (telecoms != obj.end() && telecoms->is_array() && plan.telecom != Act::kNone) {
    count += ApplyToElements(
        *telecoms, [&](const json&) { return plan.telecom; },
        [](json& e) {
          if (e.contains("value")) {
            e["value"] = kMaskedValue;
          }
        });
  }
  return count;
}

// Walks every object below `root` without recursion. Plain keys are handled
// first: a key hit is replaced or removed and not visited further.
size_t Walk(json& root, const Plan& plan) {
  size_t count = 0;
  std::vector<json*> stack = {&root};
  while (!stack.empty()) {
    json* cur = stack.back();
    stack.pop_back();
    if (cur->is_array()) {
      for (json& e : *cur) {
        if (e.is_structured()) {
          stack.push_back(&e);
        }
      }
      continue;
    }
    if (!cur->is_object()) {
      continue;
    }
    std::vector<std::string> hidden;
    for (auto it = cur->begin(); it != cur->end(); ++it) {
      const Act act = plan.ForKey(it.key());
      if (act == Act::kHide) {
        hidden.push_back(it.key());
        ++count;
      } else if (act == Act::kMask) {
        it.value() = kMaskedValue;
        ++count;
      }
    }
    for (const std::string& k : hidden) {
      cur->erase(k);
    }
    count += ApplyStructural(*cur, plan);
    for (auto it = cur->begin(); it != cur->end(); ++it) {
      if (it.value().is_structured() && plan.ForKey(it.key()) == Act::kNone) {
        stack.push_back(&it.value());
      }
    }
  }
  return count;
}

}  // namespace

Result<FieldMasker> FieldMasker::Create(const std::vector<FieldRule>& rules) {
  FieldMasker m;
  for (const FieldRule& r : rules) {
    if (r.key) {
      if (r.field.empty() || r.field.size() > 64 ||
          !std::all_of(r.field.begin(), r.field.end(), IsKeyChar)) {
        return Status::InvalidArgument(
            "mask key must be 1..64 characters of A-Z, a-z, 0-9, '_', '-', '.'");
      }
    } else if (!vocab::IsSemanticField(r.field)) {
      return Status::InvalidArgument("unknown field " + Quoted(r.field) + " (known: " +
                                     KnownFieldList() + "; other JSON keys need a key rule)");
    }
    bool merged = false;
    for (const Rule& existing : m.rules_) {
      if (existing.field == r.field && existing.key == r.key) {
        if (existing.action != r.action) {
          return Status::InvalidArgument("field \"" + r.field +
                                         "\" is given both mask and hide rules");
        }
        merged = true;
      }
    }
    if (!merged) {
      m.rules_.push_back({r.field, r.action, r.key});
    }
  }
  return m;
}

Result<FieldMasker> FieldMasker::ForKeys(const std::vector<std::string>& keys, FieldAction action) {
  std::vector<FieldRule> rules;
  rules.reserve(keys.size());
  for (const std::string& k : keys) {
    rules.push_back({k, action, true});
  }
  return Create(rules);
}

Result<size_t> FieldMasker::Apply(json& j) const {
  if (!j.is_object()) {
    return Status::InvalidArgument("fields can only be masked in a JSON object");
  }
  if (internal::JsonDepth(j, kMaxJsonDepth) > kMaxJsonDepth) {
    return Status::InvalidArgument("JSON nests deeper than " + std::to_string(kMaxJsonDepth) +
                                   " levels");
  }
  if (rules_.empty()) {
    return size_t{0};
  }
  Plan plan;
  for (const Rule& r : rules_) {
    const Act act = ToAct(r.action);
    // A semantic field also matches its plain key; a key rule and a
    // semantic rule on the same name combine (hide wins).
    bool found = false;
    for (auto& [name, existing] : plan.keys) {
      if (name == r.field) {
        existing = Stronger(existing, act);
        found = true;
      }
    }
    if (!found) {
      plan.keys.emplace_back(r.field, act);
    }
    if (r.key) {
      continue;
    }
    Act* target = r.field == "given_name"         ? &plan.given
                  : r.field == "family_name"      ? &plan.family
                  : r.field == "identifier"       ? &plan.identifier
                  : r.field == "insurance_number" ? &plan.insurance
                  : r.field == "address"          ? &plan.address
                  : r.field == "telecom"          ? &plan.telecom
                                                  : nullptr;  // birth_date: the key only
    if (target != nullptr) {
      *target = Stronger(*target, act);
    }
  }
  return Walk(j, plan);
}

Result<size_t> FieldMasker::ApplyToContent(record::ContentKind kind, Bytes& content) const {
  if (rules_.empty()) {
    return size_t{0};
  }
  if (kind == record::ContentKind::kText) {
    return Status::FailedPrecondition("text segments cannot be masked field by field");
  }
  if (kind != record::ContentKind::kJson) {
    return Status::FailedPrecondition("binary segments cannot be masked field by field");
  }
  MV_ASSIGN_OR_RETURN(json j, internal::ParseJson(AsString(content), kMaxJsonDepth, "segment"));
  MV_ASSIGN_OR_RETURN(size_t count, Apply(j));
  if (count > 0) {
    MV_ASSIGN_OR_RETURN(std::string text, internal::Dump(j, "segment"));
    content = ToBytes(text);
  }
  return count;
}

// ---------------------------------------------------------------------------
// Split and join

namespace {

bool IsDocumentKey(std::string_view key) {
  return key.size() == 17 && key[0] == 'd' && std::all_of(key.begin() + 1, key.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

Result<std::vector<interop::SegmentPart>> SplitForSharing(const interop::ClinicalDocument& doc,
                                                          const Selection& selection,
                                                          const FieldMasker& masker,
                                                          const SplitOptions& options) {
  std::string key = options.document_key;
  if (key.empty()) {
    // Without a header id the key comes from the content, not from
    // nothing (which would give every such document the same key).
    key = interop::DocumentKey(doc, interop::CanonicalString(doc));
  } else if (!IsDocumentKey(key)) {
    return Status::InvalidArgument("document key must be 'd' followed by 16 lower-case hex digits");
  }
  std::vector<interop::SegmentPart> out;
  for (interop::SegmentPart& part : interop::SplitIntoSegments(doc, key, options.original)) {
    if (!selection.Matches(part.path)) {
      continue;
    }
    auto masked = masker.Apply(part.body);
    if (!masked.ok()) {
      return masked.status().WithContext("segment " + part.path);
    }
    out.push_back(std::move(part));
  }
  if (out.empty()) {
    return Status::NotFound("the selection matches none of the document's segments");
  }
  return out;
}

Result<interop::ClinicalDocument> JoinParts(std::span<const interop::SegmentPart> parts) {
  return interop::JoinSegments(parts);
}

}  // namespace medvault::engine

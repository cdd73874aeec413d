// The policy file parser and the Policy queries. The grammar is documented in
// docs/policy.md; every error names FILE:LINE and what is wrong there.
#include <algorithm>
#include <bit>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/policy.h"

namespace medvault::policy {
namespace {

constexpr size_t kMaxPolicyFileBytes = 1 << 20;
constexpr size_t kMaxPermissions = 65535;  // indices are uint16_t
constexpr size_t kMaxNameLength = 64;

struct Line {
  int number = 0;
  std::vector<std::string> tokens;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Splits a line into whitespace-separated tokens after cutting a '#' comment.
// A list written with spaces after its commas ("read, list") is one token.
std::vector<std::string> Tokenize(std::string_view line) {
  const size_t hash = line.find('#');
  if (hash != std::string_view::npos) {
    line = line.substr(0, hash);
  }
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) {
      ++i;
    }
    const size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) {
      ++i;
    }
    if (i == start) {
      break;
    }
    std::string_view tok = line.substr(start, i - start);
    if (!out.empty() && (out.back().back() == ',' || tok.front() == ',')) {
      out.back() += tok;
    } else {
      out.emplace_back(tok);
    }
  }
  return out;
}

// Names quoted for messages, cut to a readable length.
std::string Q(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string out = "'";
  out += s.substr(0, kMax);
  if (s.size() > kMax) {
    out += "...";
  }
  out += "'";
  return out;
}

bool ParseInt(std::string_view s, int* out) {
  if (s.empty() || s.size() > 9) {
    return false;
  }
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool ValidName(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameLength) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool ValidFieldName(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameLength) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

// "HH:MM" with 00:00..24:00 -> minutes of the day.
bool ParseClock(std::string_view s, int* minutes) {
  if (s.size() != 5 || s[2] != ':' || !IsDigits(s.substr(0, 2)) || !IsDigits(s.substr(3, 2))) {
    return false;
  }
  const int h = (s[0] - '0') * 10 + (s[1] - '0');
  const int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (h > 24 || m > 59 || (h == 24 && m != 0)) {
    return false;
  }
  *minutes = h * 60 + m;
  return true;
}

class Parser {
 public:
  Parser(std::string_view text, std::string_view file_name) : text_(text), file_(file_name) {}

  Result<std::shared_ptr<const Policy>> Run() {
    SplitLines();
    DeclareRoles();
    policy_ = std::make_shared<Policy>();
    for (const Line& line : lines_) {
      MV_RETURN_IF_ERROR(Statement(line));
    }
    if (version_line_ == 0) {
      return Error(1, "missing 'version 1': the file has no statements");
    }
    MV_RETURN_IF_ERROR(Finish());
    return std::shared_ptr<const Policy>(std::move(policy_));
  }

 private:
  Status Error(int line, std::string_view message) const {
    std::string m(file_);
    m += ':';
    m += std::to_string(line);
    m += ": ";
    m += message;
    return Status::InvalidArgument(std::move(m));
  }

  void SplitLines() {
    int number = 0;
    size_t start = 0;
    while (start <= text_.size()) {
      size_t end = text_.find('\n', start);
      if (end == std::string_view::npos) {
        end = text_.size();
      }
      ++number;
      Line line{number, Tokenize(text_.substr(start, end - start))};
      if (!line.tokens.empty()) {
        lines_.push_back(std::move(line));
      }
      start = end + 1;
    }
  }

  // First pass: the role names and where each is first declared, so that
  // `inherits` may name a role declared later and `permit` can tell "used
  // before its definition" from "unknown".
  void DeclareRoles() {
    for (const Line& line : lines_) {
      if (line.tokens.size() >= 2 && line.tokens[0] == "role" && ValidName(line.tokens[1]) &&
          declared_.find(line.tokens[1]) == declared_.end()) {
        const size_t id = declared_.size();
        declared_.emplace(line.tokens[1], Declared{id, line.number});
      }
    }
  }

  Status Statement(const Line& line) {
    const std::string& kw = line.tokens[0];
    if (version_line_ == 0 && kw != "version") {
      return Error(line.number, "missing 'version 1': it must be the first statement");
    }
    if (kw == "version") {
      return Version(line);
    }
    if (kw == "timezone") {
      return Timezone(line);
    }
    if (kw == "break-glass") {
      return BreakGlass(line);
    }
    if (kw == "role") {
      return Role(line);
    }
    if (kw == "permit") {
      return Permit(line);
    }
    return Error(line.number,
                 "unknown keyword " + Q(kw) + " (version, timezone, break-glass, role, permit)");
  }

  Status Version(const Line& line) {
    if (version_line_ != 0) {
      return Error(line.number,
                   "'version' given twice (first at line " + std::to_string(version_line_) + ")");
    }
    if (line.tokens.size() != 2) {
      return Error(line.number, "expected 'version 1'");
    }
    if (line.tokens[1] != "1") {
      return Error(line.number,
                   "unsupported version " + Q(line.tokens[1]) + " (this medvault reads version 1)");
    }
    version_line_ = line.number;
    return Status::Ok();
  }

  Status Timezone(const Line& line) {
    if (timezone_line_ != 0) {
      return Error(line.number,
                   "'timezone' given twice (first at line " + std::to_string(timezone_line_) + ")");
    }
    if (line.tokens.size() != 2) {
      return Error(line.number, "expected 'timezone UTC', 'timezone +HH:MM' or 'timezone -HH:MM'");
    }
    const std::string& tz = line.tokens[1];
    int offset = 0;
    if (tz != "UTC" && tz != "Z") {
      int minutes = 0;
      if (tz.size() != 6 || (tz[0] != '+' && tz[0] != '-') ||
          !ParseClock(std::string_view(tz).substr(1), &minutes) || minutes > 14 * 60) {
        return Error(line.number, "bad timezone " + Q(tz) +
                                      " (expected UTC, +HH:MM or -HH:MM, at most 14:00 from UTC)");
      }
      offset = tz[0] == '-' ? -minutes : minutes;
    }
    policy_->utc_offset_minutes_ = offset;
    timezone_line_ = line.number;
    return Status::Ok();
  }

  Status BreakGlass(const Line& line) {
    if (break_glass_line_ != 0) {
      return Error(line.number, "'break-glass' given twice (first at line " +
                                    std::to_string(break_glass_line_) + ")");
    }
    if (line.tokens.size() == 1) {
      return Error(line.number, "expected 'break-glass [duration DURATION] [min-reason N]'");
    }
    bool duration_seen = false;
    bool min_reason_seen = false;
    for (size_t i = 1; i < line.tokens.size(); i += 2) {
      const std::string& opt = line.tokens[i];
      bool* seen = nullptr;
      if (opt == "duration") {
        seen = &duration_seen;
      } else if (opt == "min-reason") {
        seen = &min_reason_seen;
      } else {
        return Error(line.number,
                     "unknown keyword " + Q(opt) + " in break-glass (duration, min-reason)");
      }
      if (*seen) {
        return Error(line.number, Q(opt) + " given twice");
      }
      *seen = true;
      if (i + 1 >= line.tokens.size()) {
        return Error(line.number, Q(opt) + " needs a value");
      }
      const std::string& value = line.tokens[i + 1];
      if (opt == "duration") {
        const std::string_view digits = std::string_view(value).substr(0, value.size() - 1);
        const char unit = value.empty() ? '\0' : value.back();
        int n = 0;
        const int64_t unit_ms = unit == 's'   ? 1000
                                : unit == 'm' ? 60000
                                : unit == 'h' ? 3600000
                                              : 0;
        if (unit_ms == 0 || !IsDigits(digits) || !ParseInt(digits, &n) ||
            int64_t{n} * unit_ms < 60000 || int64_t{n} * unit_ms > 24 * 3600000LL) {
          return Error(line.number,
                       "break-glass duration must be 1m..24h (a number and s, m or "
                       "h, e.g. 60m), got " +
                           Q(value));
        }
        policy_->break_glass_duration_ms_ = int64_t{n} * unit_ms;
      } else {
        int n = 0;
        if (!IsDigits(value) || !ParseInt(value, &n) || n < 1 || n > 1000) {
          return Error(line.number, "break-glass min-reason must be 1..1000, got " + Q(value));
        }
        policy_->break_glass_min_reason_chars_ = static_cast<size_t>(n);
      }
    }
    break_glass_line_ = line.number;
    return Status::Ok();
  }

  Status Role(const Line& line) {
    if (line.tokens.size() < 2) {
      return Error(line.number,
                   "expected 'role NAME [inherits ROLES] [clearance 0..4] [mfa] [no-health-data] "
                   "[break-glass] [assigns ROLES]'");
    }
    const std::string& name = line.tokens[1];
    if (!ValidName(name)) {
      return Error(line.number, "bad role name " + Q(name) + " (1..64 characters of a-z, 0-9, -)");
    }
    for (const RoleDef& r : policy_->roles_) {
      if (r.name == name) {
        return Error(line.number, "duplicate role " + Q(name) + " (first defined at line " +
                                      std::to_string(r.line) + ")");
      }
    }
    if (policy_->roles_.size() >= kMaxRoles) {
      return Error(line.number, "more than 64 roles");
    }
    RoleDef role;
    role.name = name;
    role.id = static_cast<RoleId>(policy_->roles_.size());
    role.line = line.number;
    bool inherits_seen = false;
    bool clearance_seen = false;
    bool assigns_seen = false;
    for (size_t i = 2; i < line.tokens.size(); ++i) {
      const std::string& opt = line.tokens[i];
      if (opt == "mfa" || opt == "no-health-data" || opt == "break-glass") {
        bool& flag = opt == "mfa"              ? role.requires_mfa
                     : opt == "no-health-data" ? role.no_health_data
                                               : role.may_break_glass;
        if (flag) {
          return Error(line.number, Q(opt) + " given twice");
        }
        flag = true;
        continue;
      }
      if (opt != "inherits" && opt != "clearance" && opt != "assigns") {
        return Error(line.number, "unknown keyword " + Q(opt) +
                                      " in role (inherits, clearance, mfa, no-health-data, "
                                      "break-glass, assigns)");
      }
      bool& seen = opt == "inherits"    ? inherits_seen
                   : opt == "clearance" ? clearance_seen
                                        : assigns_seen;
      if (seen) {
        return Error(line.number, Q(opt) + " given twice");
      }
      seen = true;
      if (i + 1 >= line.tokens.size()) {
        return Error(line.number, Q(opt) + " needs a value");
      }
      const std::string& value = line.tokens[++i];
      if (opt == "clearance") {
        int c = 0;
        if (!IsDigits(value) || !ParseInt(value, &c) || c < 0 || c > vocab::kMaxSensitivity) {
          return Error(line.number, "clearance must be 0..4, got " + Q(value));
        }
        role.clearance = c;
        continue;
      }
      std::vector<std::string_view> names;
      MV_RETURN_IF_ERROR(SplitList(line.number, value, &names));
      for (std::string_view parent : names) {
        const auto it = declared_.find(std::string(parent));
        if (it == declared_.end()) {
          return Error(line.number, "unknown role " + Q(parent) + " in " + opt);
        }
        if (it->second.id >= kMaxRoles) {
          return Error(line.number, "more than 64 roles");
        }
        const auto pid = static_cast<RoleId>(it->second.id);
        if (opt == "assigns") {
          role.assigns |= RoleSet{1} << pid;
        } else if (std::find(role.inherits.begin(), role.inherits.end(), pid) ==
                   role.inherits.end()) {
          role.inherits.push_back(pid);
        }
      }
    }
    if (role.no_health_data && role.may_break_glass) {
      return Error(line.number, "role " + Q(name) + " is no-health-data and cannot break glass");
    }
    policy_->roles_.push_back(std::move(role));
    return Status::Ok();
  }

  Status Permit(const Line& line) {
    const int n = line.number;
    if (line.tokens.size() < 3) {
      return Error(n,
                   "expected 'permit ROLES ACTIONS [on CATEGORIES] when always|treating|"
                   "consented [purpose PURPOSES] [zone ZONES] [hours HH:MM-HH:MM] "
                   "[mask FIELDS]'");
    }
    std::vector<std::string_view> role_names;
    MV_RETURN_IF_ERROR(SplitList(n, line.tokens[1], &role_names));
    std::vector<RoleId> role_ids;
    for (std::string_view rn : role_names) {
      const auto it = declared_.find(std::string(rn));
      if (it == declared_.end()) {
        return Error(n, "unknown role " + Q(rn));
      }
      if (it->second.line > n) {
        return Error(n, "role " + Q(rn) + " is used before its definition at line " +
                            std::to_string(it->second.line));
      }
      role_ids.push_back(static_cast<RoleId>(it->second.id));
    }
    Permission perm;
    perm.line = n;
    std::vector<std::string_view> action_names;
    MV_RETURN_IF_ERROR(SplitList(n, line.tokens[2], &action_names));
    bool only_segment_actions = true;
    for (std::string_view an : action_names) {
      Result<Action> a = ParseAction(an);
      if (!a.ok()) {
        return Error(n, a.status().message());
      }
      if (*a == Action::kBreakGlass) {
        return Error(n,
                     "'break-glass' is not granted by permit: give the role the "
                     "'break-glass' option");
      }
      if (!IsSegmentAction(*a)) {
        only_segment_actions = false;
      }
      perm.actions |= ActionBit(*a);
    }
    bool on_seen = false;
    bool when_seen = false;
    bool purpose_seen = false;
    bool zone_seen = false;
    bool hours_seen = false;
    bool mask_seen = false;
    for (size_t i = 3; i < line.tokens.size(); i += 2) {
      const std::string& kw = line.tokens[i];
      bool* seen = kw == "on"        ? &on_seen
                   : kw == "when"    ? &when_seen
                   : kw == "purpose" ? &purpose_seen
                   : kw == "zone"    ? &zone_seen
                   : kw == "hours"   ? &hours_seen
                   : kw == "mask"    ? &mask_seen
                                     : nullptr;
      if (seen == nullptr) {
        return Error(
            n, "unknown keyword " + Q(kw) + " in permit (on, when, purpose, zone, hours, mask)");
      }
      if (*seen) {
        return Error(n, Q(kw) + " given twice");
      }
      *seen = true;
      if (i + 1 >= line.tokens.size()) {
        return Error(n, Q(kw) + " needs a value");
      }
      const std::string& value = line.tokens[i + 1];
      if (kw == "when") {
        if (value == "always") {
          perm.basis = Basis::kAlways;
        } else if (value == "treating") {
          perm.basis = Basis::kTreating;
        } else if (value == "consented") {
          perm.basis = Basis::kConsented;
        } else {
          return Error(n, "unknown basis " + Q(value) + " (always, treating, consented)");
        }
        continue;
      }
      if (kw == "hours") {
        const size_t dash = value.find('-');
        int start = 0;
        int end = 0;
        if (dash == std::string::npos ||
            !ParseClock(std::string_view(value).substr(0, dash), &start) ||
            !ParseClock(std::string_view(value).substr(dash + 1), &end) || start == 24 * 60) {
          return Error(n, "bad hours " + Q(value) +
                              " (expected HH:MM-HH:MM from 00:00 to 24:00, e.g. 07:00-19:00; "
                              "22:00-06:00 spans midnight)");
        }
        if (start == end) {
          return Error(n, "bad hours " + Q(value) + ": the window is empty");
        }
        perm.start_minute = start;
        perm.end_minute = end;
        continue;
      }
      std::vector<std::string_view> items;
      MV_RETURN_IF_ERROR(SplitList(n, value, &items));
      if (kw == "on") {
        if (items.size() == 1 && items[0] == "*") {
          continue;  // every category: categories stay empty
        }
        if (!only_segment_actions) {
          return Error(n,
                       "'on' applies only to read, list, write and export (the other actions "
                       "have no category): split the line or use 'on *'");
        }
        for (std::string_view c : items) {
          if (c == "*") {
            return Error(n, "'*' must stand alone in 'on'");
          }
          if (!vocab::IsCategory(c)) {
            std::string known;
            for (std::string_view k : vocab::kCategories) {
              known += known.empty() ? "" : ", ";
              known += k;
            }
            return Error(n, "unknown category " + Q(c) + " (" + known + ")");
          }
          if (std::find(perm.categories.begin(), perm.categories.end(), c) ==
              perm.categories.end()) {
            perm.categories.emplace_back(c);
          }
        }
      } else if (kw == "purpose") {
        for (std::string_view p : items) {
          Result<Purpose> purpose = ParsePurpose(p);
          if (!purpose.ok()) {
            return Error(n, purpose.status().message());
          }
          perm.purposes |= PurposeBit(*purpose);
        }
      } else if (kw == "zone") {
        for (std::string_view z : items) {
          Result<NetworkZone> zone = ParseNetworkZone(z);
          if (!zone.ok()) {
            return Error(n, zone.status().message());
          }
          perm.zones |= ZoneBit(*zone);
        }
      } else {  // mask
        for (std::string_view f : items) {
          if (!ValidFieldName(f)) {
            return Error(n, "bad field name " + Q(f) +
                                " in mask (1..64 characters of A-Z, a-z, 0-9, _, -, .)");
          }
          perm.mask_fields.emplace_back(f);
        }
      }
    }
    if (!when_seen) {
      return Error(n, "permit needs 'when always', 'when treating' or 'when consented'");
    }
    for (RoleId id : role_ids) {
      if (policy_->permissions_.size() >= kMaxPermissions) {
        return Error(n, "more than 65535 permissions");
      }
      Permission p = perm;
      p.role = id;
      policy_->permissions_.push_back(std::move(p));
    }
    return Status::Ok();
  }

  Status SplitList(int line, std::string_view value, std::vector<std::string_view>* out) const {
    out->clear();
    size_t start = 0;
    while (true) {
      const size_t comma = value.find(',', start);
      const std::string_view item = value.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      if (item.empty()) {
        return Error(line, "empty item in list " + Q(value));
      }
      out->push_back(item);
      if (comma == std::string_view::npos) {
        return Status::Ok();
      }
      start = comma + 1;
    }
  }

  // Inheritance closure (rejecting cycles), then the tables Decide() uses.
  Status Finish() {
    std::vector<RoleDef>& roles = policy_->roles_;
    // 0 = not visited, 1 = on the current path, 2 = done.
    std::vector<int> state(roles.size(), 0);
    std::vector<RoleId> path;
    for (const RoleDef& r : roles) {
      MV_RETURN_IF_ERROR(Visit(r.id, &state, &path));
    }
    for (const RoleDef& r : roles) {
      const RoleSet bit = RoleSet{1} << r.id;
      policy_->defined_roles_ |= bit;
      if (r.requires_mfa) {
        policy_->mfa_roles_ |= bit;
      }
      if (r.no_health_data) {
        policy_->no_health_data_roles_ |= bit;
      }
      if (r.may_break_glass) {
        policy_->break_glass_roles_ |= bit;
      }
    }
    for (size_t i = 0; i < policy_->permissions_.size(); ++i) {
      const Permission& p = policy_->permissions_[i];
      if ((roles[p.role].closure & policy_->no_health_data_roles_) != 0) {
        for (size_t a = 0; a < kActionCount; ++a) {
          if ((p.actions & ActionBit(static_cast<Action>(a))) != 0 &&
              IsHealthDataAction(static_cast<Action>(a))) {
            return Error(p.line, "role " + Q(roles[p.role].name) +
                                     " is no-health-data (or inherits such a role) and cannot be "
                                     "permitted " +
                                     Q(ActionName(static_cast<Action>(a))));
          }
        }
      }
      for (size_t a = 0; a < kActionCount; ++a) {
        if ((p.actions & ActionBit(static_cast<Action>(a))) != 0) {
          policy_->permissions_by_action_[a].push_back(static_cast<uint16_t>(i));
        }
      }
    }
    return Status::Ok();
  }

  Status Visit(RoleId id, std::vector<int>* state, std::vector<RoleId>* path) {
    std::vector<RoleDef>& roles = policy_->roles_;
    if ((*state)[id] == 2) {
      return Status::Ok();
    }
    (*state)[id] = 1;
    path->push_back(id);
    RoleSet closure = RoleSet{1} << id;
    for (RoleId parent : roles[id].inherits) {
      if (parent >= roles.size()) {
        return Error(roles[id].line, "inherits an undefined role");
      }
      if ((*state)[parent] == 1) {
        std::string cycle;
        const auto from = std::find(path->begin(), path->end(), parent);
        for (auto it = from; it != path->end(); ++it) {
          cycle += roles[*it].name;
          cycle += " -> ";
        }
        cycle += roles[parent].name;
        return Error(roles[id].line, "inheritance cycle: " + cycle);
      }
      MV_RETURN_IF_ERROR(Visit(parent, state, path));
      closure |= roles[parent].closure;
    }
    roles[id].closure = closure;
    path->pop_back();
    (*state)[id] = 2;
    return Status::Ok();
  }

  struct Declared {
    size_t id = 0;
    int line = 0;
  };

  std::string_view text_;
  std::string_view file_;
  std::vector<Line> lines_;
  std::unordered_map<std::string, Declared> declared_;
  std::shared_ptr<Policy> policy_;
  int version_line_ = 0;
  int timezone_line_ = 0;
  int break_glass_line_ = 0;
};

}  // namespace

Result<std::shared_ptr<const Policy>> Policy::Parse(std::string_view text,
                                                    std::string_view file_name) {
  if (text.size() > kMaxPolicyFileBytes) {
    return Status::InvalidArgument(std::string(file_name) + ": policy file is larger than 1 MiB");
  }
  return Parser(text, file_name).Run();
}

Result<std::shared_ptr<const Policy>> Policy::Load(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    return Status::NotFound("policy file " + file.string() + " does not exist");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Status::IOError("cannot open policy file " + file.string());
  }
  std::string text;
  text.resize(kMaxPolicyFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    return Status::IOError("cannot read policy file " + file.string());
  }
  text.resize(static_cast<size_t>(in.gcount()));
  return Parse(text, file.string());
}

Result<RoleId> Policy::RoleIdOf(std::string_view name) const {
  for (const RoleDef& r : roles_) {
    if (r.name == name) {
      return r.id;
    }
  }
  return Status::InvalidArgument("unknown role " + Q(name));
}

Result<RoleSet> Policy::RolesOf(const std::vector<std::string>& names) const {
  RoleSet set = 0;
  for (const std::string& name : names) {
    MV_ASSIGN_OR_RETURN(RoleId id, RoleIdOf(name));
    set |= RoleSet{1} << id;
  }
  return set;
}

RoleSet Policy::Expand(RoleSet roles) const {
  RoleSet rest = roles & defined_roles_;
  RoleSet out = 0;
  while (rest != 0) {
    const int id = std::countr_zero(rest);
    out |= roles_[static_cast<size_t>(id)].closure;
    rest &= rest - 1;
  }
  return out;
}

int Policy::ClearanceOf(RoleSet roles) const {
  RoleSet rest = Expand(roles);
  int clearance = 0;
  while (rest != 0) {
    const int id = std::countr_zero(rest);
    clearance = std::max(clearance, roles_[static_cast<size_t>(id)].clearance);
    rest &= rest - 1;
  }
  return clearance;
}

bool Policy::RequiresMfa(RoleSet roles) const { return (Expand(roles) & mfa_roles_) != 0; }

RoleSet Policy::AssignableBy(RoleSet roles) const {
  RoleSet rest = Expand(roles);
  RoleSet out = 0;
  while (rest != 0) {
    const int id = std::countr_zero(rest);
    out |= roles_[static_cast<size_t>(id)].assigns;
    rest &= rest - 1;
  }
  return out;
}

bool Policy::MayBreakGlass(RoleSet roles) const {
  return (Expand(roles) & break_glass_roles_) != 0;
}

bool Policy::HasNoHealthDataRole(RoleSet roles) const {
  return (Expand(roles) & no_health_data_roles_) != 0;
}

}  // namespace medvault::policy

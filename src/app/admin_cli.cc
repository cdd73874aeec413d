// Administration from the command line, on a data directory: institutions,
// departments, accounts, credentials, relationships. For bootstrapping (the
// first admin) and for operators on the machine; day-to-day administration
// goes through the API, where the decision point applies.
//
// Changes made here while a server runs on the same directory reach it
// through the database: new accounts and passwords at once; revocations,
// disabling and role changes on its very next authentication of the account,
// relationships within its change watcher's period (the change log,
// docs/architecture.md).
#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <ctime>
#include <iostream>

#include "app/app.h"
#include "app/cli_internal.h"
#include "app/command.h"
#include "common/bytes.h"
#include "common/file_util.h"

namespace medvault::app {
namespace {

constexpr std::string_view kAdminUsage =
    "usage:\n"
    "  medvault institution create --name NAME [--data DIR]\n"
    "  medvault institution list [--data DIR]\n"
    "  medvault department create --institution ID --name NAME [--data DIR]\n"
    "  medvault department list --institution ID [--data DIR]\n"
    "  medvault account create --username NAME --display-name NAME --role ROLE[,ROLE...]\n"
    "                          [--institution ID] [--department ID] [--patient ID]\n"
    "                          [--home-institution ID]\n"
    "                          [--password-stdin] [--enroll-totp] [--data DIR]\n"
    "  medvault account list [--institution ID] [--data DIR]\n"
    "  medvault account roles --id ACCOUNT --role ROLE[,ROLE...] [--data DIR]\n"
    "  medvault account disable|enable|revoke-sessions|reset-totp --id ACCOUNT [--data DIR]\n"
    "  medvault account reset-password --id ACCOUNT [--password-stdin] [--data DIR]\n"
    "  medvault relationship start --patient ID --clinician ACCOUNT [--data DIR]\n"
    "  medvault relationship end --patient ID --id RELATIONSHIP [--data DIR]\n"
    "  medvault totp-code SECRET\n"
    "\n"
    "Without --password-stdin a strong random password is generated and printed once.\n"
    "A TOTP secret is printed once when one is enrolled (always for clinical and admin\n"
    "roles). Roles are those of the access policy (DIR/policy.conf).\n";

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const std::string part = s.substr(start, comma == std::string::npos ? comma : comma - start);
    if (!part.empty()) {
      out.push_back(part);
    }
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

std::string NewPassword() {
  uint8_t raw[15];
  crypto::RandomBytes(raw);
  std::string pw = ToBase64Url(ByteView(raw, sizeof raw)) + "-Aa1";
  sodium_memzero(raw, sizeof raw);
  return pw;
}

Result<std::string> PasswordFrom(const ParsedArgs& args, bool* generated) {
  *generated = false;
  for (const std::string& s : args.switches) {
    if (s == "password-stdin") {
      std::string line;
      std::getline(std::cin, line);
      if (line.empty()) {
        return Status::InvalidArgument("no password on standard input");
      }
      return line;
    }
  }
  *generated = true;
  return NewPassword();
}

std::string Need(const ParsedArgs& args, const std::string& name, Status* st) {
  auto it = args.values.find(name);
  if (it == args.values.end() || it->second.empty()) {
    if (st->ok()) {
      *st = Status::InvalidArgument("--" + name + " is required");
    }
    return "";
  }
  return it->second;
}

std::string Opt(const ParsedArgs& args, const std::string& name) {
  auto it = args.values.find(name);
  return it == args.values.end() ? "" : it->second;
}

bool Has(const ParsedArgs& args, const std::string& sw) {
  return std::find(args.switches.begin(), args.switches.end(), sw) != args.switches.end();
}

void PrintAccount(const auth::Account& a) {
  std::string roles;
  for (const std::string& r : a.roles) {
    roles += (roles.empty() ? "" : ",") + r;
  }
  std::cout << a.account_id << "\t" << a.username << "\t" << roles << "\t"
            << (a.institution_id.empty() ? "-" : a.institution_id) << "\t"
            << (a.disabled ? "disabled" : "active") << "\n";
}

int AdminBody(const std::string& noun, const std::string& verb, const Command& cmd) {
  const ParsedArgs& args = cmd.args();
  auto opened = cmd.OpenRuntime();
  if (!opened.ok()) {
    return Fail(opened.status());
  }
  Runtime& rt = **opened;
  // The console's acts: account changes name actor "cli" in the ledger.
  enforce::Scope scope(rt.enforce_deps(), enforce::ConsoleContext(noun + " " + verb));
  Status st;
  if (noun == "institution" && verb == "create") {
    const std::string name = Need(args, "name", &st);
    if (!st.ok()) {
      return Fail(st);
    }
    auto inst = rt.accounts->CreateInstitution(name);
    if (!inst.ok()) {
      return Fail(inst.status());
    }
    std::cout << inst->institution_id << "\t" << inst->name << "\n";
    return 0;
  }
  if (noun == "institution" && verb == "list") {
    auto all = rt.accounts->ListInstitutions();
    if (!all.ok()) {
      return Fail(all.status());
    }
    for (const auto& i : *all) {
      std::cout << i.institution_id << "\t" << i.name << "\n";
    }
    return 0;
  }
  if (noun == "department" && verb == "create") {
    const std::string inst = Need(args, "institution", &st);
    const std::string name = Need(args, "name", &st);
    if (!st.ok()) {
      return Fail(st);
    }
    auto d = rt.accounts->CreateDepartment(inst, name);
    if (!d.ok()) {
      return Fail(d.status());
    }
    std::cout << d->department_id << "\t" << d->name << "\n";
    return 0;
  }
  if (noun == "department" && verb == "list") {
    const std::string inst = Need(args, "institution", &st);
    if (!st.ok()) {
      return Fail(st);
    }
    auto all = rt.accounts->ListDepartments(inst);
    if (!all.ok()) {
      return Fail(all.status());
    }
    for (const auto& d : *all) {
      std::cout << d.department_id << "\t" << d.name << "\n";
    }
    return 0;
  }
  if (noun == "account" && verb == "create") {
    auth::NewAccount n;
    n.username = Need(args, "username", &st);
    n.display_name = Need(args, "display-name", &st);
    n.roles = SplitComma(Need(args, "role", &st));
    if (!st.ok()) {
      return Fail(st);
    }
    n.institution_id = Opt(args, "institution");
    n.department_id = Opt(args, "department");
    n.patient_id = Opt(args, "patient");
    // A personal account's home: the institution whose administrators may
    // start its recovery (none: only a platform administrator may).
    n.home_institution_id = Opt(args, "home-institution");
    n.enroll_totp = Has(args, "enroll-totp");
    if (!n.patient_id.empty()) {
      auto p = rt.records->GetPatient(n.patient_id);
      if (!p.ok() || p->erased) {
        return Fail(Status::InvalidArgument("--patient is not a known patient"));
      }
    }
    bool generated = false;
    auto pw = PasswordFrom(args, &generated);
    if (!pw.ok()) {
      return Fail(pw.status());
    }
    n.password = std::move(*pw);
    auto created = rt.accounts->CreateAccount(n);
    if (!created.ok()) {
      return Fail(created.status());
    }
    PrintAccount(created->account);
    if (generated) {
      std::cout << "password: " << n.password << "   (shown once)\n";
    }
    if (!created->totp_secret_base32.empty()) {
      std::cout << "totp secret: " << created->totp_secret_base32 << "   (shown once)\n"
                << "otpauth uri: " << created->otpauth_uri << "\n";
    }
    sodium_memzero(n.password.data(), n.password.size());
    return 0;
  }
  if (noun == "account" && verb == "list") {
    auto all = rt.accounts->ListAccounts(Opt(args, "institution"));
    if (!all.ok()) {
      return Fail(all.status());
    }
    for (const auto& a : *all) {
      PrintAccount(a);
    }
    return 0;
  }
  if (noun == "account") {
    const std::string id = Need(args, "id", &st);
    if (!st.ok()) {
      return Fail(st);
    }
    if (verb == "roles") {
      st = rt.accounts->SetRoles(id, SplitComma(Need(args, "role", &st)));
    } else if (verb == "disable" || verb == "enable") {
      st = rt.accounts->SetDisabled(id, verb == "disable");
    } else if (verb == "revoke-sessions") {
      st = rt.accounts->RevokeAllSessions(id);
    } else if (verb == "reset-totp") {
      auto c = rt.accounts->ResetTotp(id);
      if (!c.ok()) {
        return Fail(c.status());
      }
      std::cout << "totp secret: " << c->totp_secret_base32 << "   (shown once)\n";
      return 0;
    } else if (verb == "reset-password") {
      bool generated = false;
      auto pw = PasswordFrom(args, &generated);
      if (!pw.ok()) {
        return Fail(pw.status());
      }
      st = rt.accounts->ResetPassword(id, *pw);
      if (st.ok() && generated) {
        std::cout << "password: " << *pw << "   (shown once)\n";
      }
    } else {
      return Fail(Status::InvalidArgument("unknown account command '" + verb + "'"));
    }
    if (!st.ok()) {
      return Fail(st);
    }
    std::cout << "ok\n";
    return 0;
  }
  if (noun == "relationship") {
    const std::string patient = Need(args, "patient", &st);
    if (!st.ok()) {
      return Fail(st);
    }
    if (verb == "start") {
      const std::string clinician = Need(args, "clinician", &st);
      if (!st.ok()) {
        return Fail(st);
      }
      auto p = rt.records->GetPatient(patient);
      if (!p.ok() || p->erased) {
        return Fail(Status::InvalidArgument("--patient is not a known patient"));
      }
      auto r = rt.access->StartRelationship(patient, clinician);
      if (!r.ok()) {
        return Fail(r.status());
      }
      std::cout << r->relationship_id << "\n";
      return 0;
    }
    if (verb == "end") {
      const std::string id = Need(args, "id", &st);
      if (!st.ok()) {
        return Fail(st);
      }
      st = rt.access->EndRelationship(patient, id);
      if (!st.ok()) {
        return Fail(st);
      }
      std::cout << "ok\n";
      return 0;
    }
  }
  return Fail(Status::InvalidArgument("unknown command '" + noun + " " + verb + "'"));
}

}  // namespace

Status WritePrivateFile(const std::filesystem::path& path, std::string_view content) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  return WriteNewPrivateFile(path, AsBytes(content));
}

int RunAdmin(int argc, char** argv) {
  const std::string noun = argv[1];
  if (noun == "totp-code") {
    if (argc != 3 || std::string(argv[2]) == "--help") {
      std::cout << "usage: medvault totp-code SECRET   (base32, as printed at enrolment)\n";
      return argc == 3 ? 0 : 2;
    }
    auto secret = auth::Base32Decode(argv[2]);
    if (!secret.ok() || secret->empty()) {
      return Fail(Status::InvalidArgument("the secret is not base32"));
    }
    std::cout << auth::TotpCode(*secret, static_cast<int64_t>(std::time(nullptr)), {}) << "\n";
    return 0;
  }
  if (argc < 3 || std::string(argv[2]) == "--help" || std::string(argv[2]) == "-h") {
    std::cout << kAdminUsage;
    return argc < 3 ? 2 : 0;
  }
  const std::string verb = argv[2];
  static const CommandSpec spec{
      .usage = kAdminUsage,
      .values = {"data", "config", "name", "institution", "department", "username", "display-name",
                 "role", "patient", "id", "clinician", "home-institution"},
      .switches = {"password-stdin", "enroll-totp"},
      .positional = false,
      .settings = SettingFlags::kData,
      .first = 3};
  return RunCommand(spec, argc, argv,
                    [&](const Command& cmd) { return AdminBody(noun, verb, cmd); });
}

}  // namespace medvault::app

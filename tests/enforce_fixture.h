// A real data directory for the enforcement layer's tests: the runtime (the
// decision point, the ledger, the record service, accounts), one doctor of
// one institution, and one patient created by the console.
#pragma once

#include <gtest/gtest.h>

#include "app/app.h"
#include "enforce/enforce.h"
#include "test_util.h"

namespace medvault::testing {

class EnforceFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::InitCrypto().ok());
    ASSERT_TRUE(app::InitDataDir(dir_.path() / "data", false).ok());
    app::Config config;
    config.data_dir = (dir_.path() / "data").string();
    config.argon2_memory_kib = 8;  // cheap hashing: the cost is a setting
    config.argon2_iterations = 1;
    auto rt = app::OpenRuntime(config);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    rt_ = std::move(*rt);
    auto inst = rt_->accounts->CreateInstitution("Enforce Hospital");
    ASSERT_TRUE(inst.ok());
    auth::NewAccount n;
    n.username = "dr.enforce";
    n.display_name = "Dr Enforce";
    n.password = "Correct-Horse-Battery-Staple-9";
    n.roles = {"doctor"};
    n.institution_id = inst->institution_id;
    auto made = rt_->accounts->CreateAccount(n);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    doctor_ = made->account;
    enforce::Scope console(rt_->enforce_deps(), enforce::ConsoleContext("test"));
    auto p = rt_->records->CreatePatient({"Ada", "Enforce", "1956-03-14", "female", "MRN-E"}, "t");
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    patient_ = p->patient_id;
  }

  // The doctor acting from the console (`--as`), for treatment.
  enforce::RequestContext DoctorContext() {
    auto roles = rt_->decisions->policy().RolesOf(doctor_.roles);
    EXPECT_TRUE(roles.ok());
    return enforce::AccountContext(doctor_, *roles, policy::Purpose::kTreatment, "test");
  }

  // The ledger's size with every committed row loaded (writes through the
  // other stores' connections reach the tree at the next Sync).
  uint64_t LedgerSize() {
    EXPECT_TRUE(rt_->ledger->Sync().ok());
    return rt_->ledger->Size();
  }

  // The entries appended at `from` and after, decoded.
  std::vector<ledger::Entry> EntriesSince(uint64_t from) {
    std::vector<ledger::Entry> out;
    for (uint64_t seq = from; seq < LedgerSize(); ++seq) {
      auto rec = rt_->ledger->GetEntry(seq);
      EXPECT_TRUE(rec.ok());
      if (rec.ok()) {
        out.push_back(rec->entry);
      }
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<app::Runtime> rt_;
  auth::Account doctor_;
  std::string patient_;
};

}  // namespace medvault::testing

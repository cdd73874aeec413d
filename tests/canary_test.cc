// Nothing identifiable at rest in plaintext: distinctive canary strings are
// written through the HTTP API into every kind of field, then every byte
// under the data directory (database, WAL, shared memory, objects, temp
// files) is scanned. Run both with the WAL still full and after a restart.
#include <gtest/gtest.h>

#include "server_fixture.h"

namespace medvault {
namespace {

using nlohmann::json;
using testing::FilesContaining;

class CanaryTest : public testing::ServerFixture {};

TEST_F(CanaryTest, NoCanaryReachesTheDisk) {
  const std::vector<std::string> canaries = {
      "Qzxgivencanary",    "Wqvfamilycanary", "1931-07-19",           "CANARY-MRN-58213",
      "qjx-systolic-note", "Xylocanarytext",  "ZZattachmentcanaryZZ", "cardiocanaryfinding"};
  json patient = {{"given_name", canaries[0]},
                  {"family_name", canaries[1]},
                  {"birth_date", canaries[2]},
                  {"sex", "other"},
                  {"identifier", canaries[3]}};
  auto res = Post("/api/v1/patients", patient.dump());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201);
  const std::string id = json::parse(res->body)["patient_id"];
  Treat(id);
  const std::string base = "/api/v1/patients/" + id;
  auto bp = Bp(141, 93);
  bp["note"] = canaries[4];
  ASSERT_EQ(
      Put(base + "/segments/physical-signs/blood-pressure", json{{"data", bp}}.dump())->status,
      201);
  ASSERT_EQ(
      Put(base + "/segments/doctor-description/consultation", json{{"text", canaries[5]}}.dump())
          ->status,
      201);
  ASSERT_EQ(
      Put(base + "/attachments/radiology/report", "%PDF " + canaries[6], "application/pdf")->status,
      201);
  ASSERT_EQ(Put(base + "/segments/internal-medicine/cardiology/ecg",
                json{{"data", {{"finding", canaries[7]}}}}.dump())
                ->status,
            201);
  // Searching by name works through the blind index, not plaintext.
  auto found = Post("/api/v1/patients/search", json{{"family_name", canaries[1]}}.dump());
  ASSERT_TRUE(found);
  ASSERT_EQ(json::parse(found->body)["patients"].size(), 1u);
  // The API gives the data back...
  auto back = Get(base + "/segments/doctor-description/consultation");
  ASSERT_TRUE(back);
  EXPECT_EQ(json::parse(back->body)["text"], canaries[5]);

  // ...but the disk never holds it, with the WAL as written...
  for (const std::string& canary : canaries) {
    EXPECT_TRUE(FilesContaining(data_, canary).empty()) << canary;
  }
  // ...nor after a restart has checkpointed it.
  StopServer();
  StartServer();
  for (const std::string& canary : canaries) {
    EXPECT_TRUE(FilesContaining(data_, canary).empty()) << canary;
  }
  auto again = Get(base + "/segments/internal-medicine/cardiology/ecg");
  ASSERT_TRUE(again);
  EXPECT_EQ(json::parse(again->body)["data"]["finding"], canaries[7]);
}

}  // namespace
}  // namespace medvault

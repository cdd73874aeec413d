#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <regex>
#include <thread>

#include "server_fixture.h"

namespace medvault {
namespace {

using nlohmann::json;
using testing::ServerFixture;

class HttpServerTest : public ServerFixture {};

// A raw TCP connection from a chosen loopback address, for what httplib's
// client will not send (malformed framing, slow bytes).
class RawConn {
 public:
  RawConn(int port, const std::string& source = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, source.c_str(), &src.sin_addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof(src)), 0);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) == 0;
  }
  ~RawConn() { ::close(fd_); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  bool connected() const { return connected_; }
  bool Send(std::string_view s) {
    return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  void EndSending() { ::shutdown(fd_, SHUT_WR); }
  // Reads until the server closes the connection (true) or `seconds` pass.
  bool ReadUntilClosed(double seconds, std::string* got) {
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(static_cast<int>(seconds * 1000));
    char buf[4096];
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) {
        continue;
      }
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        return true;
      }
      got->append(buf, static_cast<size_t>(n));
    }
    return false;
  }
  // Sends a whole request and returns what came back until the close.
  std::string Exchange(std::string_view request) {
    Send(request);
    std::string got;
    EXPECT_TRUE(ReadUntilClosed(10, &got)) << "connection left open";
    return got;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

TEST_F(HttpServerTest, ProbesAreOpenEverythingElseNeedsTheToken) {
  httplib::Client anon("127.0.0.1", server_->port());
  auto h = anon.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto r = anon.Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["schema_version"], 3);
  ExpectError(anon.Get("/metrics"), 401, "UNAUTHENTICATED");
  ExpectError(anon.Get("/api/v1/nonexistent"), 401, "UNAUTHENTICATED");
  ExpectError(anon.Get("/anything-else"), 401, "UNAUTHENTICATED");
  // HEAD is as public as its GET; signed in, an unknown path is a 404.
  auto head = anon.Head("/healthz");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  ExpectError(Get("/api/v1/nonexistent"), 404, "NOT_FOUND");
}

// Each route's own limit applies to the length a client declares, before a
// byte of the body is read: a JSON route's (public or not), not the
// document or attachment limits, and the connection closes.
TEST_F(HttpServerTest, DeclaredBodiesOverTheRoutesLimitAreRefusedUnread) {
  for (const std::string& head :
       {std::string("POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n"),
        "POST /api/v1/patients HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token_ +
            "\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n"}) {
    RawConn c(server_->port());
    ASSERT_TRUE(c.Send(head));  // and no body
    std::string got;
    EXPECT_TRUE(c.ReadUntilClosed(5, &got));
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 413") << got.substr(0, 120);
    EXPECT_NE(got.find("limit of 1048576 bytes"), std::string::npos) << got;
  }
}

// Enumerates every data route the server registered and checks that none
// answers without a valid token, with no token, a wrong one, a truncated one
// or a different scheme.
TEST_F(HttpServerTest, EveryDataRouteRefusesMissingOrForgedTokens) {
  const std::string id = CreatePatient();
  auto routes = server_->DataRoutes();
  ASSERT_GE(routes.size(), 12u);
  const std::vector<std::string> bad_headers = {"",
                                                "Bearer ",
                                                "Bearer wrong",
                                                "Bearer " + token_.substr(0, token_.size() - 1),
                                                "Bearer " + token_ + "x",
                                                "Basic " + token_,
                                                "bearer " + token_};
  for (const std::string& route : routes) {
    const std::string method = route.substr(0, route.find(' '));
    std::string path = route.substr(route.find(' ') + 1);
    path = std::regex_replace(path, std::regex("\\{id\\}"), id);
    path = std::regex_replace(path, std::regex("\\{path\\}"), "other/x");
    for (const std::string& header : bad_headers) {
      httplib::Client c("127.0.0.1", server_->port());
      httplib::Headers headers;
      if (!header.empty()) {
        headers.emplace("Authorization", header);
      }
      httplib::Result res = [&]() {
        if (method == "GET") {
          return c.Get(path.c_str(), headers);
        }
        if (method == "DELETE") {
          return c.Delete(path.c_str(), headers);
        }
        if (method == "POST") {
          return c.Post(path.c_str(), headers, "{}", "application/json");
        }
        return c.Put(path.c_str(), headers, "{}", "application/json");
      }();
      ExpectError(res, 401, "UNAUTHENTICATED");
      EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Bearer realm=\"medvault\"");
    }
  }
  // The patient was not erased by the DELETE attempts.
  auto p = Get("/api/v1/patients/" + id);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 200);
}

TEST_F(HttpServerTest, PatientLifecycle) {
  const std::string id = CreatePatient("Example", "MRN-42");
  ASSERT_EQ(id.size(), 32u);
  auto got = Get("/api/v1/patients/" + id);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->status, 200);
  EXPECT_EQ(json::parse(got->body)["family_name"], "Example");

  auto found = Post("/api/v1/patients/search", R"({"identifier":"MRN-42"})");
  ASSERT_TRUE(found);
  ASSERT_EQ(found->status, 200) << found->body;
  ASSERT_EQ(json::parse(found->body)["patients"].size(), 1u);

  auto list = Get("/api/v1/patients?limit=10");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200);
  EXPECT_EQ(json::parse(list->body)["patient_ids"][0], id);

  // Erasure is the privacy officer's act (on the patient's request), not a
  // treating doctor's.
  ExpectError(Delete("/api/v1/patients/" + id), 403, "PERMISSION_DENIED");
  auto officer = ClientWith(SignIn(MakeAccount("privacy.test", {"privacy-officer"})));
  auto del = officer->Delete(("/api/v1/patients/" + id).c_str());
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200) << del->body;
  auto gone = runtime_->records->GetPatient(id);
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->erased);
  EXPECT_FALSE(gone->demographics.has_value());
  EXPECT_TRUE(runtime_->policy_data->RelationshipsOf(id).empty())
      << "erasure forgets the patient's relationships and consents too";
  // The doctor's relationship went with the record.
  ExpectError(Get("/api/v1/patients/" + id), 403, "PERMISSION_DENIED");
  ExpectError(officer->Delete(("/api/v1/patients/" + id).c_str()), 404, "NOT_FOUND");
}

TEST_F(HttpServerTest, SegmentsVersionsAndTree) {
  const std::string id = CreatePatient();
  const std::string base = "/api/v1/patients/" + id;
  for (int i = 0; i < 3; ++i) {
    auto w = Put(base + "/segments/physical-signs/blood-pressure",
                 json{{"data", Bp(120 + i, 80)}}.dump());
    ASSERT_TRUE(w);
    ASSERT_EQ(w->status, 201) << w->body;
    EXPECT_EQ(json::parse(w->body)["version"], i + 1);
  }
  auto t = Put(base + "/segments/life-record/mood",
               json{{"text", "Tired but hopeful"}, {"sensitivity", 3}}.dump());
  ASSERT_TRUE(t);
  ASSERT_EQ(t->status, 201) << t->body;
  EXPECT_EQ(json::parse(t->body)["sensitivity"], 3);

  auto latest = Get(base + "/segments/physical-signs/blood-pressure");
  ASSERT_TRUE(latest);
  ASSERT_EQ(latest->status, 200);
  auto lj = json::parse(latest->body);
  EXPECT_EQ(lj["version"], 3);
  EXPECT_EQ(lj["data"]["systolic"], 122);
  EXPECT_EQ(lj["kind"], "json");

  auto v1 = Get(base + "/segments/physical-signs/blood-pressure?version=1");
  ASSERT_TRUE(v1);
  EXPECT_EQ(json::parse(v1->body)["data"]["systolic"], 120);

  auto text = Get(base + "/segments/life-record/mood");
  ASSERT_TRUE(text);
  EXPECT_EQ(json::parse(text->body)["text"], "Tired but hopeful");

  auto versions = Get(base + "/versions/physical-signs/blood-pressure");
  ASSERT_TRUE(versions);
  ASSERT_EQ(versions->status, 200);
  EXPECT_EQ(json::parse(versions->body)["versions"].size(), 3u);

  auto tree = Get(base + "/segments");
  ASSERT_TRUE(tree);
  auto tj = json::parse(tree->body);
  ASSERT_EQ(tj["segments"].size(), 2u);
  auto sub = Get(base + "/segments?prefix=physical-signs");
  ASSERT_TRUE(sub);
  EXPECT_EQ(json::parse(sub->body)["segments"].size(), 1u);

  auto types = Get("/api/v1/segment-types");
  ASSERT_TRUE(types);
  EXPECT_GE(json::parse(types->body)["segment_types"].size(), 10u);
}

// Rows of the ledger table, read through a connection of our own (what is
// durable in the file, not what the server holds in memory).
int64_t LedgerRows(const std::filesystem::path& db_file) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM ledger_entries", -1, &st, nullptr),
            SQLITE_OK);
  int64_t n = -1;
  if (sqlite3_step(st) == SQLITE_ROW) {
    n = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

void ExecSql(const std::filesystem::path& db_file, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_file.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// A read's answer is held (no worker waits) until its ledger entry is
// durable: every answer received finds its entry in the file already, also
// with many readers at once. When the entry cannot be made durable (a fault
// injected in the real database: a trigger that refuses ledger rows), the
// held answer leaves as 503 with nothing of the record and no decision
// header; once the fault is gone, reads answer again.
TEST_F(HttpServerTest, ReadAnswersWaitForTheirAuditAndAFailedAuditAnswersNothing) {
  const std::string id = CreatePatient();
  const std::string seg = "/api/v1/patients/" + id + "/segments/physical-signs/blood-pressure";
  auto w = Put(seg, json{{"data", Bp(131, 84)}}.dump());
  ASSERT_TRUE(w);
  ASSERT_EQ(w->status, 201) << w->body;
  const std::filesystem::path db = app::DataDirLayout(data_).metadata_db;

  for (int i = 0; i < 10; ++i) {
    const int64_t before = LedgerRows(db);
    auto r = Get(seg);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(json::parse(r->body)["data"]["systolic"], 131);
    EXPECT_GT(LedgerRows(db), before) << "answered before its entry was durable";
  }

  constexpr int kThreads = 6;
  constexpr int kReads = 40;
  const int64_t before_burst = LedgerRows(db);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto c = ClientWith(token_);
      for (int i = 0; i < kReads; ++i) {
        auto r = c->Get(seg.c_str());
        if (r && r->status == 200 && r->body.find("131") != std::string::npos) {
          ok.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(ok.load(), kThreads * kReads);
  EXPECT_GE(LedgerRows(db), before_burst + kThreads * kReads) << "a read without its entry";

  ExecSql(db,
          "CREATE TRIGGER test_refuse_ledger BEFORE INSERT ON ledger_entries "
          "BEGIN SELECT RAISE(ABORT, 'injected fault'); END;");
  const int64_t before_fault = LedgerRows(db);
  auto refused = Get(seg);
  ExpectError(refused, 503, "UNAVAILABLE");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->body.find("systolic"), std::string::npos) << refused->body;
  EXPECT_FALSE(refused->has_header("X-Access-Decision"));
  EXPECT_FALSE(refused->has_header("X-Segment-Version"));
  EXPECT_EQ(LedgerRows(db), before_fault);
  // Whatever the handler answered (a 404 after a permit, a 403 with its
  // reason), an answer whose audit failed is that 503 and nothing else.
  ExpectError(Get(seg + "-none-such"), 503, "UNAVAILABLE");
  // A patient this clinician does not treat: denied, and the deny cannot be
  // recorded.
  auto denied = Get("/api/v1/patients/" + std::string(32, 'a') + "/segments/physical-signs/x");
  ExpectError(denied, 503, "UNAVAILABLE");
  EXPECT_EQ(LedgerRows(db), before_fault);

  ExecSql(db, "DROP TRIGGER test_refuse_ledger");
  auto again = Get(seg);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << again->body;
  EXPECT_EQ(again->get_header_value("X-Access-Decision").rfind("permit", 0), 0u);
}

TEST_F(HttpServerTest, BadInputGetsPrecise4xxAndChangesNothing) {
  const std::string id = CreatePatient();
  const std::string seg = "/api/v1/patients/" + id + "/segments/physical-signs/blood-pressure";
  ASSERT_EQ(Put(seg, json{{"data", Bp(120, 80)}}.dump())->status, 201);

  // Malformed JSON, wrong types, unknown fields, duplicates, nesting, UTF-8.
  ExpectError(Put(seg, "{\"data\": {"), 400, "INVALID_ARGUMENT");
  ExpectError(Put(seg, ""), 400, "INVALID_ARGUMENT");
  ExpectError(Put(seg, "[]"), 400, "INVALID_ARGUMENT");
  ExpectError(Put(seg, json{{"data", "120/80"}}.dump()), 400, "INVALID_ARGUMENT");
  ExpectError(Put(seg, json{{"data", Bp(120, 80)}, {"colour", "red"}}.dump()), 400,
              "INVALID_ARGUMENT");
  ExpectError(Put(seg, json{{"data", Bp(120, 80)}, {"text", "x"}}.dump()), 400, "INVALID_ARGUMENT");
  ExpectError(Put(seg, json{{"data", Bp(120, 80)}, {"sensitivity", "high"}}.dump()), 400,
              "INVALID_ARGUMENT");
  ExpectError(Put(seg, json{{"data", Bp(120, 80)}, {"sensitivity", 9}}.dump()), 400,
              "INVALID_ARGUMENT");
  ExpectError(
      Put(seg,
          R"({"data":{"systolic":120,"systolic":200,"diastolic":80,"unit":"mmHg","time":"2026-11-20T07:30:00Z"}})"),
      400, "INVALID_ARGUMENT");
  ExpectError(Put(seg, std::string(100, '[') + std::string(100, ']')), 400, "INVALID_ARGUMENT");
  ExpectError(Put(seg, "{\"text\":\"\xc3\x28\"}"), 400, "INVALID_ARGUMENT");
  ExpectError(Put(seg, json{{"data", Bp(120, 80)}}.dump(), "text/plain"), 400, "INVALID_ARGUMENT");
  ExpectError(Put(seg, json{{"data", {{"systolic", "120"}}}}.dump()), 400, "INVALID_ARGUMENT");
  // Oversized bodies: refused by Content-Length before reading.
  ExpectError(Put(seg, std::string(2 << 20, ' ')), 413, "RESOURCE_EXHAUSTED");
  Reconnect();
  // Paths and ids.
  const std::string base = "/api/v1/patients/" + id;
  ExpectError(Put(base + "/segments/other/..", json{{"text", "x"}}.dump()), 400,
              "INVALID_ARGUMENT");
  ExpectError(Put(base + "/segments/other/%2e%2e/personal-information", json{{"text", "x"}}.dump()),
              400, "INVALID_ARGUMENT");
  ExpectError(Put(base + "/segments/Other/X", json{{"text", "x"}}.dump()), 400, "INVALID_ARGUMENT");
  ExpectError(Put(base + "/segments/unknown-top/x", json{{"text", "x"}}.dump()), 400,
              "INVALID_ARGUMENT");
  // An unknown patient and one the caller may not see look the same.
  ExpectError(Get("/api/v1/patients/0123456789abcdef0123456789abcdef"), 403, "PERMISSION_DENIED");
  ExpectError(Put("/api/v1/patients/0123456789abcdef0123456789abcdef/segments/other/x",
                  json{{"text", "x"}}.dump()),
              403, "PERMISSION_DENIED");
  ExpectError(Get("/api/v1/patients/NOT-AN-ID"), 404, "NOT_FOUND");
  ExpectError(Get(seg + "?version=0"), 400, "INVALID_ARGUMENT");
  ExpectError(Get(seg + "?version=abc"), 400, "INVALID_ARGUMENT");
  ExpectError(Get(seg + "?version=99"), 404, "NOT_FOUND");
  ExpectError(Get(seg + "?colour=red"), 400, "INVALID_ARGUMENT");
  ExpectError(Get("/api/v1/patients?limit=0"), 400, "INVALID_ARGUMENT");
  // Patient creation: wrong types, unknown fields, missing fields, bad values.
  ExpectError(Post("/api/v1/patients",
                   R"({"given_name":5,"family_name":"X","birth_date":"1950-01-01","sex":"male"})"),
              400, "INVALID_ARGUMENT");
  ExpectError(
      Post(
          "/api/v1/patients",
          R"({"given_name":"A","family_name":"X","birth_date":"1950-01-01","sex":"male","ssn":"1"})"),
      400, "INVALID_ARGUMENT");
  ExpectError(Post("/api/v1/patients", R"({"given_name":"A","family_name":"X","sex":"male"})"), 400,
              "INVALID_ARGUMENT");
  ExpectError(
      Post("/api/v1/patients",
           R"({"given_name":"A","family_name":"X","birth_date":"1950-02-31","sex":"male"})"),
      400, "INVALID_ARGUMENT");
  ExpectError(Get("/api/v1/no-such-endpoint"), 404, "NOT_FOUND");

  // Nothing changed: one patient, one version.
  auto versions = Get("/api/v1/patients/" + id + "/versions/physical-signs/blood-pressure");
  ASSERT_TRUE(versions);
  EXPECT_EQ(json::parse(versions->body)["versions"].size(), 1u);
  auto tree = Get(base + "/segments");
  EXPECT_EQ(json::parse(tree->body)["segments"].size(), 1u);
  auto list = Get("/api/v1/patients");
  EXPECT_EQ(json::parse(list->body)["patient_ids"].size(), 1u);
}

TEST_F(HttpServerTest, ChunkedOversizedJsonIsRefused) {
  const std::string id = CreatePatient();
  const std::string big(3 << 20, 'a');
  size_t sent = 0;
  auto res = client_->Put(("/api/v1/patients/" + id + "/segments/other/x").c_str(),
                          [&](size_t, httplib::DataSink& sink) {
                            if (sent >= big.size()) {
                              sink.done();
                              return true;
                            }
                            const size_t n = std::min<size_t>(64 * 1024, big.size() - sent);
                            sink.write(big.data() + sent, n);
                            sent += n;
                            return true;
                          },
                          "application/json");
  if (res) {  // the server may close before reading everything
    EXPECT_EQ(res->status, 413) << res->body;
  }
  StopServer();
  StartServer();
  auto tree = Get("/api/v1/patients/" + id + "/segments");
  ASSERT_TRUE(tree);
  EXPECT_TRUE(json::parse(tree->body)["segments"].empty());
}

TEST_F(HttpServerTest, AttachmentsRoundTripAndLimit) {
  StopServer();
  StartServer(/*max_attachment=*/2 << 20);
  const std::string id = CreatePatient();
  const std::string url = "/api/v1/patients/" + id + "/attachments/radiology/chest-x-ray";
  std::string pdf(1536 * 1024, '\0');
  for (size_t i = 0; i < pdf.size(); ++i) {
    pdf[i] = static_cast<char>(i * 7 + (i >> 11));
  }
  auto up = Put(url + "?sensitivity=3", pdf, "application/pdf");
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status, 201) << up->body;
  EXPECT_EQ(json::parse(up->body)["size"], pdf.size());
  EXPECT_EQ(json::parse(up->body)["kind"], "binary");

  auto down = Get(url);
  ASSERT_TRUE(down);
  ASSERT_EQ(down->status, 200);
  EXPECT_EQ(down->get_header_value("Content-Type"), "application/pdf");
  EXPECT_TRUE(down->body == pdf);

  auto meta = Get("/api/v1/patients/" + id + "/segments/radiology/chest-x-ray");
  ASSERT_TRUE(meta);
  EXPECT_TRUE(json::parse(meta->body).contains("attachment_url"));

  ExpectError(Put(url, std::string((2 << 20) + 1, 'x'), "application/pdf"), 413,
              "RESOURCE_EXHAUSTED");
  // The server closes the connection after a 413 (the rest of the body is
  // not read); continue on a new one.
  Reconnect();
  ExpectError(Put(url + "?sensitivity=7", "x", "application/pdf"), 400, "INVALID_ARGUMENT");
  auto versions = Get("/api/v1/patients/" + id + "/versions/radiology/chest-x-ray");
  ASSERT_TRUE(versions);
  ASSERT_EQ(versions->status, 200) << versions->body;
  EXPECT_EQ(json::parse(versions->body)["versions"].size(), 1u);
}

// Regression: an upload refused before its body was read used to leave the
// body on the keep-alive connection, where it was parsed as the next request.
TEST_F(HttpServerTest, RefusedUploadDoesNotPoisonTheConnection) {
  const std::string id = CreatePatient();
  const std::string url = "/api/v1/patients/" + id + "/attachments/radiology/x";
  for (int i = 0; i < 5; ++i) {
    ExpectError(Put(url + "?sensitivity=9", "GET /healthz HTTP/1.1\r\n\r\n", "application/pdf"),
                400, "INVALID_ARGUMENT");
    auto next = Get("/api/v1/patients/" + id);
    ASSERT_TRUE(next);
    EXPECT_EQ(next->status, 200) << next->body;
  }
}

TEST_F(HttpServerTest, MetricsExposePrometheusText) {
  CreatePatient();
  // A doctor may not read platform metrics; the scrape token may, and
  // nothing else.
  ExpectError(Get("/metrics"), 403, "PERMISSION_DENIED");
  auto scraper = ClientWith(metrics_token_);
  ExpectError(scraper->Get("/api/v1/patients"), 401, "UNAUTHENTICATED");
  scraper = ClientWith(metrics_token_);
  auto m = scraper->Get("/metrics");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200);
  EXPECT_NE(m->body.find("# TYPE medvault_http_requests_total counter"), std::string::npos);
  EXPECT_NE(
      m->body.find("medvault_http_requests_total{route=\"/api/v1/patients\",status=\"201\"} 1"),
      std::string::npos)
      << m->body;
  EXPECT_NE(m->body.find("medvault_patients 1"), std::string::npos);
}

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  const std::string id = CreatePatient();
  for (int i = 0; i < 50; ++i) {
    auto r = Get("/api/v1/patients/" + id);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
}

// Issue 13: a few dozen clients sending their headers (or bodies) a byte at
// a time held every worker, and /healthz never answered. Now each peer holds
// at most max_connections_per_peer connections (more are closed at once),
// the head and the body have total deadlines (408 and close), and the pool
// grows past its ready workers, so another client is served meanwhile.
TEST_F(HttpServerTest, SlowClientsAreCutOffWhileOthersAreServed) {
  StopServer();
  tune_server_ = [](api::ServerOptions& o) {
    o.header_timeout_seconds = 2;
    o.body_timeout_seconds = 2;
    o.max_connections_per_peer = 16;
  };
  StartServer();  // 8 ready workers
  const int port = server_->port();
  std::vector<std::unique_ptr<RawConn>> heads;
  std::vector<std::unique_ptr<RawConn>> bodies;
  std::vector<std::unique_ptr<RawConn>> excess;
  // 64 slow heads from four peers (16 each: their limit).
  for (int peer = 2; peer <= 5; ++peer) {
    for (int i = 0; i < 16; ++i) {
      heads.push_back(std::make_unique<RawConn>(port, "127.0.0." + std::to_string(peer)));
      ASSERT_TRUE(heads.back()->connected());
      heads.back()->Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    }
  }
  // 16 more from the first peer: over its limit.
  for (int i = 0; i < 16; ++i) {
    excess.push_back(std::make_unique<RawConn>(port, "127.0.0.2"));
  }
  // 16 slow bodies from a fifth peer, to a public route that reads its body.
  for (int i = 0; i < 16; ++i) {
    bodies.push_back(std::make_unique<RawConn>(port, "127.0.0.6"));
    bodies.back()->Send(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{");
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    while (!stop) {
      for (auto& c : heads) {
        c->Send("a");
      }
      for (auto& c : bodies) {
        c->Send(" ");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  // Another client is served while all of them are connected (old code:
  // never, every worker was held).
  const auto t0 = std::chrono::steady_clock::now();
  httplib::Client other("127.0.0.1", port);
  other.set_read_timeout(5, 0);
  auto h = other.Get("/healthz");
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(h) << httplib::to_string(h.error());
  EXPECT_EQ(h->status, 200);
  EXPECT_LT(waited, std::chrono::seconds(2));

  // The connections over the peer's limit were closed without an answer.
  for (auto& c : excess) {
    std::string got;
    EXPECT_TRUE(c->ReadUntilClosed(2, &got));
    EXPECT_EQ(got, "");
  }
  // Past their deadlines the slow ones got a 408 and were closed.
  for (auto* group : {&heads, &bodies}) {
    for (auto& c : *group) {
      std::string got;
      EXPECT_TRUE(c->ReadUntilClosed(8, &got)) << "still open";
      EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 408") << got.substr(0, 60);
    }
  }
  stop = true;
  trickle.join();
}

// Issue 13 (RFC 9112 6.3): framing that two parsers could read differently is
// refused before any handler runs; httplib alone took the first of two
// Content-Lengths, decoded "%32" to "2", and read a body of unknown
// Transfer-Encoding as none.
TEST_F(HttpServerTest, AmbiguousFramingIsRefused) {
  const std::string start =
      "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
  const std::string body = "{}";
  const std::vector<std::string> cases = {
      "Content-Length: 2\r\nContent-Length: 30\r\n",
      "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
      "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n",
      "Content-Length: %32\r\n",
      "Content-Length: 2x\r\n",
      "Content-Length: +2\r\n",
      "Transfer-Encoding: gzip\r\nContent-Length: 2\r\n",
      "Transfer-Encoding: identity\r\n",
      "Content-Length : 2\r\n",
      "Content-Length: 2\r\n folded\r\n",
  };
  for (const std::string& headers : cases) {
    RawConn c(server_->port());
    const std::string got = c.Exchange(start + headers + "\r\n" + body);
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 400") << headers << " -> " << got.substr(0, 80);
    EXPECT_NE(got.find("INVALID_ARGUMENT"), std::string::npos) << headers;
    EXPECT_NE(got.find("X-Request-Id: "), std::string::npos) << headers;
  }
  // The same request framed once is answered (a failed sign-in).
  RawConn c(server_->port());
  const std::string got =
      c.Exchange(start + "Content-Length: 2\r\nConnection: close\r\n\r\n" + body);
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 400") << got.substr(0, 80);
  EXPECT_EQ(got.find("Content-Length must"), std::string::npos);
}

TEST_F(HttpServerTest, OversizedOrEndlessHeadsAreRefused) {
  {
    RawConn c(server_->port());
    const std::string got = c.Exchange("GET /healthz HTTP/1.1\r\n" +
                                       std::string(40 * 1024, 'a'));  // never ends its line
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 431") << got.substr(0, 80);
  }
  {
    std::string head = "GET /healthz HTTP/1.1\r\n";
    for (int i = 0; i < 150; ++i) {
      head += "X-H" + std::to_string(i) + ": v\r\n";
    }
    RawConn c(server_->port());
    const std::string got = c.Exchange(head + "\r\n");
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 431") << got.substr(0, 80);
  }
}

// Issue 13: httplib decodes %xx in the path before routing, so
// "health-status%2Fallergies" reached the handler as "health-status/allergies"
// and "%2e%2e" as "..": encoded paths are refused, whatever they decode to.
TEST_F(HttpServerTest, PercentEncodedPathsAreRefused) {
  const std::string id = CreatePatient();
  const std::string base = "/api/v1/patients/" + id;
  ASSERT_EQ(Put(base + "/segments/other/x", json{{"text", "x"}}.dump())->status, 201);
  ASSERT_EQ(Get(base + "/segments/other/x")->status, 200);
  ExpectError(Get(base + "/segments/other%2Fx"), 400, "INVALID_ARGUMENT");
  ExpectError(Get(base + "/segments/other/%78"), 400, "INVALID_ARGUMENT");
  ExpectError(Get(base + "/segments/other/x/%2e%2e"), 400, "INVALID_ARGUMENT");
  ExpectError(Put(base + "/segments/other%2Fy", json{{"text", "y"}}.dump()), 400,
              "INVALID_ARGUMENT");
  ExpectError(Get("/api/v1/patients/%30123456789abcdef0123456789abcdef"), 400, "INVALID_ARGUMENT");
  ExpectError(Get("/health%7a"), 400, "INVALID_ARGUMENT");
  // Query values keep their encoding.
  auto tree = Get(base + "/segments?prefix=other%2Fx");
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->status, 200) << tree->body;
  // Nothing was written under the encoded path.
  auto listed = Get(base + "/segments");
  ASSERT_TRUE(listed);
  EXPECT_EQ(json::parse(listed->body)["segments"].size(), 1u);
}

TEST_F(HttpServerTest, RangeCompressionAndManyParametersAreRefused) {
  const std::string id = CreatePatient();
  httplib::Headers range = {{"Range", "bytes=0-1,0-1,0-1"}};
  auto r = client_->Get(("/api/v1/patients/" + id).c_str(), range);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 416);
  Reconnect();
  httplib::Headers gzip = {{"Content-Encoding", "gzip"}};
  auto z = client_->Post("/api/v1/patients/search", gzip, "{}", "application/json");
  ASSERT_TRUE(z);
  EXPECT_EQ(z->status, 415);
  Reconnect();
  // A multipart body to a JSON route: refused before reading (was a 500).
  auto multi =
      client_->Post("/api/v1/patients/search",
                    "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b--\r\n",
                    "multipart/form-data; boundary=b");
  ASSERT_TRUE(multi);
  EXPECT_EQ(multi->status, 400) << multi->body;
  Reconnect();
  // A chunked body on a GET: refused before httplib reads it.
  {
    RawConn c(server_->port());
    const std::string got = c.Exchange(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n");
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 400") << got.substr(0, 80);
  }
  std::string query = "?";
  for (int i = 0; i < 17; ++i) {
    query += "p" + std::to_string(i) + "=1&";
  }
  ExpectError(Get("/api/v1/patients" + query), 400, "INVALID_ARGUMENT");
}

// A body the client stopped sending is never handled: the prefix of a JSON
// body that happens to parse, or of an attachment, was stored before.
TEST_F(HttpServerTest, IncompleteBodiesWriteNothing) {
  const std::string id = CreatePatient();
  const std::string auth = "Authorization: Bearer " + token_ + "\r\n";
  {
    RawConn c(server_->port());
    c.Send("PUT /api/v1/patients/" + id +
           "/segments/other/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + auth +
           "Content-Length: 100\r\n\r\n{\"text\":\"x\"}");
    c.EndSending();
    std::string got;
    EXPECT_TRUE(c.ReadUntilClosed(10, &got));
    EXPECT_EQ(got.find("HTTP/1.1 201"), std::string::npos) << got.substr(0, 80);
  }
  {
    RawConn c(server_->port());
    c.Send("PUT /api/v1/patients/" + id +
           "/attachments/radiology/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/pdf\r\n" +
           auth + "Content-Length: 100000\r\n\r\n" + std::string(5000, 'p'));
    c.EndSending();
    std::string got;
    EXPECT_TRUE(c.ReadUntilClosed(10, &got));
    EXPECT_EQ(got.find("HTTP/1.1 201"), std::string::npos) << got.substr(0, 80);
  }
  auto tree = Get("/api/v1/patients/" + id + "/segments");
  ASSERT_TRUE(tree);
  EXPECT_TRUE(json::parse(tree->body)["segments"].empty()) << tree->body;
}

TEST_F(HttpServerTest, NulInJsonStringsIsRefused) {
  const std::string id = CreatePatient();
  const std::string seg = "/api/v1/patients/" + id + "/segments/other/x";
  ExpectError(Put(seg, R"({"text":"a\u0000b"})"), 400, "INVALID_ARGUMENT");
  ExpectError(Put(seg, R"({"data":{"k":"\u0000"}})"), 400, "INVALID_ARGUMENT");
  auto tree = Get("/api/v1/patients/" + id + "/segments");
  ASSERT_TRUE(tree);
  EXPECT_TRUE(json::parse(tree->body)["segments"].empty());
}

TEST_F(HttpServerTest, NoStrictTransportSecurityOverPlainHttp) {
  auto h = Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_FALSE(h->has_header("Strict-Transport-Security"));
}

TEST(HttpServerStartTest, NonLoopbackWithoutTlsIsRefused) {
  EXPECT_TRUE(api::IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(api::IsLoopbackHost("127.8.9.1"));
  EXPECT_TRUE(api::IsLoopbackHost("::1"));
  EXPECT_FALSE(api::IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(api::IsLoopbackHost("10.0.0.1"));
  EXPECT_FALSE(api::IsLoopbackHost("128.0.0.1"));
  EXPECT_EQ(api::HttpStatusFor(StatusCode::kResourceExhausted), 413);
  EXPECT_EQ(api::HttpStatusFor(StatusCode::kDataLoss), 500);
}

class HttpsServerTest : public ServerFixture {
 protected:
  void SetUp() override {}
};

TEST_F(HttpsServerTest, ServesOverTlsWithTheSelfSignedCertificate) {
  ASSERT_TRUE(crypto::InitCrypto().ok());
  data_ = dir_.path() / "data";
  ASSERT_TRUE(app::InitDataDir(data_, true).ok());
  app::DataDirLayout layout(data_);
  app::Config config;
  config.data_dir = data_.string();
  auto rt = app::OpenRuntime(config);
  ASSERT_TRUE(rt.ok());
  runtime_ = std::move(*rt);
  api::ServerOptions options;
  options.host = "0.0.0.0";
  options.port = 0;
  options.worker_threads = 4;
  {
    auto plain = api::CreateServer(options, runtime_->services());
    ASSERT_TRUE(plain.ok());
    EXPECT_EQ((*plain)->Start().code(), StatusCode::kFailedPrecondition);
  }
  options.host = "127.0.0.1";
  const std::filesystem::path web = dir_.path() / "web";
  std::filesystem::create_directories(web);
  testing::WriteFileBytes(web / "index.html", "<!doctype html><title>portal</title>");
  options.web_dir = web.string();
  options.tls_cert_path = layout.tls_cert.string();
  options.tls_key_path = layout.tls_key.string();
  options.header_timeout_seconds = 1;  // the handshake's deadline too
  auto server = api::CreateServer(options, runtime_->services());
  ASSERT_TRUE(server.ok());
  server_ = std::move(*server);
  ASSERT_TRUE(server_->Start().ok());
  httplib::SSLClient c("127.0.0.1", server_->port());
  c.set_ca_cert_path(layout.tls_cert.c_str());
  c.enable_server_certificate_verification(true);
  auto r = c.Get("/healthz");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  // Every answer over TLS carries HSTS: success, 401, 404, the portal's
  // files, and the refusals the connection layer writes itself.
  const std::string hsts = "max-age=31536000";
  EXPECT_EQ(r->get_header_value("Strict-Transport-Security"), hsts);
  auto unauth = c.Get("/api/v1/patients");
  ASSERT_TRUE(unauth);
  EXPECT_EQ(unauth->status, 401);
  EXPECT_EQ(unauth->get_header_value("Strict-Transport-Security"), hsts);
  auto portal = c.Get("/");
  ASSERT_TRUE(portal);
  EXPECT_EQ(portal->status, 200);
  EXPECT_EQ(portal->get_header_value("Strict-Transport-Security"), hsts);
  auto encoded = c.Get("/health%7a");
  ASSERT_TRUE(encoded);
  EXPECT_EQ(encoded->status, 400);
  EXPECT_EQ(encoded->get_header_value("Strict-Transport-Security"), hsts);
  httplib::Headers twice = {{"Content-Length", "2"}, {"Content-Length", "3"}};
  auto framing = c.Post("/api/v1/auth/login", twice, "{}", "application/json");
  ASSERT_TRUE(framing);
  EXPECT_EQ(framing->status, 400);
  EXPECT_EQ(framing->get_header_value("Strict-Transport-Security"), hsts);
  // Plain HTTP to the TLS port gets nothing useful.
  httplib::Client plain("127.0.0.1", server_->port());
  plain.set_read_timeout(2, 0);
  auto p = plain.Get("/healthz");
  EXPECT_TRUE(!p || p->status != 200);
  // A client that opens a connection and never starts (or never finishes)
  // its handshake is closed at the head deadline; TLS clients go on being
  // served meanwhile.
  RawConn silent(server_->port());
  RawConn half(server_->port());
  ASSERT_TRUE(half.Send(std::string("\x16\x03\x01\x02\x00\x01", 6)));  // a ClientHello cut short
  auto during = c.Get("/healthz");
  ASSERT_TRUE(during);
  EXPECT_EQ(during->status, 200);
  const auto start = std::chrono::steady_clock::now();
  std::string ignored;
  EXPECT_TRUE(silent.ReadUntilClosed(10, &ignored));
  EXPECT_TRUE(half.ReadUntilClosed(10, &ignored));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace medvault

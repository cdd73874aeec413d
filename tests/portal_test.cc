// The web portal's static files (src/api/portal.cc) through the real server:
// served from a fixed table read at start, with a strict CSP, public, and
// nothing outside the table.
#include <gtest/gtest.h>

#include <fstream>

#include "api/http_internal.h"
#include "server_fixture.h"

namespace medvault {
namespace {

namespace fs = std::filesystem;
using testing::ServerFixture;

void WriteFile(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

class PortalTest : public ServerFixture {
 protected:
  void SetUp() override {
    const fs::path web = portal_.path() / "web";
    WriteFile(web / "index.html", "<!doctype html><title>medvault</title>");
    WriteFile(web / "app.js", "export const x = 1;");
    WriteFile(web / "views" / "patient.js", "export {};");
    WriteFile(web / "styles.css", "body{}");
    WriteFile(web / ".secret.js", "hidden");
    WriteFile(web / "notes.md", "not a served type");
    WriteFile(portal_.path() / "outside.js", "outside the portal");
    fs::create_symlink(portal_.path() / "outside.js", web / "link.js");
    web_dir_ = web.string();
    ServerFixture::SetUp();
  }

  testing::TempDir portal_;
};

TEST_F(PortalTest, ServesTheFilesWithAStrictPolicyAndNoCredential) {
  httplib::Client anonymous("127.0.0.1", server_->port());
  for (const auto& [url, type] : std::vector<std::pair<std::string, std::string>>{
           {"/", "text/html; charset=utf-8"},
           {"/index.html", "text/html; charset=utf-8"},
           {"/app.js", "text/javascript; charset=utf-8"},
           {"/views/patient.js", "text/javascript; charset=utf-8"},
           {"/styles.css", "text/css; charset=utf-8"}}) {
    auto res = anonymous.Get(url.c_str());
    ASSERT_TRUE(res) << url;
    EXPECT_EQ(res->status, 200) << url;
    EXPECT_EQ(res->get_header_value("Content-Type"), type) << url;
    EXPECT_EQ(res->get_header_value("Content-Security-Policy"),
              std::string(api::internal::kPortalContentSecurityPolicy));
    EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(res->get_header_value_count("X-Content-Type-Options"), 1u);
    EXPECT_EQ(res->get_header_value_count("Cache-Control"), 1u);
    EXPECT_EQ(res->get_header_value("Referrer-Policy"), "no-referrer");
  }
  EXPECT_EQ(anonymous.Get("/app.js")->body, "export const x = 1;");
  // HEAD is as public as GET (browsers and probes use it).
  for (const std::string url : {"/", "/app.js", "/healthz"}) {
    auto head = anonymous.Head(url.c_str());
    ASSERT_TRUE(head) << url;
    EXPECT_EQ(head->status, 200) << url;
    EXPECT_TRUE(head->body.empty()) << url;
  }
  auto head = anonymous.Head("/api/v1/patients");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 401);
}

TEST_F(PortalTest, ServesNothingOutsideItsTable) {
  httplib::Client anonymous("127.0.0.1", server_->port());
  for (const std::string url :
       {"/.secret.js", "/notes.md", "/link.js", "/outside.js", "/../outside.js", "/views/../app.js",
        "/appXjs", "/app.jsx", "/views/", "/index.html/", "/%2e%2e/outside.js"}) {
    // Signed in, so that the refusal is the routing's, not authentication's.
    auto res = client_->Get(url.c_str());
    ASSERT_TRUE(res) << url;
    // Percent-encoded paths are refused before routing (400).
    EXPECT_EQ(res->status, url.find('%') == std::string::npos ? 404 : 400)
        << url << " " << res->body;
    EXPECT_EQ(res->body.find("outside the portal"), std::string::npos) << url;
    EXPECT_EQ(res->body.find("hidden"), std::string::npos) << url;
  }
  // Being public does not open the API.
  auto res = anonymous.Get("/api/v1/patients");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  // Writes to a portal path are not routed.
  res = anonymous.Post("/app.js", "x", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_NE(res->status, 200);
}

TEST(PortalFiles, LoadRefusesMissingAndOversizedDirectories) {
  testing::TempDir tmp;
  EXPECT_EQ(api::internal::LoadPortalFiles(tmp.path() / "none").status().code(),
            StatusCode::kNotFound);
  for (int i = 0; i < 501; ++i) {
    WriteFile(tmp.path() / "many" / ("f" + std::to_string(i) + ".js"), "x");
  }
  EXPECT_EQ(api::internal::LoadPortalFiles(tmp.path() / "many").status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(api::internal::LiteralRegex("/a.b(c)"), "/a\\.b\\(c\\)");
}

}  // namespace
}  // namespace medvault

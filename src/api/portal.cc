// The web portal's static files: read once at start from the portal
// directory (build/web, copied from web/ at `make build`) into memory and
// served at their relative paths, with a strict Content-Security-Policy.
// Only files present at start are served (a fixed table, no path joins
// with request input), so no request can reach outside the directory.
#include <fstream>
#include <iterator>
#include <system_error>

#include "api/http_internal.h"

namespace medvault::api::internal {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxPortalFiles = 500;
constexpr uint64_t kMaxPortalBytes = 32ull << 20;

struct TypeByExtension {
  std::string_view extension;
  std::string_view content_type;
};
constexpr std::array<TypeByExtension, 11> kTypes = {{
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
    {".webmanifest", "application/manifest+json"},
}};

bool SafeRelativePath(const std::string& rel) {
  if (rel.empty() || rel.size() > 200) {
    return false;
  }
  for (char c : rel) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_' || c == '/';
    if (!ok) {
      return false;
    }
  }
  // No hidden files or directories, no "..".
  return rel.front() != '.' && rel.find("/.") == std::string::npos;
}

}  // namespace

Result<std::vector<PortalFile>> LoadPortalFiles(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound("portal directory " + dir.string() + " does not exist");
  }
  std::vector<PortalFile> out;
  uint64_t total = 0;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) {
      continue;
    }
    const std::string rel = fs::relative(it->path(), dir, ec).generic_string();
    const std::string ext = it->path().extension().string();
    const TypeByExtension* type = nullptr;
    for (const TypeByExtension& t : kTypes) {
      if (t.extension == ext) {
        type = &t;
      }
    }
    if (ec || type == nullptr || !SafeRelativePath(rel)) {
      continue;  // not a kind of file the portal serves
    }
    if (out.size() == kMaxPortalFiles) {
      return Status::ResourceExhausted("the portal directory holds more than 500 files");
    }
    std::ifstream in(it->path(), std::ios::binary);
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    total += body.size();
    if (!in.good() && !in.eof()) {
      return Status::IOError("cannot read portal file " + rel);
    }
    if (total > kMaxPortalBytes) {
      return Status::ResourceExhausted("the portal directory holds more than 32 MiB");
    }
    out.push_back(PortalFile{"/" + rel, std::string(type->content_type), std::move(body)});
  }
  if (ec) {
    return Status::IOError("cannot list portal directory " + dir.string() + ": " + ec.message());
  }
  return out;
}

std::string LiteralRegex(std::string_view path) {
  std::string out;
  for (char c : path) {
    if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace medvault::api::internal

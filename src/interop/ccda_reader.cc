// ParseCcda: HL7 C-CDA (R1.1 and R2.1, structured and unstructured bodies)
// into the format-neutral model.
//
// Hardening: the size limit is checked before parsing; a UTF-16/32 byte
// order or an XML declaration naming an encoding other than UTF-8/ASCII is
// refused; the prolog is scanned and any DOCTYPE (hence any entity
// declaration) is refused before libxml2 sees the bytes; libxml2 runs without
// NOENT, DTDLOAD, DTDATTR, XINCLUDE, HUGE or RECOVER and with NONET, its
// errors go to a per-parse handler (never to stderr) and the first one
// becomes the message ("line L, column C: ..."). After parsing, one walk over
// the tree enforces the depth, node and text-length limits and indexes the
// narrative IDs; extraction then visits only the parts it needs. Nothing the
// document points at (stylesheets, references, externalDocument, linkHtml)
// is ever fetched.
//
// Leniency: what is merely sloppy in vendor files (unparseable times,
// references that resolve to nothing, nullFlavors, unknown codes) is dropped
// silently. Texts from elements are trimmed of XML white space at both ends;
// texts taken from narrative markup have their white space collapsed.
#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <array>
#include <cstdarg>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "interop/ccda_internal.h"
#include "interop/interop.h"

namespace medvault::interop {
namespace {

using namespace ccda;  // NOLINT(google-build-using-namespace)

// ---------------------------------------------------------------------------
// libxml2 error capture

struct ParseError {
  bool set = false;
  int line = 0;
  int column = 0;
  int code = 0;
  std::string message;
};

thread_local ParseError* t_parse_error = nullptr;

// The first line of a libxml2 message, without the byte dump some encoding
// errors append (document bytes are content), bounded.
std::string SanitizeLibxmlMessage(const char* msg) {
  std::string_view m = msg == nullptr ? std::string_view() : std::string_view(msg);
  const size_t nl = m.find('\n');
  if (nl != std::string_view::npos) m = m.substr(0, nl);
  const size_t bytes = m.find("Bytes:");
  if (bytes != std::string_view::npos) m = m.substr(0, bytes);
  m = TrimXmlSpace(m);
  std::string out;
  for (char c : m.substr(0, 200)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  return out;
}

void RecordError(const xmlError* e) {
  ParseError* pe = t_parse_error;
  if (pe == nullptr || e == nullptr || pe->set || e->level < XML_ERR_ERROR) return;
  pe->set = true;
  pe->line = e->line;
  pe->column = e->int2;
  pe->code = e->code;
  pe->message = SanitizeLibxmlMessage(e->message);
}

void OnStructuredError(void* /*ctx*/, xmlErrorPtr e) { RecordError(e); }
void OnGenericError(void* /*ctx*/, const char* /*msg*/, ...) {}

// Routes this thread's libxml2 error output to RecordError for the lifetime
// of the scope and restores the previous handlers afterwards.
class ErrorScope {
 public:
  explicit ErrorScope(ParseError* pe)
      : prev_(t_parse_error),
        prev_structured_(xmlStructuredError),
        prev_structured_ctx_(xmlStructuredErrorContext),
        prev_generic_(xmlGenericError),
        prev_generic_ctx_(xmlGenericErrorContext) {
    t_parse_error = pe;
    xmlSetStructuredErrorFunc(nullptr, OnStructuredError);
    xmlSetGenericErrorFunc(nullptr, OnGenericError);
  }
  ~ErrorScope() {
    xmlSetStructuredErrorFunc(prev_structured_ctx_, prev_structured_);
    xmlSetGenericErrorFunc(prev_generic_ctx_, prev_generic_);
    t_parse_error = prev_;
  }
  ErrorScope(const ErrorScope&) = delete;
  ErrorScope& operator=(const ErrorScope&) = delete;

 private:
  ParseError* prev_;
  xmlStructuredErrorFunc prev_structured_;
  void* prev_structured_ctx_;
  xmlGenericErrorFunc prev_generic_;
  void* prev_generic_ctx_;
};

struct CtxtDeleter {
  void operator()(xmlParserCtxt* c) const { xmlFreeParserCtxt(c); }
};
struct DocDeleter {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};

Status ErrorStatus(const ParseError& pe) {
  std::string where = "line " + std::to_string(pe.line) + ", column " + std::to_string(pe.column);
  std::string_view msg = pe.message;
  if (pe.code == XML_ERR_INVALID_CHAR || pe.code == XML_ERR_INVALID_ENCODING ||
      pe.code == XML_ERR_UNSUPPORTED_ENCODING || pe.code == XML_I18N_CONV_FAILED ||
      msg.find("not proper UTF-8") != std::string_view::npos) {
    return Status::InvalidArgument(where + ": invalid UTF-8 or a character not allowed in XML (" +
                                   std::string(msg) + "); only UTF-8 documents are accepted");
  }
  if (pe.code == XML_NS_ERR_UNDEFINED_NAMESPACE) {
    return Status::InvalidArgument(where + ": undeclared namespace prefix (" + std::string(msg) +
                                   ")");
  }
  if (msg.find("Excessive depth") != std::string_view::npos) {
    return Status::ResourceExhausted(where + ": elements nested too deeply (" + std::string(msg) +
                                     ")");
  }
  if (msg.find("huge") != std::string_view::npos ||
      msg.find("too long") != std::string_view::npos ||
      msg.find("too large") != std::string_view::npos) {
    return Status::ResourceExhausted(where + ": " + std::string(msg));
  }
  if (pe.code == XML_ERR_DOCUMENT_EMPTY) return Status::InvalidArgument("empty document");
  if (pe.code == XML_ERR_DOCUMENT_END) {
    return Status::InvalidArgument(where + ": content after the root element (" + std::string(msg) +
                                   ")");
  }
  return Status::InvalidArgument(where + ": " + std::string(msg));
}

// ---------------------------------------------------------------------------
// Before parsing: encoding and DOCTYPE

size_t LineAt(std::string_view s, size_t pos) {
  size_t line = 1;
  for (size_t i = 0; i < pos && i < s.size(); ++i) line += s[i] == '\n';
  return line;
}

bool StartsWith(std::string_view s, size_t pos, std::string_view prefix) {
  return s.size() >= pos && s.substr(pos).substr(0, prefix.size()) == prefix;
}

Status NotUtf8() { return Status::InvalidArgument("only UTF-8 documents are accepted"); }

Status DoctypeRefused(std::string_view xml, size_t pos) {
  return Status::InvalidArgument("line " + std::to_string(LineAt(xml, pos)) +
                                 ": DOCTYPE and entity declarations are not accepted");
}

// The encoding pseudo-attribute of an XML declaration, if any.
std::string_view DeclaredEncoding(std::string_view decl) {
  const size_t at = decl.find("encoding");
  if (at == std::string_view::npos) return {};
  size_t i = at + 8;
  while (i < decl.size() && IsXmlSpace(decl[i])) ++i;
  if (i >= decl.size() || decl[i] != '=') return {};
  ++i;
  while (i < decl.size() && IsXmlSpace(decl[i])) ++i;
  if (i >= decl.size() || (decl[i] != '"' && decl[i] != '\'')) return {};
  const char quote = decl[i++];
  const size_t end = decl.find(quote, i);
  if (end == std::string_view::npos) return {};
  return decl.substr(i, end - i);
}

// Checks the byte order mark, the declared encoding, and the prolog up to
// the root element: comments and processing instructions are skipped, a
// DOCTYPE (the only place entity declarations can live) is refused. Markup
// after the root element's start is libxml2's to judge (a DOCTYPE there is
// not well-formed).
Status CheckProlog(std::string_view xml) {
  size_t i = 0;
  if (xml.size() >= 2 &&
      ((xml[0] == '\xFE' && xml[1] == '\xFF') || (xml[0] == '\xFF' && xml[1] == '\xFE'))) {
    return NotUtf8();
  }
  if (xml.size() >= 4 && xml[0] == 0 && xml[1] == 0) return NotUtf8();    // UTF-32
  if (xml.size() >= 2 && (xml[0] == 0 || xml[1] == 0)) return NotUtf8();  // UTF-16 without BOM
  if (StartsWith(xml, 0, "\xEF\xBB\xBF")) i = 3;
  if (StartsWith(xml, i, "<?xml") && xml.size() > i + 5 && IsXmlSpace(xml[i + 5])) {
    const size_t end = xml.find("?>", i);
    if (end != std::string_view::npos) {
      const std::string enc = AsciiLowerCopy(DeclaredEncoding(xml.substr(i, end - i)));
      if (!enc.empty() && enc != "utf-8" && enc != "utf8" && enc != "us-ascii" && enc != "ascii") {
        return Status::InvalidArgument(
            "the XML declaration names an encoding other than UTF-8; only UTF-8 documents are "
            "accepted");
      }
      i = end + 2;
    }
  }
  while (i < xml.size()) {
    if (IsXmlSpace(xml[i])) {
      ++i;
    } else if (StartsWith(xml, i, "<!--")) {
      const size_t end = xml.find("-->", i + 4);
      if (end == std::string_view::npos) return Status::Ok();  // libxml2 reports it
      i = end + 3;
    } else if (StartsWith(xml, i, "<?")) {
      const size_t end = xml.find("?>", i + 2);
      if (end == std::string_view::npos) return Status::Ok();
      i = end + 2;
    } else if (StartsWith(xml, i, "<!")) {
      // <!DOCTYPE, and anything else declaration-like (<!ENTITY, <!ELEMENT,
      // any case): never legal before the root element except the DOCTYPE.
      const std::string_view rest = xml.substr(i + 2, 7);
      const std::string upper = AsciiUpperCopy(rest);
      if (upper.starts_with("DOCTYPE") || upper.starts_with("ENTITY") ||
          upper.starts_with("ELEMENT") || upper.starts_with("ATTLIST")) {
        return DoctypeRefused(xml, i);
      }
      return Status::Ok();
    } else {
      return Status::Ok();  // the root element (or garbage libxml2 will name)
    }
  }
  return Status::Ok();
}

// Bounds, from the bytes and before libxml2 parses them, the work whose cost
// grows faster than the document: libxml2 checks each attribute of a start
// tag against the tag's earlier ones (n^2/2 comparisons per element: 80,000
// attributes on one element, under a megabyte, took ten seconds), and looks
// each prefixed name up through every namespace declaration in scope. One
// linear pass over the markup (comments, CDATA sections and processing
// instructions skipped, quoted values skipped) counts the '=' of each start
// tag, and the attributes named xmlns or xmlns:*. Refused, with the line:
// more than limits.max_attributes on one element, a sum of attributes
// squared over the elements with more than kFewAttributes (real C-CDA
// elements have fewer than ten) above kMaxAttributeWork, more than
// kMaxNamespaceDeclarations declarations in the document. An approximate
// count (of malformed markup) only changes which refusal comes first:
// libxml2 still judges well-formedness.
constexpr size_t kFewAttributes = 16;
constexpr uint64_t kMaxAttributeWork = uint64_t{1} << 26;
constexpr size_t kMaxNamespaceDeclarations = 256;

Status CheckMarkup(std::string_view xml, const ParseLimits& limits) {
  const size_t n = xml.size();
  uint64_t work = 0;
  size_t namespaces = 0;
  size_t i = 0;
  while (i < n) {
    const void* found = std::memchr(xml.data() + i, '<', n - i);
    if (found == nullptr) break;
    const size_t lt = static_cast<size_t>(static_cast<const char*>(found) - xml.data());
    i = lt + 1;
    if (i >= n) break;
    std::string_view close;
    if (StartsWith(xml, lt, "<!--")) {
      close = "-->";
    } else if (StartsWith(xml, lt, "<![CDATA[")) {
      close = "]]>";
    } else if (xml[i] == '?') {
      close = "?>";
    }
    if (!close.empty()) {
      const size_t end = xml.find(close, i);
      if (end == std::string_view::npos) break;  // libxml2 reports it
      i = end + close.size();
      continue;
    }
    if (xml[i] == '/' || xml[i] == '!') continue;  // end tags; declarations are refused
    // A start tag: up to its '>' (or a '<' of malformed markup).
    size_t count = 0;
    size_t name_begin = std::string_view::npos;  // the last name token
    size_t name_end = std::string_view::npos;
    char quote = 0;
    size_t j = i;
    for (; j < n; ++j) {
      const char c = xml[j];
      if (quote != 0) {
        if (c == quote) quote = 0;
        continue;
      }
      if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '>' || c == '<') {
        break;
      } else if (IsXmlSpace(c)) {
        if (name_begin != std::string_view::npos && name_end == std::string_view::npos) {
          name_end = j;
        }
      } else if (c == '=') {
        if (++count > limits.max_attributes) {
          return Status::ResourceExhausted("line " + std::to_string(LineAt(xml, lt)) +
                                           ": an element with more than " +
                                           std::to_string(limits.max_attributes) + " attributes");
        }
        if (name_begin != std::string_view::npos) {
          const size_t end = name_end == std::string_view::npos ? j : name_end;
          const std::string_view name = xml.substr(name_begin, end - name_begin);
          if ((name == "xmlns" || name.starts_with("xmlns:")) &&
              ++namespaces > kMaxNamespaceDeclarations) {
            return Status::ResourceExhausted(
                "line " + std::to_string(LineAt(xml, lt)) + ": more than " +
                std::to_string(kMaxNamespaceDeclarations) + " namespace declarations");
          }
        }
        name_begin = name_end = std::string_view::npos;
      } else if (name_begin == std::string_view::npos || name_end != std::string_view::npos) {
        name_begin = j;
        name_end = std::string_view::npos;
      }
    }
    if (count > kFewAttributes) work += static_cast<uint64_t>(count) * count;
    if (work > kMaxAttributeWork) {
      return Status::ResourceExhausted("line " + std::to_string(LineAt(xml, lt)) +
                                       ": too many attributes per element in the document");
    }
    i = j;
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Tree helpers (no allocation; names compared in place)

std::string_view Sv(const xmlChar* s) {
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(s));
}

bool InNamespace(const xmlNode* n, std::string_view uri) {
  return n->ns != nullptr && n->ns->href != nullptr && Sv(n->ns->href) == uri;
}

bool IsHl7(const xmlNode* n) {
  return n->type == XML_ELEMENT_NODE && InNamespace(n, kHl7Namespace);
}

bool Named(const xmlNode* n, const char* name) {
  return IsHl7(n) && std::strcmp(reinterpret_cast<const char*>(n->name), name) == 0;
}

const xmlNode* Child(const xmlNode* n, const char* name) {
  if (n == nullptr) return nullptr;
  for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
    if (Named(c, name)) return c;
  }
  return nullptr;
}

const xmlNode* Path(const xmlNode* n, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    n = Child(n, name);
    if (n == nullptr) return nullptr;
  }
  return n;
}

const xmlNode* FirstElementChild(const xmlNode* n) {
  for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
    if (IsHl7(c)) return c;
  }
  return nullptr;
}

std::string_view AttrValue(const xmlAttr* a) {
  if (a->children == nullptr) return {};
  return Sv(a->children->content);
}

// An attribute without namespace; nullopt when absent.
std::optional<std::string_view> AttrOpt(const xmlNode* n, const char* name) {
  if (n == nullptr) return std::nullopt;
  for (const xmlAttr* a = n->properties; a != nullptr; a = a->next) {
    if (a->ns == nullptr && std::strcmp(reinterpret_cast<const char*>(a->name), name) == 0) {
      return AttrValue(a);
    }
  }
  return std::nullopt;
}

std::string_view Attr(const xmlNode* n, const char* name) {
  return AttrOpt(n, name).value_or(std::string_view());
}

bool IsNull(const xmlNode* n) { return AttrOpt(n, "nullFlavor").has_value(); }

// xsi:type without any prefix ("CD", "PQ", ...).
std::string_view XsiType(const xmlNode* n) {
  for (const xmlAttr* a = n->properties; a != nullptr; a = a->next) {
    if (a->ns != nullptr && Sv(a->ns->href) == kXsiNamespace &&
        std::strcmp(reinterpret_cast<const char*>(a->name), "type") == 0) {
      std::string_view v = TrimXmlSpace(AttrValue(a));
      const size_t colon = v.find(':');
      if (colon != std::string_view::npos) v = v.substr(colon + 1);
      return v;
    }
  }
  return {};
}

bool HasTemplate(const xmlNode* n, std::string_view root) {
  for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
    if (Named(c, "templateId") && Attr(c, "root") == root) return true;
  }
  return false;
}

bool HasMedvaultTemplate(const xmlNode* n, std::string_view extension) {
  for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
    if (Named(c, "templateId") && Attr(c, "root") == kMedvaultIdRoot &&
        (extension.empty() || Attr(c, "extension") == extension)) {
      return true;
    }
  }
  return false;
}

// A medvault field or component observation (never a statement of its own).
bool IsExtra(const xmlNode* obs) { return HasMedvaultTemplate(obs, {}); }

bool Negated(const xmlNode* stmt) {
  const std::string_view v = Attr(stmt, "negationInd");
  return v == "true" || v == "1";
}

// All text below n, in document order, appended raw.
void AppendRawText(const xmlNode* n, std::string* out, size_t limit) {
  for (const xmlNode* c = n->children; c != nullptr && out->size() < limit; c = c->next) {
    if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
      out->append(Sv(c->content));
    } else if (c->type == XML_ELEMENT_NODE) {
      AppendRawText(c, out, limit);
    }
  }
}

// Cuts s to at most limit bytes at a UTF-8 character boundary.
void TruncateUtf8(std::string* s, size_t limit) {
  if (s->size() <= limit) return;
  size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>((*s)[cut]) & 0xC0) == 0x80) --cut;
  s->resize(cut);
}

std::string Trimmed(std::string s) {
  const std::string_view t = TrimXmlSpace(s);
  if (t.size() == s.size()) return s;
  return std::string(t);
}

// Text content of an element, trimmed.
std::string ElementText(const xmlNode* n) {
  if (n == nullptr) return {};
  if (n->children != nullptr && n->children->next == nullptr &&
      n->children->type == XML_TEXT_NODE) {
    return std::string(TrimXmlSpace(Sv(n->children->content)));
  }
  std::string out;
  AppendRawText(n, &out, static_cast<size_t>(-1));
  return Trimmed(std::move(out));
}

// Text of an ED-like element (originalText, text, value ED/ST) excluding its
// reference and thumbnail children, trimmed.
std::string LiteralEdText(const xmlNode* n) {
  std::string out;
  for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
    if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
      out.append(Sv(c->content));
    } else if (c->type == XML_ELEMENT_NODE && !Named(c, "reference") && !Named(c, "thumbnail")) {
      AppendRawText(c, &out, static_cast<size_t>(-1));
    }
  }
  return Trimmed(std::move(out));
}

bool IsBlockElement(const xmlNode* n) {
  static constexpr const char* kBlocks[] = {"paragraph", "br",    "tr",       "item",
                                            "list",      "table", "caption",  "thead",
                                            "tbody",     "tfoot", "footnote", "content_block"};
  if (!IsHl7(n)) return false;
  for (const char* b : kBlocks) {
    if (std::strcmp(reinterpret_cast<const char*>(n->name), b) == 0) return true;
  }
  return false;
}

// Plain text of narrative markup: block elements (paragraph, br, tr, item,
// ...) break lines, table cells are separated by " | ", white space inside a
// line is collapsed, lines are trimmed and empty ones dropped.
class NarrativeWriter {
 public:
  explicit NarrativeWriter(size_t limit) : limit_(limit) {}

  void Visit(const xmlNode* n, int depth) {
    for (const xmlNode* c = n->children; c != nullptr && !Full(); c = c->next) {
      if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
        AddText(Sv(c->content));
      } else if (c->type == XML_ELEMENT_NODE && depth < 256) {
        const bool block = IsBlockElement(c);
        const bool cell = Named(c, "td") || Named(c, "th");
        if (block) NewLine();
        if (cell && cell_in_line_) AddSeparator(" | ");
        if (cell) cell_in_line_ = true;
        Visit(c, depth + 1);
        if (block) NewLine();
      }
    }
  }

  std::string Take() {
    NewLine();
    TruncateUtf8(&out_, limit_);
    return Trimmed(std::move(out_));
  }

 private:
  bool Full() const { return out_.size() > limit_; }

  void AddText(std::string_view s) {
    for (char c : s) {
      if (IsXmlSpace(c)) {
        pending_space_ = line_has_text_;
      } else {
        if (pending_space_) out_ += ' ';
        pending_space_ = false;
        out_ += c;
        line_has_text_ = true;
      }
    }
  }

  void AddSeparator(std::string_view sep) {
    if (!line_has_text_) return;
    out_ += sep;
    pending_space_ = false;
  }

  void NewLine() {
    // Drop a trailing separator or space of the line.
    while (!out_.empty() && (out_.back() == ' ' || out_.back() == '|')) {
      if (out_.back() == '|' && out_.size() >= 2 && out_[out_.size() - 2] != ' ') break;
      out_.pop_back();
    }
    if (line_has_text_) out_ += '\n';
    line_has_text_ = false;
    pending_space_ = false;
    cell_in_line_ = false;
  }

  size_t limit_;
  std::string out_;
  bool line_has_text_ = false;
  bool pending_space_ = false;
  bool cell_in_line_ = false;
};

std::string NarrativeText(const xmlNode* n, size_t limit) {
  if (n == nullptr) return {};
  NarrativeWriter w(limit);
  w.Visit(n, 0);
  return w.Take();
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

// Lenient base64 (white space ignored, stops at '='); nullopt on any other
// character. At most `limit` output bytes.
std::optional<std::string> DecodeBase64(std::string_view in, size_t limit) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (IsXmlSpace(c)) continue;
    if (c == '=') break;
    const int v = Base64Value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
      if (out.size() >= limit) break;
    }
  }
  return out;
}

// Makes decoded bytes fit the model: invalid UTF-8 becomes U+FFFD, control
// characters XML cannot carry become spaces.
std::string SanitizeDecodedText(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    uint32_t cp = 0;
    const size_t len = DecodeUtf8(in, i, &cp);
    if (len == 1) {
      out += (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7f ? ' ' : in[i];
      ++i;
    } else if (len != 0 && cp != 0xFFFE && cp != 0xFFFF) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string NormTime(std::string_view s) {
  s = TrimXmlSpace(s);
  if (s.empty()) return {};
  Result<std::string> r = NormalizeDateTime(s);
  return r.ok() ? std::move(r).value() : std::string();
}

// ---------------------------------------------------------------------------
// The reader

class Reader {
 public:
  Reader(const ParseLimits& limits, ClinicalDocument* doc) : limits_(limits), doc_(doc) {}

  Status Run(const xmlNode* root) {
    MV_RETURN_IF_ERROR(WalkLimits(root));
    ReadHeader(root);
    const xmlNode* body = Child(root, "component");
    if (const xmlNode* sb = Child(body, "structuredBody")) {
      for (const xmlNode* c = sb->children; c != nullptr; c = c->next) {
        if (!Named(c, "component")) continue;
        for (const xmlNode* s = c->children; s != nullptr; s = s->next) {
          if (Named(s, "section")) MV_RETURN_IF_ERROR(ReadSection(s));
        }
      }
    } else if (const xmlNode* nx = Child(body, "nonXMLBody")) {
      MV_RETURN_IF_ERROR(ReadNonXmlBody(nx));
    }
    return Status::Ok();
  }

 private:
  // One row per section the reader maps: how it is recognised and the
  // function that reads one of its statements. A new section is one row of
  // kSections (below the class) and, when no reader fits, one function.
  struct SectionReader {
    std::span<const std::string_view> template_roots;  // any extension, unless...
    std::string_view template_extension;               // ...this one is required
    std::span<const std::string_view> loinc_codes;     // when no templateId is known
    EntryKind entry_kind;                              // what its statements become
    Status (Reader::*read)(EntryKind kind, const xmlNode* stmt, bool* consumed);
    bool lists_documents = false;  // medvault's documents section: not scanned again
  };
  static const std::array<SectionReader, 13> kSections;

  // ---- limits and ID index: one walk over every node
  Status WalkLimits(const xmlNode* root) {
    size_t nodes = 0;
    size_t depth = 1;
    const xmlNode* n = root;
    while (n != nullptr) {
      if (++nodes > limits_.max_nodes) {
        return Status::ResourceExhausted(LineOf(n) + ": the document has more than " +
                                         std::to_string(limits_.max_nodes) + " nodes");
      }
      if (n->type == XML_ELEMENT_NODE) {
        if (depth > limits_.max_depth) {
          return Status::ResourceExhausted(LineOf(n) + ": elements nested deeper than " +
                                           std::to_string(limits_.max_depth) + " levels");
        }
        for (const xmlAttr* a = n->properties; a != nullptr; a = a->next) {
          if (++nodes > limits_.max_nodes) {
            return Status::ResourceExhausted(LineOf(n) + ": the document has more than " +
                                             std::to_string(limits_.max_nodes) + " nodes");
          }
          size_t len = 0;
          for (const xmlNode* t = a->children; t != nullptr; t = t->next) {
            len +=
                t->content == nullptr ? 0 : std::strlen(reinterpret_cast<const char*>(t->content));
          }
          if (len > limits_.max_text_bytes) {
            return Status::ResourceExhausted(LineOf(n) + ": an attribute value of " +
                                             std::to_string(len) + " bytes exceeds the limit of " +
                                             std::to_string(limits_.max_text_bytes) + " bytes");
          }
          if (a->ns == nullptr && std::strcmp(reinterpret_cast<const char*>(a->name), "ID") == 0) {
            ids_.emplace(AttrValue(a), n);
          }
        }
      } else if (n->content != nullptr) {
        const size_t len = std::strlen(reinterpret_cast<const char*>(n->content));
        if (len > limits_.max_text_bytes) {
          return Status::ResourceExhausted(LineOf(n) + ": a text of " + std::to_string(len) +
                                           " bytes exceeds the limit of " +
                                           std::to_string(limits_.max_text_bytes) + " bytes");
        }
      }
      if (n->type == XML_ELEMENT_NODE && n->children != nullptr) {
        n = n->children;
        ++depth;
        continue;
      }
      while (n != root && n->next == nullptr) {
        n = n->parent;
        --depth;
      }
      if (n == root) break;
      n = n->next;
    }
    return Status::Ok();
  }

  static std::string LineOf(const xmlNode* n) { return "line " + std::to_string(xmlGetLineNo(n)); }

  // ---- entries
  // An observation's code as the FHIR reader reads an Observation's: a LOINC
  // code among the translations becomes the code (the measurement tables
  // key on LOINC), the source's own code its first translation. So the
  // same entry has the same code whichever format it passed through.
  static void PreferLoinc(Coding& c) {
    if (c.system == vocab::kLoincSystem) return;
    for (size_t i = 0; i < c.translations.size(); ++i) {
      if (c.translations[i].system != vocab::kLoincSystem) continue;
      Coding main = std::move(c.translations[i]);
      std::vector<Coding> rest;
      rest.reserve(c.translations.size());
      Coding previous = c;
      previous.translations.clear();
      if (main.display.empty()) main.display = previous.display;
      if (!previous.code.empty()) rest.push_back(std::move(previous));
      for (size_t j = 0; j < c.translations.size(); ++j) {
        if (j != i) rest.push_back(std::move(c.translations[j]));
      }
      main.translations = std::move(rest);
      c = std::move(main);
      return;
    }
  }

  Status Add(Entry e) {
    if (e.kind == EntryKind::kResult || e.kind == EntryKind::kVitalSign ||
        e.kind == EntryKind::kSocialHistory || e.kind == EntryKind::kStatement) {
      PreferLoinc(e.code);
      for (Component& comp : e.components) PreferLoinc(comp.code);
    }
    if (doc_->entries.size() >= limits_.max_entries) {
      return Status::ResourceExhausted("the document has more than " +
                                       std::to_string(limits_.max_entries) + " entries");
    }
    const auto k = static_cast<size_t>(e.kind);
    ++per_kind_[k];
    if (e.id.empty()) {
      e.id = "gen:" + std::string(EntryKindName(e.kind)) + ":" + std::to_string(per_kind_[k]);
    }
    doc_->entries.push_back(std::move(e));
    return Status::Ok();
  }

  // Where and how (targetSiteCode, methodCode) and, unless `nested` reads
  // them as statements of their own, why: the problems of an encounter
  // diagnosis act and the values of RSON (indication) observations.
  void ReadQualifiers(const xmlNode* stmt, Entry* e, bool reasons = true) const {
    if (const xmlNode* site = Child(stmt, "targetSiteCode")) e->body_site = ReadCoding(site);
    if (const xmlNode* method = Child(stmt, "methodCode")) e->method = ReadCoding(method);
    if (!reasons) return;
    auto add = [&](const xmlNode* obs) {
      Coding c = ReadCoding(Child(obs, "value"));
      if (!c.empty() && e->reasons.size() < kMaxLinks) e->reasons.push_back(std::move(c));
      return Status::Ok();
    };
    for (const xmlNode* er = stmt->children; er != nullptr; er = er->next) {
      if (!Named(er, "entryRelationship")) continue;
      for (const xmlNode* c = er->children; c != nullptr; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || IsExtra(c) || Negated(c)) continue;
        if (Named(c, "act") && (HasTemplate(c, kEncounterDiagnosisTemplate) ||
                                Attr(Child(c, "code"), "code") == kEncounterDiagnosisLoinc)) {
          (void)ForSubjectObservations(c, add);
        } else if (Named(c, "observation") && Attr(er, "typeCode") == "RSON") {
          (void)add(c);
        }
      }
    }
  }

  // ---- generic readers
  std::string IdOf(const xmlNode* el) const {
    if (el == nullptr) return {};
    for (const xmlNode* c = el->children; c != nullptr; c = c->next) {
      if (!Named(c, "id") || IsNull(c)) continue;
      const std::string_view root = Attr(c, "root");
      if (root.empty()) continue;
      if (root == kMedvaultIdRoot) return std::string(Attr(c, "extension"));
      return JoinId(root, Attr(c, "extension"));
    }
    return {};
  }

  // A CD/CE element: its own code, or (when it has none, e.g. nullFlavor
  // "OTH") its first coded <translation>; every other coded <translation>
  // becomes one of the coding's translations (kMaxTranslations at most).
  static Coding ReadCoding(const xmlNode* el) {
    Coding c;
    if (el == nullptr) return c;
    const xmlNode* src = el;
    if (Attr(el, "code").empty()) {
      for (const xmlNode* t = el->children; t != nullptr; t = t->next) {
        if (Named(t, "translation") && !Attr(t, "code").empty()) {
          src = t;
          break;
        }
      }
    }
    c = ReadOneCode(src);
    if (c.display.empty()) c.display = std::string(Attr(el, "displayName"));
    for (const xmlNode* t = el->children; t != nullptr; t = t->next) {
      if (t == src || !Named(t, "translation") || Attr(t, "code").empty()) continue;
      Coding tr = ReadOneCode(t);
      if (tr.system == c.system && tr.code == c.code) continue;  // the same code twice
      if (c.translations.size() == kMaxTranslations) break;
      c.translations.push_back(std::move(tr));
    }
    return c;
  }

  // The code, display name and system of one CD element (no translations).
  static Coding ReadOneCode(const xmlNode* src) {
    Coding c;
    c.code = std::string(Attr(src, "code"));
    c.display = std::string(Attr(src, "displayName"));
    const std::string_view sys = Attr(src, "codeSystem");
    if (sys == kUriCodeSystem) {
      c.system = std::string(Attr(src, "codeSystemName"));
    } else if (!sys.empty()) {
      c.system = CodeSystemUri(sys);
    }
    return c;
  }

  // Text a reference points at, "" when it resolves to nothing.
  std::string Resolve(std::string_view ref) const {
    ref = TrimXmlSpace(ref);
    if (!ref.empty() && ref.front() == '#') ref.remove_prefix(1);
    if (ref.empty()) return {};
    const auto it = ids_.find(ref);
    if (it == ids_.end()) return {};
    return NarrativeText(it->second, kMaxNarrativeBytes);
  }

  // originalText / text: a resolvable reference wins, else the literal text.
  std::string EdText(const xmlNode* ed) const {
    if (ed == nullptr) return {};
    if (const xmlNode* ref = Child(ed, "reference")) {
      std::string resolved = Resolve(Attr(ref, "value"));
      if (!resolved.empty()) return resolved;
    }
    return LiteralEdText(ed);
  }

  std::string OriginalText(const xmlNode* code_el) const {
    return EdText(Child(code_el, "originalText"));
  }

  // An ED that may carry a document: text (resolved reference, literal, or
  // decoded base64 text/*), media type and an unresolvable reference as url.
  // *data (when given) takes the bytes of a base64 ED that is not text.
  void ReadEd(const xmlNode* ed, std::string* text, std::string* media_type, std::string* url,
              std::string* data = nullptr) const {
    if (ed == nullptr) return;
    *media_type = std::string(Attr(ed, "mediaType"));
    if (const xmlNode* ref = Child(ed, "reference")) {
      const std::string_view v = Attr(ref, "value");
      std::string resolved = Resolve(v);
      if (!resolved.empty()) {
        *text = std::move(resolved);
      } else {
        *url = std::string(TrimXmlSpace(v));
      }
    }
    if (!text->empty()) return;
    if (Attr(ed, "representation") == "B64") {
      if (media_type->empty() || media_type->starts_with("text/")) {
        std::string raw;
        AppendRawText(ed, &raw, static_cast<size_t>(-1));
        std::optional<std::string> decoded = DecodeBase64(raw, kMaxNarrativeBytes + 4);
        if (decoded) {
          std::string clean = SanitizeDecodedText(*decoded);
          TruncateUtf8(&clean, kMaxNarrativeBytes);
          *text = Trimmed(std::move(clean));
        }
      } else if (data != nullptr) {
        std::string raw;
        AppendRawText(ed, &raw, static_cast<size_t>(-1));
        // Bounded by the text's own limit (ParseLimits::max_text_bytes).
        std::optional<std::string> decoded = DecodeBase64(raw, raw.size());
        if (decoded) *data = std::move(*decoded);
      }
      return;
    }
    *text = LiteralEdText(ed);
  }

  static void ReadInterval(const xmlNode* et, std::string* start, std::string* end) {
    if (auto v = AttrOpt(et, "value")) *start = NormTime(*v);
    if (start->empty()) {
      if (const xmlNode* low = Child(et, "low")) *start = NormTime(Attr(low, "value"));
    }
    if (start->empty()) {
      if (const xmlNode* center = Child(et, "center")) *start = NormTime(Attr(center, "value"));
    }
    if (const xmlNode* high = Child(et, "high")) *end = NormTime(Attr(high, "value"));
  }

  // The first effectiveTime that is a point or an interval (periodic and
  // event-related times are frequencies, not when).
  static void ReadTimes(const xmlNode* stmt, std::string* start, std::string* end) {
    for (const xmlNode* c = stmt->children; c != nullptr; c = c->next) {
      if (!Named(c, "effectiveTime")) continue;
      const std::string_view t = XsiType(c);
      if (!t.empty() && t != "IVL_TS" && t != "TS") continue;
      ReadInterval(c, start, end);
      return;
    }
  }

  static std::string StatusOf(const xmlNode* stmt) {
    return AsciiLowerCopy(TrimXmlSpace(Attr(Child(stmt, "statusCode"), "code")));
  }

  std::string StatementText(const xmlNode* code_el, const xmlNode* stmt) const {
    std::string t = OriginalText(code_el);
    if (t.empty()) t = EdText(Child(stmt, "text"));
    return t;
  }

  static std::string FormatPq(const xmlNode* pq) {
    if (pq == nullptr || IsNull(pq)) return {};
    std::string s(Attr(pq, "value"));
    const std::string_view unit = Attr(pq, "unit");
    if (!s.empty() && !unit.empty() && unit != "1") {
      s += ' ';
      s += unit;
    }
    return s;
  }

  // Observation values by xsi:type: PQ/INT/REAL/MO -> quantity, CD/CE/CV/CO
  // -> value_code (or its original text -> value_text), ST/SC/ED/BL/TS/
  // IVL_PQ/IVL_TS -> value_text. The first of each wins.
  void ReadValues(const xmlNode* obs, std::optional<Quantity>* quantity,
                  std::optional<Coding>* value_code, std::string* value_text) const {
    for (const xmlNode* v = obs->children; v != nullptr; v = v->next) {
      if (!Named(v, "value")) continue;
      std::string_view type = XsiType(v);
      if (type.empty()) {
        // Untyped (invalid, but seen): guess from the attributes.
        if (AttrOpt(v, "code")) {
          type = "CD";
        } else if (AttrOpt(v, "unit") || AttrOpt(v, "value")) {
          type = "PQ";
        } else {
          type = "ST";
        }
      }
      const bool null = IsNull(v);
      if (type == "PQ" || type == "INT" || type == "REAL" || type == "MO") {
        if (null || quantity->has_value()) continue;
        Quantity q;
        q.value = std::string(Attr(v, "value"));
        if (type == "PQ") q.unit = std::string(Attr(v, "unit"));
        if (type == "MO") q.unit = std::string(Attr(v, "currency"));
        *quantity = std::move(q);
      } else if (type == "CD" || type == "CE" || type == "CV" || type == "CO" || type == "CS") {
        Coding c = ReadCoding(v);
        std::string text = OriginalText(v);
        if (!null && (!c.empty() || text.empty())) {
          if (!value_code->has_value()) *value_code = std::move(c);
        } else if (!text.empty() && value_text->empty()) {
          *value_text = std::move(text);
        }
      } else if (null || !value_text->empty()) {
        continue;
      } else if (type == "ST" || type == "SC") {
        *value_text = LiteralEdText(v);
      } else if (type == "ED") {
        *value_text = EdText(v);
      } else if (type == "BL") {
        *value_text = std::string(TrimXmlSpace(Attr(v, "value")));
      } else if (type == "TS") {
        const std::string_view raw = TrimXmlSpace(Attr(v, "value"));
        std::string t = NormTime(raw);
        *value_text = t.empty() ? std::string(raw) : std::move(t);
      } else if (type == "IVL_PQ") {
        const std::string low = FormatPq(Child(v, "low"));
        const std::string high = FormatPq(Child(v, "high"));
        if (!low.empty() && !high.empty()) {
          *value_text = low + " - " + high;
        } else if (!low.empty()) {
          *value_text = ">= " + low;
        } else if (!high.empty()) {
          *value_text = "<= " + high;
        } else {
          *value_text = FormatPq(Child(v, "center"));
        }
      } else if (type == "IVL_TS") {
        std::string start;
        std::string end;
        ReadInterval(v, &start, &end);
        *value_text = end.empty() ? start : start + " - " + end;
      }
    }
    // No coded value: the interpretation (high, low, abnormal) is the coded
    // value, as the model holds it beside a quantity (FHIR interpretation).
    if (!value_code->has_value()) {
      for (const xmlNode* i = obs->children; i != nullptr; i = i->next) {
        if (!Named(i, "interpretationCode") || IsNull(i) || Attr(i, "code").empty()) continue;
        *value_code = ReadCoding(i);
        break;
      }
    }
  }

  // Field and component observations written by WriteCcda (see
  // ccda_internal.h); they override what was read naturally.
  // (An organizer's are its components.)
  void ReadExtras(const xmlNode* stmt, Entry* e) const {
    for (const xmlNode* er = stmt->children; er != nullptr; er = er->next) {
      if (!Named(er, "entryRelationship") && !Named(er, "component")) continue;
      for (const xmlNode* obs = er->children; obs != nullptr; obs = obs->next) {
        if (!Named(obs, "observation")) continue;
        if (HasMedvaultTemplate(obs, kComponentTemplate)) {
          Component comp;
          comp.code = ReadCoding(Child(obs, "code"));
          ReadValues(obs, &comp.quantity, &comp.value_code, &comp.value_text);
          e->components.push_back(std::move(comp));
        } else if (HasMedvaultTemplate(obs, kFieldTemplate)) {
          ApplyField(obs, e);
        }
      }
    }
  }

  // The first referenceRange/observationRange of an observation: its text
  // (trimmed, unless `exact`: a field observation's, as written) and its
  // IVL_PQ bounds; nullopt when there is none or it holds nothing.
  static std::optional<ReferenceRange> ReadRange(const xmlNode* obs, bool exact = false) {
    for (const xmlNode* rr = obs->children; rr != nullptr; rr = rr->next) {
      if (!Named(rr, "referenceRange")) continue;
      const xmlNode* range = Child(rr, "observationRange");
      if (range == nullptr) continue;
      ReferenceRange out;
      if (exact) {
        if (const xmlNode* t = Child(range, "text")) {
          AppendRawText(t, &out.text, static_cast<size_t>(-1));
        }
      } else {
        out.text = ElementText(Child(range, "text"));
      }
      if (const xmlNode* v = Child(range, "value"); v != nullptr && !IsNull(v)) {
        for (const char* bound : {"low", "high"}) {
          const xmlNode* b = Child(v, bound);
          if (b == nullptr || IsNull(b)) continue;
          Quantity q{std::string(Attr(b, "value")), std::string(Attr(b, "unit"))};
          (std::string_view(bound) == "low" ? out.low : out.high) = std::move(q);
        }
      }
      if (out.empty()) return std::nullopt;
      return out;
    }
    return std::nullopt;
  }

  static void ApplyField(const xmlNode* obs, Entry* e) {
    const xmlNode* code = Child(obs, "code");
    if (code == nullptr || Attr(code, "codeSystem") != kFieldCodeSystem) return;
    const std::string_view name = Attr(code, "code");
    const xmlNode* value = Child(obs, "value");
    // Exactly as written: fields carry what the natural form would change.
    auto text = [&]() {
      std::string out;
      if (value != nullptr) AppendRawText(value, &out, static_cast<size_t>(-1));
      return out;
    };
    if (name == "text") {
      e->text = text();
    } else if (name == "category") {
      e->category = text();
    } else if (name == "severity") {
      e->severity = text();
    } else if (name == "media_type") {
      e->media_type = text();
    } else if (name == "url") {
      e->url = text();
    } else if (name == "start") {
      e->start = text();
    } else if (name == "end") {
      e->end = text();
    } else if (name == "status") {
      e->status = text();
    } else if (name == "value_text") {
      e->value_text = text();
    } else if (name == "quantity") {
      if (value != nullptr) {
        e->quantity = Quantity{std::string(Attr(value, "value")), std::string(Attr(value, "unit"))};
      }
    } else if (name == "value_code") {
      if (value != nullptr) e->value_code = ReadCoding(value);
    } else if (name == "route") {
      e->route = ReadCoding(value);
    } else if (name == "relation") {
      e->relation = ReadCoding(value);
    } else if (name == "body_site") {
      e->body_site = ReadCoding(value);
    } else if (name == "method") {
      e->method = ReadCoding(value);
    } else if (name == "section") {
      e->section = ReadCoding(value);
    } else if (name == "mood") {
      e->mood = text();
    } else if (name == "data") {
      std::string b64 = text();
      std::optional<std::string> bytes = DecodeBase64(b64, b64.size());
      e->data = bytes ? std::move(*bytes) : std::string();
    } else if (name == "reasons" || name == "members") {
      const bool reasons = name == "reasons";
      if (reasons) e->reasons.clear();
      if (!reasons) e->members.clear();
      for (const xmlNode* v = obs->children; v != nullptr; v = v->next) {
        if (!Named(v, "value")) continue;
        if ((reasons ? e->reasons.size() : e->members.size()) >= kMaxLinks) break;
        if (reasons) {
          e->reasons.push_back(ReadCoding(v));
        } else {
          std::string id;
          AppendRawText(v, &id, static_cast<size_t>(-1));
          e->members.push_back(std::move(id));
        }
      }
    } else if (name == "reference_range") {
      e->reference_range = ReadRange(obs, /*exact=*/true);
    } else if (name == "reactions") {
      e->reactions.clear();
      for (const xmlNode* v = obs->children; v != nullptr; v = v->next) {
        if (Named(v, "value")) e->reactions.push_back(ReadCoding(v));
      }
    }
  }

  // The value of a status observation (problem status, allergy status)
  // among stmt's entry relationships, mapped; "" when none.
  static std::string_view StatusObservation(const xmlNode* stmt) {
    for (const xmlNode* er = stmt->children; er != nullptr; er = er->next) {
      if (!Named(er, "entryRelationship")) continue;
      for (const xmlNode* obs = er->children; obs != nullptr; obs = obs->next) {
        if (!Named(obs, "observation") || IsExtra(obs) || !IsStatusObs(obs)) continue;
        const xmlNode* v = Child(obs, "value");
        const std::string_view s = StatusFromSnomed(Attr(v, "code"), Attr(v, "displayName"));
        if (!s.empty()) return s;
      }
    }
    return {};
  }

  static bool IsStatusObs(const xmlNode* obs) {
    return HasTemplate(obs, kProblemStatusTemplate) || HasTemplate(obs, kAllergyStatusTemplate) ||
           Attr(Child(obs, "code"), "code") == kStatusLoinc;
  }

  static bool IsSeverityObs(const xmlNode* obs) {
    return HasTemplate(obs, kSeverityTemplate) || Attr(Child(obs, "code"), "code") == "SEV";
  }

  static std::string_view SeverityObservation(const xmlNode* stmt) {
    if (stmt == nullptr) return {};
    for (const xmlNode* er = stmt->children; er != nullptr; er = er->next) {
      if (!Named(er, "entryRelationship")) continue;
      for (const xmlNode* obs = er->children; obs != nullptr; obs = obs->next) {
        if (!Named(obs, "observation") || IsExtra(obs) || !IsSeverityObs(obs)) continue;
        const xmlNode* v = Child(obs, "value");
        const std::string_view s = SeverityFromSnomed(Attr(v, "code"), Attr(v, "displayName"));
        if (!s.empty()) return s;
      }
    }
    return {};
  }

  // Calls f(observation) for the observations below stmt's entry
  // relationships that are clinical statements (not status, severity or
  // medvault extras).
  template <typename F>
  static Status ForSubjectObservations(const xmlNode* stmt, F f) {
    for (const xmlNode* er = stmt->children; er != nullptr; er = er->next) {
      if (!Named(er, "entryRelationship")) continue;
      for (const xmlNode* obs = er->children; obs != nullptr; obs = obs->next) {
        if (!Named(obs, "observation") || IsExtra(obs) || IsStatusObs(obs) || IsSeverityObs(obs)) {
          continue;
        }
        MV_RETURN_IF_ERROR(f(obs));
      }
    }
    return Status::Ok();
  }

  // ---- header
  void ReadHeader(const xmlNode* root) {
    DocumentHeader& h = doc_->header;
    h.id = IdOf(root);
    if (!HasMedvaultTemplate(root, kUntypedTemplate)) h.type = ReadCoding(Child(root, "code"));
    h.title = ElementText(Child(root, "title"));
    h.time = NormTime(Attr(Child(root, "effectiveTime"), "value"));
    h.confidentiality = std::string(Attr(Child(root, "confidentialityCode"), "code"));
    for (const xmlNode* c = root->children; c != nullptr; c = c->next) {
      if (Named(c, "author")) {
        h.authors.push_back(ReadAuthor(c));
      } else if (Named(c, "recordTarget") && !doc_->has_patient) {
        const xmlNode* role = Child(c, "patientRole");
        if (role != nullptr && !IsNull(role)) {
          doc_->has_patient = true;
          ReadPatient(role);
        }
      }
    }
    const xmlNode* org =
        Path(root, {"custodian", "assignedCustodian", "representedCustodianOrganization"});
    if (org != nullptr) {
      h.custodian.id = IdOf(org);
      h.custodian.organization = ElementText(Child(org, "name"));
    }
  }

  static std::string PersonName(const xmlNode* name) {
    if (name == nullptr) return {};
    std::string out;
    bool parts = false;
    for (const xmlNode* c = name->children; c != nullptr; c = c->next) {
      if (!IsHl7(c)) continue;
      parts = true;
      if (!Named(c, "given") && !Named(c, "family")) continue;
      const std::string part = ElementText(c);
      if (part.empty()) continue;
      if (!out.empty()) out += ' ';
      out += part;
    }
    if (parts) return out;
    return ElementText(name);
  }

  Party ReadAuthor(const xmlNode* author) const {
    Party p;
    p.time = NormTime(Attr(Child(author, "time"), "value"));
    const xmlNode* aa = Child(author, "assignedAuthor");
    if (aa == nullptr) return p;
    p.id = IdOf(aa);
    if (const xmlNode* person = Child(aa, "assignedPerson")) {
      p.name = PersonName(Child(person, "name"));
    } else if (const xmlNode* device = Child(aa, "assignedAuthoringDevice")) {
      p.name = ElementText(Child(device, "softwareName"));
      if (p.name.empty()) p.name = ElementText(Child(device, "manufacturerModelName"));
    }
    p.organization = ElementText(Path(aa, {"representedOrganization", "name"}));
    return p;
  }

  void ReadPatient(const xmlNode* role) {
    PatientHeader& p = doc_->patient;
    bool explicit_id = false;
    bool have_first = false;
    std::string first_id;
    for (const xmlNode* c = role->children; c != nullptr; c = c->next) {
      if (Named(c, "id")) {
        if (IsNull(c)) continue;
        const std::string_view root = Attr(c, "root");
        if (root.empty()) continue;
        const std::string_view ext = Attr(c, "extension");
        if (root == kMedvaultIdRoot) {
          if (!explicit_id) p.id = std::string(ext);
          explicit_id = true;
          continue;
        }
        if (!have_first) {
          first_id = JoinId(root, ext);
          have_first = true;
        }
        Identifier ident;
        ident.value = std::string(ext);
        if (root == kIdentifierRoot) {
          const std::string_view aan = Attr(c, "assigningAuthorityName");
          const size_t bar = aan.find('|');
          if (bar != std::string_view::npos) {
            ident.type = std::string(aan.substr(0, bar));
            ident.system = std::string(aan.substr(bar + 1));
          } else {
            ident.system = std::string(aan);
          }
        } else {
          ident.system = CodeSystemUri(root);
          if (root == kSsnOid) ident.type = "SS";
        }
        p.identifiers.push_back(std::move(ident));
      } else if (Named(c, "addr")) {
        if (!IsNull(c)) p.addresses.push_back(ReadAddress(c));
      } else if (Named(c, "telecom")) {
        if (!IsNull(c)) p.telecoms.push_back(ReadTelecom(c));
      } else if (Named(c, "patient")) {
        ReadPatientPerson(c);
      }
    }
    if (!explicit_id) p.id = std::move(first_id);
  }

  static std::string FirstToken(std::string_view s) {
    s = TrimXmlSpace(s);
    const size_t sp = s.find_first_of(" \t\n\r");
    return std::string(sp == std::string_view::npos ? s : s.substr(0, sp));
  }

  static Address ReadAddress(const xmlNode* addr) {
    Address a;
    const std::string use = FirstToken(Attr(addr, "use"));
    if (!use.empty()) a.use = AddressUseFromHl7(use);
    for (const xmlNode* c = addr->children; c != nullptr; c = c->next) {
      if (Named(c, "streetAddressLine")) {
        a.lines.push_back(ElementText(c));
      } else if (Named(c, "city")) {
        a.city = ElementText(c);
      } else if (Named(c, "state")) {
        a.state = ElementText(c);
      } else if (Named(c, "postalCode")) {
        a.postal_code = ElementText(c);
      } else if (Named(c, "country")) {
        a.country = ElementText(c);
      }
    }
    return a;
  }

  static Telecom ReadTelecom(const xmlNode* tel) {
    Telecom t;
    const std::string use = FirstToken(Attr(tel, "use"));
    if (!use.empty()) t.use = AddressUseFromHl7(use);
    const std::string_view v = TrimXmlSpace(Attr(tel, "value"));
    const size_t colon = v.find(':');
    const std::string scheme =
        colon == std::string_view::npos ? std::string() : AsciiLowerCopy(v.substr(0, colon));
    if (scheme == "tel" || scheme == "fax" || scheme == "mailto" || scheme == "sms") {
      t.system = scheme == "tel" ? "phone" : (scheme == "mailto" ? "email" : scheme);
      t.value = std::string(TrimXmlSpace(v.substr(colon + 1)));
    } else if (scheme == "http" || scheme == "https") {
      t.system = "url";
      t.value = std::string(v);
    } else {
      t.value = std::string(v);
    }
    return t;
  }

  void ReadPatientPerson(const xmlNode* patient) {
    PatientHeader& p = doc_->patient;
    const xmlNode* deceased_time = nullptr;
    bool deceased_ind = false;
    for (const xmlNode* c = patient->children; c != nullptr; c = c->next) {
      if (c->type != XML_ELEMENT_NODE) continue;
      if (InNamespace(c, kSdtcNamespace)) {
        const std::string_view name = Sv(c->name);
        if (name == "deceasedTime") {
          deceased_time = c;
        } else if (name == "deceasedInd") {
          const std::string_view v = Attr(c, "value");
          deceased_ind = v == "true" || v == "1";
        }
        continue;
      }
      if (Named(c, "name")) {
        if (IsNull(c)) continue;
        HumanName h;
        const std::string use = FirstToken(Attr(c, "use"));
        if (!use.empty()) h.use = NameUseFromHl7(use);
        bool parts = false;
        for (const xmlNode* part = c->children; part != nullptr; part = part->next) {
          if (Named(part, "given")) {
            h.given.push_back(ElementText(part));
            parts = true;
          } else if (Named(part, "family")) {
            const std::string f = ElementText(part);
            if (!h.family.empty() && !f.empty()) h.family += ' ';
            h.family += f;
            parts = true;
          } else if (IsHl7(part)) {
            parts = true;
          }
        }
        if (!parts) h.family = ElementText(c);
        p.names.push_back(std::move(h));
      } else if (Named(c, "administrativeGenderCode")) {
        p.gender = GenderFromHl7(Attr(c, "code"));
      } else if (Named(c, "birthTime")) {
        std::string t = NormTime(Attr(c, "value"));
        if (t.size() > 10) t.resize(10);
        p.birth_date = std::move(t);
      } else if (Named(c, "maritalStatusCode")) {
        p.marital_status = ReadCoding(c);
      } else if (Named(c, "raceCode")) {
        p.race = ReadCoding(c);
      } else if (Named(c, "ethnicGroupCode")) {
        p.ethnicity = ReadCoding(c);
      } else if (Named(c, "languageCommunication")) {
        if (p.language.empty()) {
          p.language = std::string(TrimXmlSpace(Attr(Child(c, "languageCode"), "code")));
        }
      }
    }
    if (deceased_time != nullptr) p.deceased = NormTime(Attr(deceased_time, "value"));
    if (p.deceased.empty() && deceased_ind) p.deceased = "true";
  }

  // ---- body
  // The row of kSections a section is read by: the first of its templateIds
  // that a row names, else its LOINC code; nullptr when none (its entries
  // stay in the original only, its narrative becomes a note).
  static const SectionReader* Classify(const xmlNode* sec) {
    // WriteCcda's sections of statements, whatever their code says.
    if (HasMedvaultTemplate(sec, kStatementsTemplate)) return nullptr;
    for (const xmlNode* c = sec->children; c != nullptr; c = c->next) {
      if (!Named(c, "templateId")) continue;
      const std::string_view root = Attr(c, "root");
      for (const SectionReader& row : kSections) {
        if (!row.template_extension.empty() && Attr(c, "extension") != row.template_extension) {
          continue;
        }
        for (std::string_view r : row.template_roots) {
          if (r == root) return &row;
        }
      }
    }
    const std::string_view code = Attr(Child(sec, "code"), "code");
    for (const SectionReader& row : kSections) {
      for (std::string_view c : row.loinc_codes) {
        if (c == code) return &row;
      }
    }
    return nullptr;
  }

  Status ReadSection(const xmlNode* sec) {
    const SectionReader* section = Classify(sec);
    // A section no row reads: its statements are kept as statements of
    // that section (EntryKind::kStatement), and its narrative as a note
    // unless WriteCcda generated it from them.
    Coding statement_section;
    const bool generated = HasMedvaultTemplate(sec, kStatementsTemplate);
    if (section == nullptr) {
      statement_section = ReadCoding(Child(sec, "code"));
      statement_section.translations.clear();
      if (statement_section.display.empty()) {
        statement_section.display = ElementText(Child(sec, "title"));
      }
    }
    size_t produced = 0;
    size_t statements = 0;
    bool unconsumed = false;
    for (const xmlNode* entry = sec->children; entry != nullptr; entry = entry->next) {
      if (!Named(entry, "entry")) continue;
      const xmlNode* stmt = FirstElementChild(entry);
      if (stmt == nullptr) continue;
      const size_t before = doc_->entries.size();
      bool consumed = true;
      if (Named(stmt, "act") && HasTemplate(stmt, kNoteActivityTemplate)) {
        MV_RETURN_IF_ERROR(ReadNoteActivity(stmt));
      } else if (section != nullptr) {
        MV_RETURN_IF_ERROR((this->*section->read)(section->entry_kind, stmt, &consumed));
      } else {
        std::string ignored;
        MV_RETURN_IF_ERROR(ReadStatement(stmt, statement_section, 0, &ignored));
        consumed = doc_->entries.size() > before || !IsClinicalStatement(stmt);
        statements += doc_->entries.size() - before;
      }
      produced += doc_->entries.size() - before;
      unconsumed = unconsumed || !consumed;
    }
    if (section == nullptr || !section->lists_documents) {
      for (const xmlNode* entry = sec->children; entry != nullptr; entry = entry->next) {
        if (Named(entry, "entry")) MV_RETURN_IF_ERROR(ScanExternalDocuments(entry, 0));
      }
    }
    for (const xmlNode* c = sec->children; c != nullptr; c = c->next) {
      if (!Named(c, "component")) continue;
      for (const xmlNode* s = c->children; s != nullptr; s = s->next) {
        if (Named(s, "section")) MV_RETURN_IF_ERROR(ReadSection(s));
      }
    }
    const xmlNode* code = Child(sec, "code");
    // A foreign section's narrative is what people read: kept beside the
    // statements read from it.
    if (produced == statements && !generated) {
      std::string narrative = NarrativeText(Child(sec, "text"), kMaxNarrativeBytes);
      if (!narrative.empty()) {
        Entry note;
        note.kind = EntryKind::kNote;
        note.code = ReadCoding(code);
        const std::string title = ElementText(Child(sec, "title"));
        note.text = title.empty() ? std::move(narrative) : title + "\n" + narrative;
        MV_RETURN_IF_ERROR(Add(std::move(note)));
      }
    }
    if (unconsumed) {
      const std::string_view loinc = Attr(code, "code");
      doc_->kept_in_original_only.push_back(
          "section " + std::string(loinc.empty() ? std::string_view("(no code)") : loinc));
    }
    return Status::Ok();
  }

  // ---- one statement of a section, per section (kSections): each reads
  // the statements it knows and sets *consumed = false for any other.
  Status ReadProblemStatement(EntryKind /*kind*/, const xmlNode* stmt, bool* consumed) {
    if (Named(stmt, "act")) {
      return ForSubjectObservations(stmt,
                                    [&](const xmlNode* obs) { return ReadProblem(obs, stmt); });
    }
    if (Named(stmt, "observation")) return ReadProblem(stmt, nullptr);
    *consumed = false;
    return Status::Ok();
  }

  Status ReadAllergyStatement(EntryKind /*kind*/, const xmlNode* stmt, bool* consumed) {
    if (Named(stmt, "act")) {
      return ForSubjectObservations(stmt,
                                    [&](const xmlNode* obs) { return ReadAllergy(obs, stmt); });
    }
    if (Named(stmt, "observation")) return ReadAllergy(stmt, nullptr);
    *consumed = false;
    return Status::Ok();
  }

  // Medications and immunizations.
  Status ReadSubstanceStatement(EntryKind kind, const xmlNode* stmt, bool* consumed) {
    if (Named(stmt, "substanceAdministration")) return ReadSubstance(stmt, kind);
    *consumed = false;
    return Status::Ok();
  }

  // Results, vital signs and social history.
  Status ReadObservationStatement(EntryKind kind, const xmlNode* stmt, bool* consumed) {
    if (Named(stmt, "organizer")) return ReadObservationOrganizer(stmt, kind, 0);
    if (Named(stmt, "observation")) return ReadObservation(stmt, kind, nullptr);
    *consumed = false;
    return Status::Ok();
  }

  Status ReadFamilyStatement(EntryKind /*kind*/, const xmlNode* stmt, bool* consumed) {
    if (Named(stmt, "organizer")) return ReadFamilyOrganizer(stmt);
    if (Named(stmt, "observation")) {
      return ReadFamily(stmt, ReadCoding(Path(stmt, {"subject", "relatedSubject", "code"})));
    }
    *consumed = false;
    return Status::Ok();
  }

  Status ReadProcedureStatement(EntryKind kind, const xmlNode* stmt, bool* consumed) {
    if (Named(stmt, "procedure") || Named(stmt, "act") || Named(stmt, "observation")) {
      return ReadSimple(stmt, kind);
    }
    *consumed = false;
    return Status::Ok();
  }

  Status ReadEncounterStatement(EntryKind kind, const xmlNode* stmt, bool* consumed) {
    if (Named(stmt, "encounter")) return ReadSimple(stmt, kind);
    *consumed = false;
    return Status::Ok();
  }

  Status ReadPlanStatement(EntryKind kind, const xmlNode* stmt, bool* /*consumed*/) {
    if (IsPlanMood(Attr(stmt, "moodCode"))) return ReadSimple(stmt, kind);
    return Status::Ok();  // events and the like in a plan: not plans
  }

  // An act of the section WriteCcda writes for resources kept verbatim.
  Status ReadResourceStatement(EntryKind kind, const xmlNode* stmt, bool* consumed) {
    if (Named(stmt, "act")) return ReadSimple(stmt, kind);
    *consumed = false;
    return Status::Ok();
  }

  Status ReadDocumentStatement(EntryKind /*kind*/, const xmlNode* stmt, bool* consumed) {
    if (Named(stmt, "act")) return ReadDocumentAct(stmt);
    *consumed = false;
    return Status::Ok();
  }

  Status ReadProblem(const xmlNode* obs, const xmlNode* act) {
    if (Negated(obs)) return Status::Ok();
    Entry e;
    e.kind = EntryKind::kProblem;
    e.id = IdOf(obs);
    if (e.id.empty() && act != nullptr) e.id = IdOf(act);
    const xmlNode* value = Child(obs, "value");
    e.code = ReadCoding(value);
    e.text = StatementText(value, obs);
    ReadTimes(obs, &e.start, &e.end);
    e.status = std::string(StatusObservation(obs));
    if (e.status.empty()) e.status = StatusOf(act != nullptr ? act : obs);
    ReadQualifiers(obs, &e);
    ReadExtras(obs, &e);
    return Add(std::move(e));
  }

  Status ReadAllergy(const xmlNode* obs, const xmlNode* act) {
    if (Negated(obs)) return Status::Ok();
    Entry e;
    e.kind = EntryKind::kAllergy;
    e.id = IdOf(obs);
    if (e.id.empty() && act != nullptr) e.id = IdOf(act);
    const xmlNode* entity = nullptr;
    for (const xmlNode* c = obs->children; c != nullptr; c = c->next) {
      if (!Named(c, "participant")) continue;
      const xmlNode* pe = Path(c, {"participantRole", "playingEntity"});
      if (pe != nullptr && (entity == nullptr || Attr(c, "typeCode") == "CSM")) entity = pe;
    }
    const xmlNode* code = Child(entity, "code");
    e.code = ReadCoding(code);
    e.text = OriginalText(code);
    if (e.text.empty()) e.text = ElementText(Child(entity, "name"));
    if (e.text.empty()) e.text = EdText(Child(obs, "text"));
    const xmlNode* type_value = Child(obs, "value");
    e.category = std::string(AllergyCategoryFromSnomed(Attr(type_value, "code")));
    // The allergy observation's own code (allergy to a substance, a food
    // intolerance, ...) is kept as the entry's coded value, unless it is the
    // one code the writer derives from the category anyway. Without its
    // translations: FHIR carries it in a single-Coding extension.
    if (type_value != nullptr && !IsNull(type_value) && !Attr(type_value, "code").empty()) {
      Coding type = ReadCoding(type_value);
      type.translations.clear();
      if (AllergyValueIsNatural(type)) e.value_code = std::move(type);
    }
    ReadTimes(obs, &e.start, &e.end);
    std::string_view reaction_severity;
    for (const xmlNode* er = obs->children; er != nullptr; er = er->next) {
      if (!Named(er, "entryRelationship")) continue;
      for (const xmlNode* r = er->children; r != nullptr; r = r->next) {
        if (!Named(r, "observation") || IsExtra(r)) continue;
        if (!HasTemplate(r, kReactionTemplate) && Attr(er, "typeCode") != "MFST") continue;
        Coding c = ReadCoding(Child(r, "value"));
        if (!c.empty()) e.reactions.push_back(std::move(c));
        if (reaction_severity.empty()) reaction_severity = SeverityObservation(r);
      }
    }
    // Severity of the allergy itself, else of the concern, else of the
    // first reaction that has one (R2.1 moved it to the reactions).
    e.severity = std::string(SeverityObservation(obs));
    if (e.severity.empty()) e.severity = std::string(SeverityObservation(act));
    if (e.severity.empty()) e.severity = std::string(reaction_severity);
    e.status = std::string(StatusObservation(obs));
    if (e.status.empty()) e.status = StatusOf(act != nullptr ? act : obs);
    ReadExtras(obs, &e);
    return Add(std::move(e));
  }

  Status ReadSubstance(const xmlNode* sa, EntryKind kind) {
    const bool negated = Negated(sa);
    if (negated && kind == EntryKind::kMedication) return Status::Ok();
    Entry e;
    e.kind = kind;
    e.id = IdOf(sa);
    const xmlNode* code =
        Path(sa, {"consumable", "manufacturedProduct", "manufacturedMaterial", "code"});
    e.code = ReadCoding(code);
    e.text = StatementText(code, sa);
    e.status = negated ? "not-done" : StatusOf(sa);
    ReadTimes(sa, &e.start, &e.end);
    if (const xmlNode* dose = Child(sa, "doseQuantity"); dose != nullptr && !IsNull(dose)) {
      const xmlNode* src = dose;
      if (!AttrOpt(dose, "value") && Child(dose, "low") != nullptr) src = Child(dose, "low");
      e.quantity = Quantity{std::string(Attr(src, "value")), std::string(Attr(src, "unit"))};
    }
    e.route = ReadCoding(Child(sa, "routeCode"));
    if (kind == EntryKind::kMedication) e.mood = MoodFromHl7(kind, Attr(sa, "moodCode"));
    ReadQualifiers(sa, &e);
    ReadExtras(sa, &e);
    return Add(std::move(e));
  }

  // A result panel or vital-signs organizer: its observations (and nested
  // organizers) are entries of their own, and the organizer is an entry
  // naming them as members, with its own code, status and time. Organizers
  // that identify nothing (no id, no code) and the ones WriteCcda wraps
  // around a single observation only group: their members are passed up to
  // `members_out` (the enclosing organizer, if any).
  Status ReadObservationOrganizer(const xmlNode* org, EntryKind kind, int nesting,
                                  std::vector<std::string>* members_out = nullptr) {
    std::vector<std::string> members;
    for (const xmlNode* comp = org->children; comp != nullptr; comp = comp->next) {
      if (!Named(comp, "component")) continue;
      for (const xmlNode* s = comp->children; s != nullptr; s = s->next) {
        if (Named(s, "observation")) {
          const size_t before = doc_->entries.size();
          MV_RETURN_IF_ERROR(ReadObservation(s, kind, org));
          if (doc_->entries.size() > before && members.size() < kMaxLinks) {
            members.push_back(doc_->entries.back().id);
          }
        } else if (Named(s, "organizer") && nesting < 8) {
          MV_RETURN_IF_ERROR(ReadObservationOrganizer(s, kind, nesting + 1, &members));
        }
      }
    }
    const xmlNode* code = Child(org, "code");
    const bool identifies = !IdOf(org).empty() || !ReadCoding(code).empty();
    // A panel WriteCcda wrote whose members are all nested elsewhere still
    // carries them as a field.
    bool has_fields = false;
    for (const xmlNode* comp = org->children; comp != nullptr; comp = comp->next) {
      if (!Named(comp, "component")) continue;
      for (const xmlNode* s = comp->children; s != nullptr; s = s->next) {
        has_fields =
            has_fields || (Named(s, "observation") && HasMedvaultTemplate(s, kFieldTemplate));
      }
    }
    if ((members.empty() && !has_fields) || HasMedvaultTemplate(org, kWrapperTemplate) ||
        !identifies) {
      if (members_out != nullptr) {
        for (std::string& m : members) {
          if (members_out->size() < kMaxLinks) members_out->push_back(std::move(m));
        }
      }
      return Status::Ok();
    }
    Entry e;
    e.kind = kind;
    e.id = IdOf(org);
    e.code = ReadCoding(code);
    e.text = StatementText(code, org);
    e.status = StatusOf(org);
    ReadTimes(org, &e.start, &e.end);
    e.category = std::string(DerivedCategory(kind));
    e.members = std::move(members);
    ReadQualifiers(org, &e);
    ReadExtras(org, &e);
    MV_RETURN_IF_ERROR(Add(std::move(e)));
    if (members_out != nullptr && members_out->size() < kMaxLinks) {
      members_out->push_back(doc_->entries.back().id);
    }
    return Status::Ok();
  }

  static bool IsClinicalStatement(const xmlNode* n) {
    return Named(n, "observation") || Named(n, "act") || Named(n, "procedure") ||
           Named(n, "encounter") || Named(n, "substanceAdministration") || Named(n, "supply") ||
           Named(n, "organizer");
  }

  // A statement of a section without a kind, and the statements nested in
  // it (entryRelationship, component), which become statements of their own
  // that it names as members. Status and severity observations give its
  // status and severity; medvault extras are applied, not read as
  // statements. *id_out: the id of the entry made, "" when none.
  Status ReadStatement(const xmlNode* stmt, const Coding& section, int depth, std::string* id_out) {
    id_out->clear();
    if (!IsClinicalStatement(stmt) || IsExtra(stmt) || Negated(stmt)) return Status::Ok();
    Entry e;
    e.kind = EntryKind::kStatement;
    e.section = section;
    e.id = IdOf(stmt);
    const xmlNode* code = Child(stmt, "code");
    if (code == nullptr || (Attr(code, "code").empty() && Child(code, "translation") == nullptr)) {
      for (const xmlNode* alt :
           {Path(stmt, {"consumable", "manufacturedProduct", "manufacturedMaterial", "code"}),
            Path(stmt, {"product", "manufacturedProduct", "manufacturedMaterial", "code"}),
            Path(stmt, {"participant", "participantRole", "playingDevice", "code"})}) {
        if (alt != nullptr) {
          code = alt;
          break;
        }
      }
    }
    e.code = ReadCoding(code);
    e.text = StatementText(code, stmt);
    e.status = std::string(StatusObservation(stmt));
    if (e.status.empty()) e.status = StatusOf(stmt);
    e.severity = std::string(SeverityObservation(stmt));
    ReadTimes(stmt, &e.start, &e.end);
    ReadValues(stmt, &e.quantity, &e.value_code, &e.value_text);
    if (!e.quantity) {
      if (const xmlNode* q = Child(stmt, "doseQuantity"); q == nullptr || IsNull(q)) {
        q = Child(stmt, "quantity");
        if (q != nullptr && !IsNull(q) && AttrOpt(q, "value")) {
          e.quantity = Quantity{std::string(Attr(q, "value")), std::string(Attr(q, "unit"))};
        }
      } else if (AttrOpt(q, "value")) {
        e.quantity = Quantity{std::string(Attr(q, "value")), std::string(Attr(q, "unit"))};
      }
    }
    e.reference_range = ReadRange(stmt);
    ReadQualifiers(stmt, &e, /*reasons=*/false);
    if (depth >= 8 && !deep_statements_noted_) {
      for (const xmlNode* rel = stmt->children; rel != nullptr; rel = rel->next) {
        if (Named(rel, "entryRelationship") || Named(rel, "component")) {
          doc_->kept_in_original_only.push_back("statements nested more than 8 levels deep");
          deep_statements_noted_ = true;
          break;
        }
      }
    }
    if (depth < 8) {
      for (const xmlNode* rel = stmt->children; rel != nullptr; rel = rel->next) {
        if (!Named(rel, "entryRelationship") && !Named(rel, "component")) continue;
        for (const xmlNode* c = rel->children; c != nullptr; c = c->next) {
          if (c->type != XML_ELEMENT_NODE || IsStatusObs(c) || IsSeverityObs(c)) continue;
          std::string member;
          MV_RETURN_IF_ERROR(ReadStatement(c, section, depth + 1, &member));
          if (!member.empty() && e.members.size() < kMaxLinks) {
            e.members.push_back(std::move(member));
          }
        }
      }
    }
    ReadExtras(stmt, &e);
    MV_RETURN_IF_ERROR(Add(std::move(e)));
    *id_out = doc_->entries.back().id;
    return Status::Ok();
  }

  Status ReadObservation(const xmlNode* obs, EntryKind kind, const xmlNode* organizer) {
    if (Negated(obs) || IsExtra(obs)) return Status::Ok();
    Entry e;
    e.kind = kind;
    e.id = IdOf(obs);
    const xmlNode* code = Child(obs, "code");
    e.code = ReadCoding(code);
    e.text = StatementText(code, obs);
    e.status = StatusOf(obs);
    ReadTimes(obs, &e.start, &e.end);
    if (e.start.empty() && e.end.empty() && organizer != nullptr) {
      ReadTimes(organizer, &e.start, &e.end);
    }
    ReadValues(obs, &e.quantity, &e.value_code, &e.value_text);
    e.reference_range = ReadRange(obs);
    e.category = std::string(DerivedCategory(kind));
    ReadQualifiers(obs, &e);
    ReadExtras(obs, &e);
    return Add(std::move(e));
  }

  Status ReadFamilyOrganizer(const xmlNode* org) {
    const Coding relation = ReadCoding(Path(org, {"subject", "relatedSubject", "code"}));
    for (const xmlNode* comp = org->children; comp != nullptr; comp = comp->next) {
      if (!Named(comp, "component")) continue;
      for (const xmlNode* s = comp->children; s != nullptr; s = s->next) {
        if (Named(s, "observation")) MV_RETURN_IF_ERROR(ReadFamily(s, relation));
      }
    }
    return Status::Ok();
  }

  Status ReadFamily(const xmlNode* obs, const Coding& relation) {
    if (Negated(obs) || IsExtra(obs)) return Status::Ok();
    Entry e;
    e.kind = EntryKind::kFamilyHistory;
    e.id = IdOf(obs);
    const xmlNode* value = Child(obs, "value");
    e.code = ReadCoding(value);
    e.text = StatementText(value, obs);
    e.status = StatusOf(obs);
    ReadTimes(obs, &e.start, &e.end);
    e.relation = relation;
    ReadExtras(obs, &e);
    return Add(std::move(e));
  }

  // Procedures, encounters and planned statements: code, status, times.
  Status ReadSimple(const xmlNode* stmt, EntryKind kind) {
    if (Negated(stmt)) return Status::Ok();
    Entry e;
    e.kind = kind;
    e.id = IdOf(stmt);
    const xmlNode* code = Child(stmt, "code");
    if (Named(stmt, "substanceAdministration")) {
      if (const xmlNode* material =
              Path(stmt, {"consumable", "manufacturedProduct", "manufacturedMaterial", "code"})) {
        code = material;
      }
      if (const xmlNode* dose = Child(stmt, "doseQuantity"); dose != nullptr && !IsNull(dose)) {
        e.quantity = Quantity{std::string(Attr(dose, "value")), std::string(Attr(dose, "unit"))};
      }
      e.route = ReadCoding(Child(stmt, "routeCode"));
    } else if (Named(stmt, "supply") && code == nullptr) {
      code = Path(stmt, {"product", "manufacturedProduct", "manufacturedMaterial", "code"});
    }
    e.code = ReadCoding(code);
    e.text = StatementText(code, stmt);
    e.status = StatusOf(stmt);
    ReadTimes(stmt, &e.start, &e.end);
    if (kind == EntryKind::kPlan) e.mood = MoodFromHl7(kind, Attr(stmt, "moodCode"));
    ReadQualifiers(stmt, &e);
    ReadExtras(stmt, &e);
    return Add(std::move(e));
  }

  Status ReadNoteActivity(const xmlNode* act) {
    Entry e;
    e.kind = EntryKind::kNote;
    e.id = IdOf(act);
    const xmlNode* code = Child(act, "code");
    if (Attr(code, "code") == kNoteLoinc) {
      e.code = ReadCoding(Child(code, "translation"));
    } else {
      e.code = ReadCoding(code);
    }
    ReadEd(Child(act, "text"), &e.text, &e.media_type, &e.url, &e.data);
    e.status = StatusOf(act);
    ReadTimes(act, &e.start, &e.end);
    ReadExtras(act, &e);
    return Add(std::move(e));
  }

  // An entry of the Documents section WriteCcda writes.
  Status ReadDocumentAct(const xmlNode* act) {
    Entry e;
    e.kind = EntryKind::kDocumentReference;
    e.id = IdOf(act);
    const xmlNode* code = Child(act, "code");
    e.code = ReadCoding(code);
    e.text = OriginalText(code);
    e.status = StatusOf(act);
    ReadTimes(act, &e.start, &e.end);
    std::string ignored_text;
    ReadEd(Path(act, {"reference", "externalDocument", "text"}), &ignored_text, &e.media_type,
           &e.url, &e.data);
    ReadExtras(act, &e);
    return Add(std::move(e));
  }

  // externalDocument references anywhere below an entry: recorded (never
  // fetched) as document references.
  Status ScanExternalDocuments(const xmlNode* n, int depth) {
    for (const xmlNode* c = n->children; c != nullptr; c = c->next) {
      if (c->type != XML_ELEMENT_NODE) continue;
      if (Named(c, "externalDocument")) {
        Entry e;
        e.kind = EntryKind::kDocumentReference;
        e.id = IdOf(c);
        e.code = ReadCoding(Child(c, "code"));
        ReadEd(Child(c, "text"), &e.text, &e.media_type, &e.url, &e.data);
        if (!e.id.empty() || !e.url.empty() || !e.code.empty()) {
          MV_RETURN_IF_ERROR(Add(std::move(e)));
        }
      } else if (depth < 64) {
        MV_RETURN_IF_ERROR(ScanExternalDocuments(c, depth + 1));
      }
    }
    return Status::Ok();
  }

  Status ReadNonXmlBody(const xmlNode* body) {
    const xmlNode* text = Child(body, "text");
    if (text == nullptr) return Status::Ok();
    Entry e;
    e.kind = EntryKind::kNote;
    ReadEd(text, &e.text, &e.media_type, &e.url, &e.data);
    if (!e.media_type.empty() && !e.media_type.starts_with("text/")) {
      e.text.clear();  // a PDF or image: its bytes are the note's data
    }
    if (e.text.empty() && e.media_type.empty() && e.url.empty() && e.data.empty()) {
      return Status::Ok();
    }
    return Add(std::move(e));
  }

  const ParseLimits& limits_;
  ClinicalDocument* doc_;
  std::unordered_map<std::string_view, const xmlNode*> ids_;
  std::array<size_t, kEntryKindCount> per_kind_{};
  bool deep_statements_noted_ = false;
};

// Section templateId roots (R1.1 "entries optional" and R2.1 "entries
// required" ids) and LOINC codes, per section.
constexpr std::string_view kProblemRoots[] = {
    "2.16.840.1.113883.10.20.22.2.5",  "2.16.840.1.113883.10.20.22.2.5.1",
    "2.16.840.1.113883.10.20.22.2.20",  // past medical history
    "2.16.840.1.113883.10.20.22.2.43",  // admission diagnosis
    "2.16.840.1.113883.10.20.22.2.24",  // discharge diagnosis
};
constexpr std::string_view kProblemCodes[] = {"11450-4", "11348-0", "46241-6", "11535-2"};
constexpr std::string_view kAllergyRoots[] = {"2.16.840.1.113883.10.20.22.2.6",
                                              "2.16.840.1.113883.10.20.22.2.6.1"};
constexpr std::string_view kAllergyCodes[] = {"48765-2"};
constexpr std::string_view kMedicationRoots[] = {
    "2.16.840.1.113883.10.20.22.2.1",    "2.16.840.1.113883.10.20.22.2.1.1",
    "2.16.840.1.113883.10.20.22.2.44",    // admission medications
    "2.16.840.1.113883.10.20.22.2.11",    // discharge medications
    "2.16.840.1.113883.10.20.22.2.11.1",  // discharge medications
    "2.16.840.1.113883.10.20.22.2.38",    // medications administered
};
constexpr std::string_view kMedicationCodes[] = {"10160-0", "42346-7", "10183-2", "29549-3"};
constexpr std::string_view kResultRoots[] = {"2.16.840.1.113883.10.20.22.2.3",
                                             "2.16.840.1.113883.10.20.22.2.3.1"};
constexpr std::string_view kResultCodes[] = {"30954-2"};
constexpr std::string_view kVitalSignRoots[] = {"2.16.840.1.113883.10.20.22.2.4",
                                                "2.16.840.1.113883.10.20.22.2.4.1"};
constexpr std::string_view kVitalSignCodes[] = {"8716-3"};
constexpr std::string_view kSocialHistoryRoots[] = {"2.16.840.1.113883.10.20.22.2.17"};
constexpr std::string_view kSocialHistoryCodes[] = {"29762-2"};
constexpr std::string_view kFamilyHistoryRoots[] = {"2.16.840.1.113883.10.20.22.2.15"};
constexpr std::string_view kFamilyHistoryCodes[] = {"10157-6"};
constexpr std::string_view kProcedureRoots[] = {"2.16.840.1.113883.10.20.22.2.7",
                                                "2.16.840.1.113883.10.20.22.2.7.1"};
constexpr std::string_view kProcedureCodes[] = {"47519-4"};
constexpr std::string_view kImmunizationRoots[] = {"2.16.840.1.113883.10.20.22.2.2",
                                                   "2.16.840.1.113883.10.20.22.2.2.1"};
constexpr std::string_view kImmunizationCodes[] = {"11369-6"};
constexpr std::string_view kEncounterRoots[] = {"2.16.840.1.113883.10.20.22.2.22",
                                                "2.16.840.1.113883.10.20.22.2.22.1"};
constexpr std::string_view kEncounterCodes[] = {"46240-8"};
constexpr std::string_view kPlanRoots[] = {"2.16.840.1.113883.10.20.22.2.10"};
constexpr std::string_view kPlanCodes[] = {"18776-5"};
constexpr std::string_view kDocumentsRoots[] = {kMedvaultIdRoot};

const std::array<Reader::SectionReader, 13> Reader::kSections = {{
    {kProblemRoots, "", kProblemCodes, EntryKind::kProblem, &Reader::ReadProblemStatement},
    {kAllergyRoots, "", kAllergyCodes, EntryKind::kAllergy, &Reader::ReadAllergyStatement},
    {kMedicationRoots, "", kMedicationCodes, EntryKind::kMedication,
     &Reader::ReadSubstanceStatement},
    {kResultRoots, "", kResultCodes, EntryKind::kResult, &Reader::ReadObservationStatement},
    {kVitalSignRoots, "", kVitalSignCodes, EntryKind::kVitalSign,
     &Reader::ReadObservationStatement},
    {kSocialHistoryRoots, "", kSocialHistoryCodes, EntryKind::kSocialHistory,
     &Reader::ReadObservationStatement},
    {kFamilyHistoryRoots, "", kFamilyHistoryCodes, EntryKind::kFamilyHistory,
     &Reader::ReadFamilyStatement},
    {kProcedureRoots, "", kProcedureCodes, EntryKind::kProcedure, &Reader::ReadProcedureStatement},
    {kImmunizationRoots, "", kImmunizationCodes, EntryKind::kImmunization,
     &Reader::ReadSubstanceStatement},
    {kEncounterRoots, "", kEncounterCodes, EntryKind::kEncounter, &Reader::ReadEncounterStatement},
    {kPlanRoots, "", kPlanCodes, EntryKind::kPlan, &Reader::ReadPlanStatement},
    // Written by WriteCcda for kDocumentReference entries.
    {kDocumentsRoots,
     kDocumentsTemplate,
     {},
     EntryKind::kDocumentReference,
     &Reader::ReadDocumentStatement,
     true},
    // Written by WriteCcda for kResource entries.
    {kDocumentsRoots,
     kResourcesTemplate,
     {},
     EntryKind::kResource,
     &Reader::ReadResourceStatement,
     true},
}};

std::once_flag g_libxml_init;

}  // namespace

Result<ClinicalDocument> ParseCcda(std::string_view xml, const ParseLimits& limits) {
  if (xml.size() > limits.max_document_bytes) {
    return Status::ResourceExhausted("the document is " + std::to_string(xml.size()) +
                                     " bytes, more than the limit of " +
                                     std::to_string(limits.max_document_bytes));
  }
  if (TrimXmlSpace(xml).empty()) return Status::InvalidArgument("empty document");
  if (xml.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return Status::ResourceExhausted("the document is too large");
  }
  MV_RETURN_IF_ERROR(CheckProlog(xml));
  MV_RETURN_IF_ERROR(CheckMarkup(xml, limits));

  std::call_once(g_libxml_init, [] { xmlInitParser(); });
  ParseError error;
  ErrorScope scope(&error);
  std::unique_ptr<xmlParserCtxt, CtxtDeleter> ctxt(xmlNewParserCtxt());
  if (ctxt == nullptr) return Status::Internal("cannot create an XML parser");
  // Per-context handler too: errors tied to this parse never reach the
  // process-wide default (stderr).
  ctxt->sax->serror = OnStructuredError;
  const int options = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_COMPACT |
                      XML_PARSE_BIG_LINES | XML_PARSE_NOWARNING;
  std::unique_ptr<xmlDoc, DocDeleter> doc(xmlCtxtReadMemory(
      ctxt.get(), xml.data(), static_cast<int>(xml.size()), nullptr, nullptr, options));
  if (error.set) return ErrorStatus(error);
  if (doc == nullptr) {
    const xmlError* last = xmlCtxtGetLastError(ctxt.get());
    if (last != nullptr && last->code != XML_ERR_OK) {
      RecordError(last);
      if (error.set) return ErrorStatus(error);
    }
    return Status::InvalidArgument("the document is not well-formed XML");
  }
  if (doc->intSubset != nullptr || doc->extSubset != nullptr) {
    return Status::InvalidArgument("DOCTYPE and entity declarations are not accepted");
  }
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (root == nullptr || !IsHl7(root) ||
      std::strcmp(reinterpret_cast<const char*>(root->name), "ClinicalDocument") != 0) {
    return Status::InvalidArgument("root element is not an HL7 v3 ClinicalDocument");
  }

  ClinicalDocument out;
  out.source_format = Format::kCcda;
  Reader reader(limits, &out);
  MV_RETURN_IF_ERROR(reader.Run(root));
  return out;
}

}  // namespace medvault::interop

#include "keel/data/pii.h"

#include <arpa/inet.h>
#include <hs.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "keel/data/record_text.h"
#include "keel/data/records.h"
#include "keel/data/rejects_file.h"
#include "keel/util/sha256.h"

namespace keel::data {
namespace {

struct Pattern {
  PiiType type;
  const char* regex;
  unsigned flags;
};

// Candidates only: every match is validated (and may be narrowed) in C++ below.
// Hyperscan has no look-around, so boundary context is checked by the validators.
constexpr unsigned kSom = HS_FLAG_SOM_LEFTMOST;
const Pattern kPatterns[] = {
    {PiiType::kPrivateKey, R"(-----BEGIN [A-Z0-9 ]{0,32}PRIVATE KEY-----)", kSom},
    {PiiType::kUrlCredentials, R"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]+:[^\s/@]+@[A-Za-z0-9.\-]+)", kSom},
    {PiiType::kAwsAccessKey, R"(\b(?:AKIA|ASIA|AIDA|AROA)[0-9A-Z]{16}\b)", kSom},
    {PiiType::kGithubToken, R"(\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b)", kSom},
    {PiiType::kSecret,
     R"((?:api[_\-]?key|secret[_\-]?key|access[_\-]?key|access[_\-]?token|auth[_\-]?token|client[_\-]?secret|password|passwd|token|secret)["']?\s*[:=]\s*["']?[A-Za-z0-9_\-./+=~!@#$%^&*]{8,})",
     kSom | HS_FLAG_CASELESS},
    {PiiType::kEmail, R"([A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})", kSom},
    {PiiType::kIban, R"(\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b)", kSom},
    {PiiType::kCreditCard, R"(\b[0-9](?:[ \-]?[0-9]){12,18}\b)", kSom},
    {PiiType::kUsSsn, R"(\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b)", kSom},
    {PiiType::kIpv4, R"(\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b)", kSom},
    {PiiType::kIpv6, R"((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})", kSom},
    {PiiType::kPhone, R"((?:\+[0-9]{1,3}[ .\-]?)?(?:\([0-9]{2,4}\)|[0-9]{2,4})[ .\-]?[0-9]{3,4}[ .\-]?[0-9]{3,4}\b)",
     kSom},
};
constexpr size_t kPatternCount = sizeof(kPatterns) / sizeof(kPatterns[0]);
static_assert(kPatternCount == kPiiTypeCount);

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::string digits_of(std::string_view s) {
  std::string d;
  for (char c : s) {
    if (is_digit(c)) d.push_back(c);
  }
  return d;
}

// True when [begin, end) is part of a longer run of digit groups ("1234 5678 9012 3456
// 7" seen from its first 16 digits): a number cut out of a bigger one is not a card or
// a phone number.
bool continues_digit_run(std::string_view text, size_t begin, size_t end) {
  auto separator = [](char c) { return c == ' ' || c == '-' || c == '.'; };
  if (end < text.size() && is_digit(text[end])) return true;
  if (end + 1 < text.size() && separator(text[end]) && is_digit(text[end + 1])) return true;
  if (begin > 0 && is_digit(text[begin - 1])) return true;
  if (begin > 1 && separator(text[begin - 1]) && is_digit(text[begin - 2])) return true;
  return false;
}

struct RawMatch {
  uint32_t pattern;
  size_t begin;
  size_t end;
};

// Candidates kept per scanned text; a hostile text (megabytes of digits) would
// otherwise make the candidate list many times its own size.
constexpr size_t kMaxCandidates = size_t{1} << 22;

int on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int /*flags*/, void* context) {
  auto* matches = static_cast<std::vector<RawMatch>*>(context);
  if (matches->size() >= kMaxCandidates) return 1;  // stops the scan
  matches->push_back(RawMatch{id, static_cast<size_t>(from), static_cast<size_t>(to)});
  return 0;
}

// Validates a candidate [begin, end) of type; may narrow it (secrets, URL credentials)
// or widen it (a private key block). False when the candidate is not the real thing.
bool validate(PiiType type, std::string_view text, size_t* begin, size_t* end) {
  std::string_view m = text.substr(*begin, *end - *begin);
  char before = *begin > 0 ? text[*begin - 1] : ' ';
  char after = *end < text.size() ? text[*end] : ' ';
  switch (type) {
    case PiiType::kPrivateKey: {
      // The block runs to its END line; a block without one is redacted to the end.
      size_t stop = text.find("-----END ", *end);
      if (stop == std::string_view::npos) {
        *end = text.size();
        return true;
      }
      size_t close = text.find("PRIVATE KEY-----", stop);
      *end = close == std::string_view::npos ? text.size() : close + 16;
      return true;
    }
    case PiiType::kUrlCredentials: {
      // Only the user:password part is personal; scheme and host stay readable.
      size_t scheme_end = m.find("://");
      size_t at = m.rfind('@');
      if (scheme_end == std::string_view::npos || at == std::string_view::npos || at <= scheme_end + 3) return false;
      *end = *begin + at;
      *begin = *begin + scheme_end + 3;
      return true;
    }
    case PiiType::kAwsAccessKey:
    case PiiType::kGithubToken:
      return true;
    case PiiType::kSecret: {
      // The key name stays; the value (after ':' or '=', spaces and a quote) goes.
      size_t sep = m.find_first_of(":=");
      if (sep == std::string_view::npos) return false;
      size_t v = sep + 1;
      while (v < m.size() && (m[v] == ' ' || m[v] == '\t' || m[v] == '"' || m[v] == '\'')) ++v;
      if (m.size() - v < 8) return false;
      if (is_alnum(before) || before == '_') return false;  // "mytoken=" is not "token="
      *begin += v;
      return true;
    }
    case PiiType::kEmail: {
      size_t at = m.find('@');
      if (at == 0 || m[0] == '.' || m[at - 1] == '.') return false;
      if (m.back() == '-' || is_alnum(after)) return false;
      return true;
    }
    case PiiType::kIban:
      return iban_valid(m);
    case PiiType::kCreditCard: {
      if (continues_digit_run(text, *begin, *end)) return false;
      std::string digits = digits_of(m);
      if (digits.size() < 13 || digits.size() > 19) return false;
      if (digits[0] < '2' || digits[0] > '6') return false;  // Mastercard 2/5, Amex 3, Visa 4, Discover 6
      if (digits.find_first_not_of(digits[0]) == std::string::npos) return false;
      return luhn_valid(m);
    }
    case PiiType::kUsSsn:
      return us_ssn_valid(m);
    case PiiType::kIpv4:
      // "1.2.3.4.5" and version strings "v1.2.3.4" are not addresses.
      if (before == '.' || is_alnum(before) || (after == '.' && *end + 1 < text.size() && is_digit(text[*end + 1]))) {
        return false;
      }
      return ipv4_valid(m);
    case PiiType::kIpv6: {
      if (is_alnum(before) || before == ':' || before == '_' || is_hex(after) || after == ':') return false;
      if (m.size() < 3 || m.size() > 39) return false;
      size_t hex = 0;
      for (char c : m) hex += is_hex(c) ? 1 : 0;
      if (hex == 0) return false;
      std::string z(m);
      unsigned char buf[16];
      return inet_pton(AF_INET6, z.c_str(), buf) == 1;
    }
    case PiiType::kPhone: {
      if (is_alnum(before) || before == '.' || before == '-' || before == '+') return false;
      if (continues_digit_run(text, *begin, *end)) return false;
      std::string digits = digits_of(m);
      if (digits.size() < 10 || digits.size() > 15) return false;
      if (digits.find_first_not_of(digits[0]) == std::string::npos) return false;
      return true;
    }
  }
  return false;
}

bool overlaps(const PiiFinding& a, const PiiFinding& b) {
  return a.begin < b.end && b.begin < a.end;
}

}  // namespace

struct PiiScanner::Impl {
  hs_database_t* database = nullptr;
  hs_scratch_t* scratch = nullptr;
  std::vector<RawMatch> matches;  // reused between calls
  std::vector<PiiFinding> candidates;
  ~Impl() {
    hs_free_scratch(scratch);
    hs_free_database(database);
  }
};

PiiScanner::PiiScanner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PiiScanner::~PiiScanner() = default;

Result<std::unique_ptr<PiiScanner>> PiiScanner::create() {
  if (hs_valid_platform() != HS_SUCCESS) {
    return failed_precondition("Hyperscan needs a CPU with SSSE3; this one lacks it, so PII scanning is unavailable");
  }
  std::vector<const char*> expressions;
  std::vector<unsigned> flags;
  std::vector<unsigned> ids;
  for (size_t i = 0; i < kPatternCount; ++i) {
    expressions.push_back(kPatterns[i].regex);
    flags.push_back(kPatterns[i].flags);
    ids.push_back(static_cast<unsigned>(i));
  }
  auto impl = std::make_unique<Impl>();
  hs_compile_error_t* error = nullptr;
  if (hs_compile_multi(expressions.data(), flags.data(), ids.data(), static_cast<unsigned>(kPatternCount),
                       HS_MODE_BLOCK, nullptr, &impl->database, &error) != HS_SUCCESS) {
    std::string message = error != nullptr && error->message != nullptr ? error->message : "unknown error";
    int which = error != nullptr ? error->expression : -1;
    hs_free_compile_error(error);
    return internal_error("Hyperscan could not compile PII pattern " + std::to_string(which) + ": " + message);
  }
  if (hs_alloc_scratch(impl->database, &impl->scratch) != HS_SUCCESS) {
    return resource_exhausted("Hyperscan could not allocate its scratch space");
  }
  return std::unique_ptr<PiiScanner>(new PiiScanner(std::move(impl)));
}

Status PiiScanner::find(std::string_view text, std::vector<PiiFinding>* findings) {
  findings->clear();
  if (text.empty()) return Status::Ok();
  if (text.size() > 0xffffffffu) return invalid_argument("text larger than 4 GiB cannot be scanned for PII");
  auto& matches = impl_->matches;
  matches.clear();
  hs_error_t rc =
      hs_scan(impl_->database, text.data(), static_cast<unsigned>(text.size()), 0, impl_->scratch, on_match, &matches);
  if (rc == HS_SCAN_TERMINATED) {
    return resource_exhausted("a text of " + std::to_string(text.size()) + " bytes holds more than " +
                              std::to_string(kMaxCandidates) + " PII candidates; split it into smaller records");
  }
  if (rc != HS_SUCCESS) return internal_error("Hyperscan scan failed (code " + std::to_string(rc) + ")");

  // Each (pattern, start) may end at several places: try the longest first.
  std::sort(matches.begin(), matches.end(), [](const RawMatch& x, const RawMatch& y) {
    if (x.pattern != y.pattern) return x.pattern < y.pattern;
    if (x.begin != y.begin) return x.begin < y.begin;
    return x.end > y.end;
  });
  auto& candidates = impl_->candidates;
  candidates.clear();
  for (size_t i = 0; i < matches.size();) {
    size_t j = i;
    while (j < matches.size() && matches[j].pattern == matches[i].pattern && matches[j].begin == matches[i].begin) ++j;
    PiiType type = kPatterns[matches[i].pattern].type;
    int tries = 0;
    for (size_t k = i; k < j && tries < 8; ++k, ++tries) {
      size_t begin = matches[k].begin;
      size_t end = matches[k].end;
      if (validate(type, text, &begin, &end)) {
        candidates.push_back(PiiFinding{type, begin, end});
        break;
      }
    }
    i = j;
  }
  // Settle overlaps: higher-priority types first, then longer spans, then earlier.
  std::sort(candidates.begin(), candidates.end(), [](const PiiFinding& x, const PiiFinding& y) {
    if (x.type != y.type) return x.type < y.type;
    if (x.end - x.begin != y.end - y.begin) return x.end - x.begin > y.end - y.begin;
    return x.begin < y.begin;
  });
  for (const auto& c : candidates) {
    bool clash = false;
    for (const auto& f : *findings) clash = clash || overlaps(c, f);
    if (!clash) findings->push_back(c);
  }
  std::sort(findings->begin(), findings->end(),
            [](const PiiFinding& x, const PiiFinding& y) { return x.begin < y.begin; });
  return Status::Ok();
}

Result<std::string> PiiScanner::redact(std::string_view text, RedactionMode mode, PiiCounts* counts) {
  std::vector<PiiFinding> findings;
  KEEL_RETURN_IF_ERROR(find(text, &findings));
  if (findings.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (const auto& f : findings) {
    out.append(text.substr(pos, f.begin - pos));
    std::string_view value = text.substr(f.begin, f.end - f.begin);
    std::string_view name = pii_type_name(f.type);
    switch (mode) {
      case RedactionMode::kRedact:
        out.push_back('[');
        out.append(name);
        out.push_back(']');
        break;
      case RedactionMode::kMask:
        for (char c : value) {
          if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) out.push_back(c == '\n' ? '\n' : '*');
        }
        break;
      case RedactionMode::kHash:
        out.push_back('[');
        out.append(name);
        out.push_back(':');
        out.append(Sha256::of(value).substr(0, 16));
        out.push_back(']');
        break;
    }
    if (counts != nullptr) ++(*counts)[static_cast<size_t>(f.type)];
    pos = f.end;
  }
  out.append(text.substr(pos));
  return out;
}

std::string_view pii_type_name(PiiType type) {
  switch (type) {
    case PiiType::kPrivateKey:
      return "PRIVATE_KEY";
    case PiiType::kUrlCredentials:
      return "URL_CREDENTIALS";
    case PiiType::kAwsAccessKey:
      return "AWS_ACCESS_KEY";
    case PiiType::kGithubToken:
      return "GITHUB_TOKEN";
    case PiiType::kSecret:
      return "SECRET";
    case PiiType::kEmail:
      return "EMAIL";
    case PiiType::kIban:
      return "IBAN";
    case PiiType::kCreditCard:
      return "CREDIT_CARD";
    case PiiType::kUsSsn:
      return "US_SSN";
    case PiiType::kIpv4:
      return "IPV4";
    case PiiType::kIpv6:
      return "IPV6";
    case PiiType::kPhone:
      return "PHONE";
  }
  return "PII";
}

Result<RedactionMode> parse_redaction_mode(std::string_view name) {
  if (name == "redact") return RedactionMode::kRedact;
  if (name == "mask") return RedactionMode::kMask;
  if (name == "hash") return RedactionMode::kHash;
  return invalid_argument("unknown PII mode \"" + std::string(name) + "\": use redact, mask or hash");
}

bool luhn_valid(std::string_view digits_and_separators) {
  std::string digits = digits_of(digits_and_separators);
  if (digits.size() < 2) return false;
  int sum = 0;
  bool twice = false;
  for (size_t i = digits.size(); i-- > 0;) {
    int d = digits[i] - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

bool iban_valid(std::string_view iban) {
  std::string compact;
  for (char c : iban) {
    if (c == ' ') continue;
    if (!is_alnum(c)) return false;
    compact.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c);
  }
  if (compact.size() < 15 || compact.size() > 34) return false;
  if (!(compact[0] >= 'A' && compact[0] <= 'Z' && compact[1] >= 'A' && compact[1] <= 'Z' && is_digit(compact[2]) &&
        is_digit(compact[3]))) {
    return false;
  }
  // Move the first four characters to the end, letters to 10..35, and take mod 97.
  std::string rearranged = compact.substr(4) + compact.substr(0, 4);
  int remainder = 0;
  for (char c : rearranged) {
    if (is_digit(c)) {
      remainder = (remainder * 10 + (c - '0')) % 97;
    } else {
      remainder = (remainder * 100 + (c - 'A' + 10)) % 97;
    }
  }
  return remainder == 1;
}

bool us_ssn_valid(std::string_view ssn) {
  if (ssn.size() != 11 || ssn[3] != '-' || ssn[6] != '-') return false;
  for (size_t i : {0, 1, 2, 4, 5, 7, 8, 9, 10}) {
    if (!is_digit(ssn[i])) return false;
  }
  int area = (ssn[0] - '0') * 100 + (ssn[1] - '0') * 10 + (ssn[2] - '0');
  int group = (ssn[4] - '0') * 10 + (ssn[5] - '0');
  int serial = (ssn[7] - '0') * 1000 + (ssn[8] - '0') * 100 + (ssn[9] - '0') * 10 + (ssn[10] - '0');
  // The SSA never issues area 000, 666 or 900-999, group 00 or serial 0000; 078-05-1120
  // and 219-09-9999 were published in advertising and are void.
  if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) return false;
  if (ssn == "078-05-1120" || ssn == "219-09-9999") return false;
  return true;
}

bool ipv4_valid(std::string_view address) {
  int octets = 0;
  size_t i = 0;
  while (i <= address.size()) {
    size_t j = i;
    while (j < address.size() && is_digit(address[j])) ++j;
    size_t len = j - i;
    if (len == 0 || len > 3) return false;
    if (len > 1 && address[i] == '0') return false;  // "01" is octal in some parsers: ambiguous
    int value = 0;
    for (size_t k = i; k < j; ++k) value = value * 10 + (address[k] - '0');
    if (value > 255) return false;
    ++octets;
    if (j == address.size()) break;
    if (address[j] != '.') return false;
    i = j + 1;
  }
  return octets == 4;
}

Result<PiiFileSummary> redact_file(const PiiFileOptions& o) {
  if (o.input.empty() || o.output.empty()) return invalid_argument("pii needs an input and an output file");
  if (o.input == o.output) return invalid_argument("the output must be a different file from the input");
  auto start = std::chrono::steady_clock::now();
  KEEL_ASSIGN_OR_RETURN(auto scanner, PiiScanner::create());
  KEEL_ASSIGN_OR_RETURN(auto rejects, RejectsFile::open(o.rejects));
  ReadOptions ro;
  ro.format = o.input_format;
  ro.max_record_bytes = o.max_record_bytes;
  ro.text_field = o.field;
  RejectsFile* rejects_ptr = rejects.get();
  ro.on_reject = [rejects_ptr](const Rejection& r) { rejects_ptr->add(r); };
  KEEL_ASSIGN_OR_RETURN(auto reader, RecordReader::open(o.input, ro));
  WriteOptions wo;
  wo.format = o.output_format;
  wo.text_field = o.field;
  KEEL_ASSIGN_OR_RETURN(auto writer, RecordWriter::open(o.output, wo));
  PiiFileSummary summary;
  Record record;
  std::vector<std::string*> parts;  // the field, or each message of a chat (record_text.h)
  while (true) {
    KEEL_ASSIGN_OR_RETURN(bool got, reader->next(&record));
    if (!got) break;
    ++summary.records_read;
    if (o.progress && (summary.records_read & 1023) == 0) o.progress(reader->file_bytes_read(), summary.records_read);
    bool changed = false;
    if (!text_parts(&record, o.field, &parts)) ++summary.records_without_field;
    for (std::string* text : parts) {
      summary.text_bytes += text->size();
      uint64_t before = 0;
      for (uint64_t c : summary.counts) before += c;
      auto clean = scanner->redact(*text, o.mode, &summary.counts);
      if (!clean.ok()) {
        return clean.status().with_context(o.input + " line " + std::to_string(reader->record_line()));
      }
      uint64_t after = 0;
      for (uint64_t c : summary.counts) after += c;
      if (after != before) {
        *text = std::move(*clean);
        changed = true;
      }
    }
    if (changed) ++summary.records_changed;
    // An unchanged JSONL record is copied as read (byte for byte, no serialising).
    std::string_view raw = reader->raw_json();
    if (!changed && !raw.empty() && writer->writes_raw_json()) {
      KEEL_RETURN_IF_ERROR(writer->write_raw_json(raw));
    } else {
      KEEL_RETURN_IF_ERROR(writer->write(record));
    }
  }
  if (o.progress) o.progress(reader->file_bytes_read(), summary.records_read);
  KEEL_RETURN_IF_ERROR(writer->close());
  KEEL_RETURN_IF_ERROR(rejects->close());
  summary.rejected = rejects->count();
  summary.first_rejections = rejects->first();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace keel::data

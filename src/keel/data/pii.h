// Detection and redaction of personal data and secrets in text. Hyperscan scans for
// every pattern at once (leftmost match starts); each candidate is then validated in
// C++ (Luhn for cards, mod-97 for IBANs, SSA rules for US SSNs, octets for IPv4,
// inet_pton for IPv6) and overlaps are settled by type priority, then length.
// A PiiScanner is not thread-safe (it owns one Hyperscan scratch): use one per thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keel/data/records.h"
#include "keel/util/status.h"

namespace keel::data {

// In priority order: when two findings overlap, the earlier type wins.
enum class PiiType {
  kPrivateKey,
  kUrlCredentials,
  kAwsAccessKey,
  kGithubToken,
  kSecret,
  kEmail,
  kIban,
  kCreditCard,
  kUsSsn,
  kIpv4,
  kIpv6,
  kPhone,
};
constexpr size_t kPiiTypeCount = 12;

// "PRIVATE_KEY", "URL_CREDENTIALS", "AWS_ACCESS_KEY", "GITHUB_TOKEN", "SECRET", "EMAIL",
// "IBAN", "CREDIT_CARD", "US_SSN", "IPV4", "IPV6", "PHONE".
std::string_view pii_type_name(PiiType type);

enum class RedactionMode {
  kRedact,  // "[EMAIL]"
  kMask,    // one '*' per character
  // "[EMAIL:" + first 16 hex digits of sha256(value) + "]": the same value always gives
  // the same tag, so records stay joinable. Unsalted: a value from a small space (a
  // phone number, an SSN) can be recovered by trying them all; use redact for those.
  kHash,
};
Result<RedactionMode> parse_redaction_mode(std::string_view name);

struct PiiFinding {
  PiiType type;
  size_t begin;  // byte offsets into the scanned text; [begin, end)
  size_t end;
};

using PiiCounts = std::array<uint64_t, kPiiTypeCount>;

class PiiScanner {
 public:
  // Compiles the patterns; fails only if Hyperscan cannot (an unsupported CPU).
  static Result<std::unique_ptr<PiiScanner>> create();
  ~PiiScanner();
  PiiScanner(const PiiScanner&) = delete;
  PiiScanner& operator=(const PiiScanner&) = delete;

  // Validated, non-overlapping findings in text order.
  Status find(std::string_view text, std::vector<PiiFinding>* findings);
  // text with every finding replaced; adds to *counts (may be nullptr).
  Result<std::string> redact(std::string_view text, RedactionMode mode, PiiCounts* counts);

 private:
  struct Impl;
  explicit PiiScanner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Validators, exposed for tests. Each takes the candidate text as matched.
bool luhn_valid(std::string_view digits_and_separators);
bool iban_valid(std::string_view iban);   // spaces allowed; length 15..34, mod 97 == 1
bool us_ssn_valid(std::string_view ssn);  // "AAA-GG-SSSS"
bool ipv4_valid(std::string_view address);

// Redacting a record file: the string field `field` of every record is rewritten;
// every other field, and records without the field, pass through unchanged.
struct PiiFileOptions {
  std::string input;
  std::string output;
  std::string input_format;
  std::string output_format;
  std::string rejects;
  std::string field = "text";
  RedactionMode mode = RedactionMode::kRedact;
  size_t max_record_bytes = size_t{64} << 20;
  std::function<void(uint64_t bytes, uint64_t records)> progress;
};

struct PiiFileSummary {
  uint64_t records_read = 0;
  uint64_t records_changed = 0;
  uint64_t records_without_field = 0;
  uint64_t rejected = 0;
  std::vector<Rejection> first_rejections;  // up to three, for the user
  uint64_t text_bytes = 0;                  // bytes of the scanned field
  PiiCounts counts{};
  double seconds = 0;
};

Result<PiiFileSummary> redact_file(const PiiFileOptions& options);

}  // namespace keel::data

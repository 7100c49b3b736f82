// PII detection: each type on realistic text, the validators rejecting look-alikes
// (Luhn-failing cards, bad IBAN checksums, void SSNs, impossible addresses), the three
// redaction modes, and the file-level pass keeping every other field.
#include "keel/data/pii.h"

#include <gtest/gtest.h>

#include <fstream>

#include "keel/data/records.h"
#include "support/test_support.h"

namespace keel::data {
namespace {

class Pii : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = PiiScanner::create();
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    scanner_ = std::move(*s);
  }
  std::string redact(const std::string& text, RedactionMode mode = RedactionMode::kRedact) {
    auto r = scanner_->redact(text, mode, &counts_);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : "";
  }
  // "TYPE:value" for every finding.
  std::vector<std::string> found(const std::string& text) {
    std::vector<PiiFinding> f;
    EXPECT_TRUE(scanner_->find(text, &f).ok());
    std::vector<std::string> out;
    for (const auto& x : f)
      out.push_back(std::string(pii_type_name(x.type)) + ":" + text.substr(x.begin, x.end - x.begin));
    return out;
  }
  std::unique_ptr<PiiScanner> scanner_;
  PiiCounts counts_{};
};

using Found = std::vector<std::string>;

TEST_F(Pii, EmailsPhonesAndAddresses) {
  EXPECT_EQ(redact("Write to john.doe+news@mail.example.co.uk today."), "Write to [EMAIL] today.");
  EXPECT_EQ(found("call +1 (555) 123-4567 or 020 7946 0958."),
            (Found{"PHONE:+1 (555) 123-4567", "PHONE:020 7946 0958"}));
  EXPECT_EQ(found("server 192.168.1.20, not 999.1.1.1 or 1.2.3.4.5 or v1.2.3.4"), (Found{"IPV4:192.168.1.20"}));
  EXPECT_EQ(found("host 2001:db8::8a2e:370:7334 and ::1 at 12:30:45 in std::vector"),
            (Found{"IPV6:2001:db8::8a2e:370:7334", "IPV6:::1"}));
  EXPECT_EQ(found("order 1234567 on 2024-01-15"), Found{});
}

TEST_F(Pii, CreditCardsNeedAValidLuhnChecksum) {
  EXPECT_TRUE(luhn_valid("4111 1111 1111 1111"));
  EXPECT_FALSE(luhn_valid("4111 1111 1111 1112"));
  EXPECT_EQ(found("card 4111 1111 1111 1111 exp"), (Found{"CREDIT_CARD:4111 1111 1111 1111"}));
  EXPECT_EQ(found("card 5500-0000-0000-0004."), (Found{"CREDIT_CARD:5500-0000-0000-0004"}));
  EXPECT_EQ(found("amex 378282246310005"), (Found{"CREDIT_CARD:378282246310005"}));
  // One digit off: the checksum fails, and no other type claims the number either.
  EXPECT_EQ(found("card 4111 1111 1111 1112 exp"), Found{});
  EXPECT_EQ(found("ref 4111111111111112"), Found{});
}

TEST_F(Pii, IbanNeedsItsMod97Checksum) {
  EXPECT_TRUE(iban_valid("DE89 3704 0044 0532 0130 00"));
  EXPECT_TRUE(iban_valid("GB82WEST12345698765432"));
  EXPECT_FALSE(iban_valid("DE89 3704 0044 0532 0130 01"));
  EXPECT_FALSE(iban_valid("GB82WEST12345698765433"));
  EXPECT_EQ(found("pay to DE89 3704 0044 0532 0130 00 please"), (Found{"IBAN:DE89 3704 0044 0532 0130 00"}));
  EXPECT_EQ(found("pay to GB82WEST12345698765433 please"), Found{});
}

TEST_F(Pii, UsSsnFollowsTheIssuingRules) {
  EXPECT_TRUE(us_ssn_valid("123-45-6789"));
  for (const char* bad : {"000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "078-05-1120"}) {
    EXPECT_FALSE(us_ssn_valid(bad)) << bad;
    EXPECT_EQ(found(std::string("ssn ") + bad), Found{}) << bad;
  }
  EXPECT_EQ(found("SSN: 123-45-6789."), (Found{"US_SSN:123-45-6789"}));
}

TEST_F(Pii, Ipv4OctetRules) {
  EXPECT_TRUE(ipv4_valid("10.0.0.1"));
  EXPECT_TRUE(ipv4_valid("255.255.255.255"));
  EXPECT_FALSE(ipv4_valid("256.1.1.1"));
  EXPECT_FALSE(ipv4_valid("10.01.0.1"));
  EXPECT_FALSE(ipv4_valid("10.0.0"));
}

TEST_F(Pii, SecretsAndCredentials) {
  EXPECT_EQ(redact("db: postgres://admin:s3cr3t!@db.example.com:5432/app"),
            "db: postgres://[URL_CREDENTIALS]@db.example.com:5432/app");
  EXPECT_EQ(redact("aws AKIAIOSFODNN7EXAMPLE key"), "aws [AWS_ACCESS_KEY] key");
  std::string token = "ghp_" + std::string("aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A");
  EXPECT_EQ(redact("token " + token + " end"), "token [GITHUB_TOKEN] end");
  EXPECT_EQ(redact("config: api_key = 'sk_live_abcdef123456'"), "config: api_key = '[SECRET]'");
  EXPECT_EQ(redact("PASSWORD=hunter2hunter2"), "PASSWORD=[SECRET]");
  EXPECT_EQ(redact("password: short"), "password: short");
  EXPECT_EQ(redact("a\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAKC\n-----END RSA PRIVATE KEY-----\nb"),
            "a\n[PRIVATE_KEY]\nb");
  EXPECT_EQ(redact("x -----BEGIN PRIVATE KEY-----\nMIIE cut off"), "x [PRIVATE_KEY]");
}

TEST_F(Pii, ModesAndCounts) {
  std::string text = "mail bob@example.com and ann@example.org, ip 10.1.2.3";
  EXPECT_EQ(redact(text), "mail [EMAIL] and [EMAIL], ip [IPV4]");
  EXPECT_EQ(counts_[static_cast<size_t>(PiiType::kEmail)], 2u);
  EXPECT_EQ(counts_[static_cast<size_t>(PiiType::kIpv4)], 1u);
  EXPECT_EQ(redact("bob@example.com", RedactionMode::kMask), std::string(15, '*'));
  // One '*' per character, not per byte.
  EXPECT_EQ(redact("https://j\xC3\xB6rg:pw@host", RedactionMode::kMask), "https://*******@host");
  std::string hashed = redact("bob@example.com", RedactionMode::kHash);
  EXPECT_EQ(hashed, redact("bob@example.com", RedactionMode::kHash));
  EXPECT_EQ(hashed.size(), std::string("[EMAIL:]").size() + 16);
  EXPECT_NE(hashed, redact("ann@example.com", RedactionMode::kHash));
  EXPECT_EQ(redact("nothing to see here"), "nothing to see here");
}

TEST(PiiFile, RedactsTheFieldAndKeepsEverythingElse) {
  keel::testing::TempDir dir;
  {
    std::ofstream out(dir.file("in.jsonl"));
    out << R"({"id":1,"text":"mail bob@example.com","note":"bob@example.com"})"
        << "\n"
        << R"({"id": 2, "text": "clean"})"
        << "\n"
        << "not json\n"
        << R"({"id":3,"body":"no text"})"
        << "\n";
  }
  PiiFileOptions o;
  o.input = dir.file("in.jsonl");
  o.output = dir.file("out.jsonl.zst");
  auto s = redact_file(o);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->records_read, 3u);
  EXPECT_EQ(s->records_changed, 1u);
  EXPECT_EQ(s->records_without_field, 1u);
  EXPECT_EQ(s->rejected, 1u);
  EXPECT_EQ(s->counts[static_cast<size_t>(PiiType::kEmail)], 1u);
  auto reader = RecordReader::open(o.output, {});
  ASSERT_TRUE(reader.ok());
  Record r;
  ASSERT_TRUE(*(*reader)->next(&r));
  EXPECT_EQ(r.dump(), R"({"id":1,"text":"mail [EMAIL]","note":"bob@example.com"})");
  // An unchanged JSONL record is copied byte for byte.
  ASSERT_TRUE(*(*reader)->next(&r));
  EXPECT_EQ((*reader)->raw_json(), R"({"id": 2, "text": "clean"})");
}

}  // namespace
}  // namespace keel::data

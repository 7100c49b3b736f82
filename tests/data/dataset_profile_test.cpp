// The dataset profile: per-field counts and types, length percentiles and histograms,
// the categorical rule, languages, duplicates (exact and MinHash clusters), PII, what
// the quality filters would remove, outliers, token lengths through a counter, and the
// HTML report (standalone, escaped).
#include "keel/data/dataset_profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "keel/data/profile_report.h"
#include "support/test_support.h"

namespace keel::data {
namespace {

ProfileJson profile_of(const std::vector<Record>& records, ProfileOptions options = {}) {
  auto profiler = DatasetProfiler::create(std::move(options));
  EXPECT_TRUE(profiler.ok()) << profiler.status().to_string();
  uint64_t line = 0;
  for (const auto& r : records) {
    Status st = (*profiler)->add(r, ++line);
    EXPECT_TRUE(st.ok()) << st.to_string();
  }
  return (*profiler)->finish();
}

const ProfileJson& field(const ProfileJson& p, const std::string& name) {
  for (const auto& f : p["fields"]) {
    if (f["name"] == name) return f;
  }
  static const ProfileJson none;
  ADD_FAILURE() << "no field " << name;
  return none;
}

// An English-looking paragraph of `sentences` sentences: English function words around
// made-up words, so that no two paragraphs share a word 5-gram by chance.
std::string english(uint64_t seed, int sentences) {
  uint64_t x = seed * 2654435761u + 17;
  auto word = [&x] {
    std::string w;
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    size_t len = 4 + (x >> 60) % 5;
    for (size_t c = 0; c < len; ++c) w.push_back(static_cast<char>('a' + (x >> (c * 6 + 8)) % 26));
    return w;
  };
  std::string out;
  for (int s = 0; s < sentences; ++s) {
    if (s > 0) out += ' ';
    for (const char* glue : {"The ", " and the ", " have ", " with ", " of ", " to "}) {
      out.append(glue);
      out.append(word());
    }
    out.append(" near the town.");
  }
  return out;
}

TEST(DatasetProfile, FieldsTypesNullsAndLengths) {
  std::vector<Record> records = {
      {{"id", 1}, {"text", "one two three"}, {"score", 0.5}, {"tags", Record::array({"a"})}},
      {{"id", 2}, {"text", ""}, {"score", 2}, {"tags", Record::array()}},
      {{"id", 3}, {"text", nullptr}, {"score", 1.5}},
      {{"id", 4}, {"text", "h\u00e9llo  w\u00f6rld"}, {"score", "n/a"}},
  };
  ProfileJson p = profile_of(records);
  EXPECT_EQ(p["records"], 4);
  EXPECT_EQ(p["text_field"], "text");
  const auto& id = field(p, "id");
  EXPECT_EQ(id["type"], "integer");
  EXPECT_EQ(id["numbers"]["max"], 4.0);
  const auto& text = field(p, "text");
  EXPECT_EQ(text["type"], "string");
  EXPECT_EQ(text["null"], 1);
  EXPECT_EQ(text["empty"], 1);
  EXPECT_EQ(text["missing"], 0);
  // Lengths in code points and words: 13/3, 0/0, 12/2.
  const auto& chars = text["lengths"]["chars"];
  EXPECT_EQ(chars["count"], 3);
  EXPECT_EQ(chars["min"], 0);
  EXPECT_EQ(chars["max"], 13);
  EXPECT_EQ(chars["percentiles"]["p50"], 12);
  EXPECT_EQ(text["lengths"]["words"]["max"], 3);
  EXPECT_EQ(text["lengths"]["words"]["percentiles"]["p50"], 2);
  EXPECT_EQ(field(p, "score")["type"], "mixed");
  const auto& tags = field(p, "tags");
  EXPECT_EQ(tags["type"], "array");
  EXPECT_EQ(tags["missing"], 2);
  EXPECT_EQ(tags["empty"], 1);
  EXPECT_FALSE(tags.contains("categorical"));
  // Integers and floats together are numbers.
  ProfileJson numbers = profile_of({{{"x", 1}}, {{"x", 2.5}}});
  EXPECT_EQ(field(numbers, "x")["type"], "number");
  ProfileJson schema = profile_schema(p);
  ASSERT_EQ(schema.size(), 4u);
  EXPECT_EQ(schema[0], ProfileJson({{"name", "id"}, {"type", "integer"}}));
  EXPECT_EQ(schema[3], ProfileJson({{"name", "tags"}, {"type", "array"}}));
}

TEST(DatasetProfile, HistogramCountsEveryValueInEqualBins) {
  std::vector<Record> records;
  for (int i = 0; i < 100; ++i) records.push_back({{"text", std::string(static_cast<size_t>(i), 'x')}});
  ProfileOptions options;
  options.histogram_bins = 10;
  ProfileJson p = profile_of(records, options);
  const auto& chars = field(p, "text")["lengths"]["chars"];
  EXPECT_EQ(chars["percentiles"]["p50"], 49);
  EXPECT_EQ(chars["percentiles"]["p99"], 98);
  EXPECT_EQ(chars["histogram"]["from"], 0);
  EXPECT_EQ(chars["histogram"]["width"], 10);
  EXPECT_EQ(chars["histogram"]["counts"], ProfileJson(std::vector<int>(10, 10)));
}

TEST(DatasetProfile, CategoricalRuleOfTheDatasetViewer) {
  EXPECT_TRUE(is_categorical(10, 10));       // at most 10 values: always
  EXPECT_FALSE(is_categorical(11, 50));      // 11 of 50 is more than a fifth
  EXPECT_TRUE(is_categorical(11, 55));       // exactly a fifth
  EXPECT_TRUE(is_categorical(999, 10000));
  EXPECT_FALSE(is_categorical(1000, 100000));  // 1,000 values is too many
  EXPECT_FALSE(is_categorical(0, 0));

  std::vector<Record> records;
  for (int i = 0; i < 60; ++i) {
    Record r = Record::object();
    r["label"] = i % 3 == 0 ? "neg" : "pos";
    r["id"] = std::to_string(i * 7 + 1000);
    r["flag"] = i % 2 == 0;
    records.push_back(std::move(r));
  }
  ProfileJson p = profile_of(records);
  const auto& label = field(p, "label")["categorical"];
  EXPECT_EQ(label["distinct"], 2);
  EXPECT_EQ(label["frequencies"][0]["value"], "pos");
  EXPECT_EQ(label["frequencies"][0]["count"], 40);
  EXPECT_EQ(label["frequencies"][1]["count"], 20);
  EXPECT_FALSE(field(p, "id").contains("categorical"));  // 60 distinct of 60
  EXPECT_EQ(field(p, "flag")["categorical"]["frequencies"][0]["value"], false);
}

TEST(DatasetProfile, LanguagesDuplicatesPiiAndQuality) {
  std::vector<Record> records;
  for (int i = 0; i < 20; ++i) records.push_back({{"text", english(static_cast<uint64_t>(i), 8)}});
  std::string near = english(3, 8);
  near.replace(near.rfind("town"), 4, "city");  // one word of ~130 differs
  records.push_back({{"text", near}});
  records.push_back({{"text", english(5, 8)}});  // an exact copy
  records.push_back({{"text",
                      "Le chat dort sur le canap\u00e9 pendant que la pluie tombe doucement sur les toits de la ville, "
                      "et les enfants lisent des histoires anciennes pr\u00e8s de la chemin\u00e9e."}});
  records.push_back({{"text", "Write to ana@example.com or call from 192.168.10.20, please."}});
  ProfileJson p = profile_of(records);
  EXPECT_EQ(p["languages"]["mix"][0]["code"], "en");
  bool french = false;
  for (const auto& l : p["languages"]["mix"]) french = french || l["code"] == "fr";
  EXPECT_TRUE(french) << p["languages"].dump();

  EXPECT_EQ(p["duplicates"]["exact"]["duplicates"], 1);
  EXPECT_EQ(p["duplicates"]["exact"]["groups"], 1);
  const auto& n = p["duplicates"]["near"];
  EXPECT_EQ(n["clusters"], 2);   // {3, near} and {5, copy}
  EXPECT_EQ(n["removable"], 2);
  ASSERT_EQ(n["cluster_sizes"].size(), 1u);
  EXPECT_EQ(n["cluster_sizes"][0], ProfileJson({{"size", 2}, {"clusters", 2}}));
  EXPECT_EQ(n["largest"][0]["lines"], ProfileJson({4, 21}));

  EXPECT_EQ(p["pii"]["by_type"]["EMAIL"], 1);
  EXPECT_EQ(p["pii"]["by_type"]["IPV4"], 1);
  EXPECT_EQ(p["pii"]["records"], 1);

  // The one-line French and PII texts are short documents for Gopher, and C4 finds
  // fewer than five sentences in them.
  const auto& gopher = p["quality"]["gopher_quality"];
  EXPECT_GE(gopher["by_rule"].value("gopher_short_doc", 0), 2) << gopher.dump();
  EXPECT_GE(gopher["would_remove"], 2);
  EXPECT_EQ(p["quality"]["c4"]["by_rule"].value("too_few_sentences", 0), 2) << p["quality"].dump();
  EXPECT_TRUE(p["quality"].contains("gopher_repetition"));
}

TEST(DatasetProfile, OutliersAndTokenCounts) {
  std::vector<Record> records = {
      {{"text", english(1, 3)}},
      {{"text", "tiny"}},
      {{"text", english(2, 30)}},
  };
  std::string loop;
  for (int i = 0; i < 30; ++i) loop += "buy now buy now ";
  records.push_back({{"text", loop}});
  ProfileOptions options;
  options.examples = 2;
  options.preview_chars = 10;
  options.count_tokens = [](std::string_view text) -> Result<size_t> { return text.size() / 4; };
  options.tokenizer = "bytes/4";
  ProfileJson p = profile_of(records, options);
  const auto& o = p["outliers"];
  ASSERT_EQ(o["longest"].size(), 2u);
  EXPECT_EQ(o["longest"][0]["line"], 3);
  EXPECT_EQ(o["shortest"][0]["line"], 2);
  EXPECT_EQ(o["shortest"][0]["preview"], "tiny");
  EXPECT_EQ(o["longest"][0]["preview"].get<std::string>().substr(0, 10), english(2, 30).substr(0, 10));
  EXPECT_EQ(o["most_repetitive"][0]["line"], 4);
  EXPECT_GT(o["most_repetitive"][0]["repeated_3gram_share"].get<double>(), 0.9);
  EXPECT_EQ(p["tokenizer"], "bytes/4");
  EXPECT_EQ(field(p, "text")["lengths"]["tokens"]["min"], 1);  // "tiny"

  options.count_tokens = [](std::string_view) -> Result<size_t> { return invalid_argument("tokenizer broke"); };
  auto profiler = DatasetProfiler::create(options);
  ASSERT_TRUE(profiler.ok());
  EXPECT_EQ((*profiler)->add(records[0], 1).code(), ErrorCode::kInvalidArgument);
}

TEST(DatasetProfile, BatchesOnThreadsGiveTheSameProfile) {
  std::vector<Record> records;
  std::vector<uint64_t> lines;
  for (int i = 0; i < 300; ++i) {
    records.push_back({{"text", english(static_cast<uint64_t>(i % 250), i % 5 + 1)}});
    lines.push_back(static_cast<uint64_t>(i + 1));
  }
  ProfileOptions one;
  one.threads = 1;
  ProfileJson serial = profile_of(records, one);
  ProfileOptions three;
  three.threads = 3;
  auto profiler = DatasetProfiler::create(three);
  ASSERT_TRUE(profiler.ok());
  for (size_t at = 0; at < records.size(); at += 128) {
    size_t n = std::min<size_t>(128, records.size() - at);
    ASSERT_TRUE((*profiler)->add_batch(std::span<const Record>(records.data() + at, n),
                                       std::span<const uint64_t>(lines.data() + at, n)).ok());
  }
  EXPECT_EQ((*profiler)->finish(), serial);
  EXPECT_EQ(serial["duplicates"]["exact"]["duplicates"], 50);

  ProfileOptions fast;
  fast.quality_rules = false;
  ProfileJson without = profile_of(records, fast);
  EXPECT_TRUE(without["quality"].empty());
  EXPECT_EQ(without["duplicates"], serial["duplicates"]);
}

TEST(DatasetProfile, TextFieldChosenFromTheFirstRecord) {
  ProfileJson p = profile_of({{{"id", 1}, {"prompt", "short"}, {"response", "a much longer answer here"}}});
  EXPECT_EQ(p["text_field"], "response");
  ProfileJson none = profile_of({{{"id", 1}}});
  EXPECT_TRUE(none["text_field"].is_null());
  EXPECT_EQ(none["text"]["records"], 0);
}

TEST(DatasetProfile, FileWithMalformedRecordsProfilesTheRest) {
  keel::testing::TempDir dir;
  {
    std::ofstream out(dir.file("in.jsonl"), std::ios::binary);
    out << "{\"text\":\"fine\"}\n{\"text\":\"bad \xff byte\"}\nnot json\n{\"text\":\"also fine\"}\n";
  }
  auto r = profile_file(dir.file("in.jsonl"), {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->profile["records"], 2);
  EXPECT_EQ(r->rejected, 2u);
  ASSERT_EQ(r->first_rejections.size(), 2u);
  EXPECT_EQ(r->first_rejections[0].line, 2u);
  EXPECT_NE(r->first_rejections[0].reason.find("UTF-8"), std::string::npos);
  auto missing = profile_file(dir.file("nope.jsonl"), {});
  EXPECT_FALSE(missing.ok());
  {
    // A gzip header and nothing more: the stream ends before its data does.
    std::ofstream out(dir.file("cut.jsonl.gz"), std::ios::binary);
    out << std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
  }
  auto cut = profile_file(dir.file("cut.jsonl.gz"), {});
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("truncated"), std::string::npos) << cut.status().to_string();
}

TEST(DatasetProfileHtml, StandaloneChartsAndEscapedText) {
  std::vector<Record> records;
  for (int i = 0; i < 12; ++i) {
    records.push_back({{"text", english(static_cast<uint64_t>(i), 6)}, {"label", i % 2 ? "a" : "b"}});
  }
  records.push_back({{"text", "<script>alert('x')</script> & more"}, {"label", "<b>"}});
  ProfileJson p = profile_of(records);
  std::string html = profile_html(p, "Profile of <mine>");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"), std::string::npos);
  EXPECT_NE(html.find("Profile of &lt;mine&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_NE(html.find("label: categories"), std::string::npos);
  EXPECT_NE(html.find("Most repetitive"), std::string::npos);
}

}  // namespace
}  // namespace keel::data

// Dataset versions on both store back ends: the content hash is the canonical JSONL's
// sha256 whatever the input format, identical content is not a new version, lineage,
// references, local files, diffs (keyed, whole-record, refused across schemas) and bad
// input as clear errors.
#include "keel/datasets/dataset_registry.h"

#include <fstream>
#include <sstream>

#include "keel/datasets/dataset_diff.h"
#include "keel/store/audit_log.h"
#include "keel/util/sha256.h"
#include "store/store_test_base.h"
#include "support/made_up_words.h"

namespace keel::datasets {
namespace {

using keel::testing::made_up_words;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class DatasetRegistryTest : public store::StoreWithBlobsTest {
 protected:
  void SetUp() override {
    StoreWithBlobsTest::SetUp();
    if (IsSkipped()) return;
    registry_ = std::make_unique<DatasetRegistry>(*db_, *blobs_);
  }
  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_.file(name);
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  Result<CreatedDataset> create(const std::string& name, const std::string& path,
                                std::vector<DatasetReference> parents = {}) {
    NewDatasetVersion spec;
    spec.name = name;
    spec.source = "test";
    spec.parents = std::move(parents);
    return registry_->create_from_file(path, spec, "tester");
  }
  CreatedDataset must_create(const std::string& name, const std::string& path,
                             std::vector<DatasetReference> parents = {}) {
    auto c = create(name, path, std::move(parents));
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return c.ok() ? *c : CreatedDataset{};
  }

  std::unique_ptr<DatasetRegistry> registry_;
};
INSTANTIATE_STORE_TEST(DatasetRegistryTest);

const char* kJsonl =
    "{\"id\": \"a\", \"text\": \"alpha beta\"}\n"
    "{\"id\":\"b\",\"text\":\"gamma\"}\n"
    "{\"id\":\"c\",\"text\":\"delta \\u00e9\"}\n";
const char* kCanonical =
    "{\"id\":\"a\",\"text\":\"alpha beta\"}\n"
    "{\"id\":\"b\",\"text\":\"gamma\"}\n"
    "{\"id\":\"c\",\"text\":\"delta \xc3\xa9\"}\n";

TEST_P(DatasetRegistryTest, ContentHashIsTheCanonicalJsonlWhateverTheFormat) {
  CreatedDataset v1 = must_create("docs", write("in.jsonl", kJsonl));
  ASSERT_TRUE(v1.created);
  EXPECT_EQ(v1.version.version, 1);
  EXPECT_EQ(v1.version.reference(), "docs@1");
  EXPECT_EQ(v1.version.content_sha256, Sha256::of(kCanonical));
  EXPECT_EQ(v1.version.record_count, 3u);
  EXPECT_EQ(v1.version.size_bytes, std::string(kCanonical).size());
  EXPECT_EQ(v1.version.keel_version, KEEL_VERSION);
  EXPECT_EQ(v1.version.schema,
            data::ProfileJson::parse(R"([{"name":"id","type":"string"},{"name":"text","type":"string"}])"));
  EXPECT_EQ(v1.version.profile["records"], 3);

  // The same records as CSV, and as a JSON array: the same content, so no new version.
  for (auto [file, text] : {std::pair{"in.csv", "id,text\na,alpha beta\nb,gamma\nc,delta \xc3\xa9\n"},
                            std::pair{"in.json", "[{\"id\":\"a\",\"text\":\"alpha beta\"},{\"id\":\"b\",\"text\":"
                                                 "\"gamma\"},{\"id\":\"c\",\"text\":\"delta \xc3\xa9\"}]"}}) {
    CreatedDataset again = must_create("docs", write(file, text));
    EXPECT_FALSE(again.created) << file;
    EXPECT_EQ(again.version.reference(), "docs@1") << file;
    EXPECT_EQ(again.version.content_sha256, v1.version.content_sha256) << file;
    EXPECT_EQ(again.version.profile["records"], 3) << file;
  }
  // Under another name it is a version of that dataset (the blob is stored once).
  CreatedDataset other = must_create("copy", dir_.file("in.csv"));
  EXPECT_TRUE(other.created);
  EXPECT_EQ(other.version.reference(), "copy@1");

  CreatedDataset v2 = must_create("docs", write("more.jsonl", std::string(kJsonl) + "{\"id\":\"d\",\"text\":\"e\"}\n"));
  EXPECT_TRUE(v2.created);
  EXPECT_EQ(v2.version.version, 2);

  auto latest = registry_->resolve("docs");
  ASSERT_TRUE(latest.ok()) << latest.status().to_string();
  EXPECT_EQ(latest->version, 2);
  EXPECT_TRUE(latest->profile.is_null());
  auto first = registry_->resolve("docs@1", true);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->record_count, 3u);
  EXPECT_EQ(first->profile["fields"][1]["name"], "text");
  EXPECT_EQ(first->details["input_format"], "jsonl");
  EXPECT_EQ(first->user_id, "tester");
  EXPECT_EQ(registry_->resolve("docs@latest")->version, 2);

  auto list = registry_->list();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "copy");
  EXPECT_EQ((*list)[1].name, "docs");
  EXPECT_EQ((*list)[1].versions, 2);
  EXPECT_EQ((*list)[1].latest_version, 2);
  EXPECT_EQ((*list)[1].latest_records, 4u);
  auto versions = registry_->versions("docs");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].version, 1);

  auto events = store::list_audit_events(*db_, {.action_prefix = "dataset."});
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 3u);  // docs@1, copy@1, docs@2: the repeats recorded nothing
}

TEST_P(DatasetRegistryTest, LineageAndLocalFiles) {
  CreatedDataset raw = must_create("raw", write("raw.jsonl", kJsonl));
  CreatedDataset clean = must_create("clean", write("clean.jsonl", "{\"id\":\"a\",\"text\":\"alpha beta\"}\n"),
                                     {{"raw", 1}});
  ASSERT_EQ(clean.version.parents.size(), 1u);
  EXPECT_EQ(clean.version.parents[0].to_string(), "raw@1");
  auto got = registry_->resolve("clean@1");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->parents.size(), 1u);
  EXPECT_EQ(got->parents[0].name, "raw");
  auto children = registry_->children(raw.version);
  ASSERT_TRUE(children.ok());
  ASSERT_EQ(children->size(), 1u);
  EXPECT_EQ((*children)[0].to_string(), "clean@1");

  auto missing_parent = create("clean", dir_.file("raw.jsonl"), {{"raw", 7}});
  ASSERT_FALSE(missing_parent.ok());
  EXPECT_EQ(missing_parent.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing_parent.status().message().find("raw has no version 7 (latest is 1)"), std::string::npos)
      << missing_parent.status().to_string();

  auto local = registry_->local_file("raw@1", dir_.file("cache"));
  ASSERT_TRUE(local.ok()) << local.status().to_string();
  EXPECT_EQ(local->path, dir_.file("cache") + "/" + raw.version.content_sha256 + ".jsonl");
  EXPECT_EQ(read_all(local->path), kCanonical);
  auto again = registry_->local_file("raw", dir_.file("cache"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->path, local->path);
  data::ReadOptions read;
  auto reader = data::RecordReader::open(local->path, read);
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  data::Record r;
  ASSERT_TRUE(*(*reader)->next(&r));
  EXPECT_EQ(r["id"], "a");
}

TEST_P(DatasetRegistryTest, BadReferencesAndInputsAreClearErrors) {
  auto unknown = registry_->resolve("nope@1");
  EXPECT_EQ(unknown.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("no dataset named nope"), std::string::npos);
  for (const char* bad : {"x@0", "x@abc", "x@", "bad name", "@3", "-x"}) {
    auto r = registry_->resolve(bad);
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad << ": " << r.status().to_string();
  }
  EXPECT_EQ(parse_dataset_reference("a.b_c-d@12")->version, 12);

  auto empty = create("e", write("empty.jsonl", ""));
  EXPECT_EQ(empty.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("no readable records"), std::string::npos);
  auto all_bad = create("e", write("bad.jsonl", "{oops\n\xff\xfe\n"));
  EXPECT_NE(all_bad.status().message().find("no readable records (2 malformed)"), std::string::npos)
      << all_bad.status().to_string();
  // Malformed records are skipped and counted; the version holds the rest.
  auto some_bad = create("s", write("some.jsonl", "{\"text\":\"ok\"}\n{\"text\":\"bad \xff\"}\n[1]\n"));
  ASSERT_TRUE(some_bad.ok()) << some_bad.status().to_string();
  EXPECT_EQ(some_bad->version.record_count, 1u);
  EXPECT_EQ(some_bad->rejected, 2u);
  EXPECT_EQ(some_bad->version.details["rejected"], 2);
  auto cut = create("c", write("cut.jsonl.gz", std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10)));
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("truncated"), std::string::npos) << cut.status().to_string();
  auto no_file = create("c", dir_.file("absent.jsonl"));
  EXPECT_FALSE(no_file.ok());
  auto bad_name = create("no/slash", dir_.file("some.jsonl"));
  EXPECT_EQ(bad_name.status().code(), ErrorCode::kInvalidArgument);
  auto list = registry_->list();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);  // only "s"
}

TEST_P(DatasetRegistryTest, DiffByKeyWholeRecordsAndAcrossSchemas) {
  must_create("d", write("a.jsonl",
                         "{\"id\":1,\"text\":\"one\"}\n{\"id\":2,\"text\":\"two\"}\n{\"id\":3,\"text\":\"three\"}\n"));
  must_create("d", write("b.jsonl",
                         "{\"id\":1,\"text\":\"one\"}\n{\"id\":3,\"text\":\"THREE\"}\n{\"id\":4,\"text\":\"four\"}\n"
                         "{\"id\":5,\"text\":\"five\"}\n"));
  DiffOptions options;
  options.cache_dir = dir_.file("cache");
  auto d = diff_datasets(*registry_, "d@1", "d@2", options);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->key, "id");
  EXPECT_EQ(d->unchanged, 1u);
  EXPECT_EQ(d->added, 2u);
  EXPECT_EQ(d->removed, 1u);
  EXPECT_EQ(d->changed, 1u);
  ASSERT_EQ(d->removed_examples.size(), 1u);
  EXPECT_EQ(d->removed_examples[0].line, 2u);
  EXPECT_EQ(d->removed_examples[0].json, "{\"id\":2,\"text\":\"two\"}");
  ASSERT_EQ(d->changed_examples.size(), 1u);
  EXPECT_EQ(d->changed_examples[0].json, "{\"id\":3,\"text\":\"THREE\"}");
  bool records_delta = false;
  for (const auto& p : d->profile) {
    if (p.metric == "records") records_delta = p.from == 3 && p.to == 4;
  }
  EXPECT_TRUE(records_delta);

  // Whole records without pairing: the changed one is a removal and an addition.
  options.key = "";
  options.near_threshold = 0;
  auto whole = diff_datasets(*registry_, "d@1", "d@2", options);
  ASSERT_TRUE(whole.ok()) << whole.status().to_string();
  EXPECT_EQ(whole->key, "");
  EXPECT_EQ(whole->unchanged, 1u);
  EXPECT_EQ(whole->added, 3u);
  EXPECT_EQ(whole->removed, 2u);
  EXPECT_EQ(whole->changed, 0u);
  ASSERT_EQ(whole->removed_examples.size(), 2u);
  EXPECT_EQ(whole->removed_examples[0].line, 2u);
  // With it (the default), "three" and "THREE" are the same text to MinHash: changed.
  options.near_threshold = 0.7;
  whole = diff_datasets(*registry_, "d@1", "d@2", options);
  ASSERT_TRUE(whole.ok()) << whole.status().to_string();
  EXPECT_EQ(whole->added, 2u);
  EXPECT_EQ(whole->removed, 1u);
  EXPECT_EQ(whole->changed, 1u);
  ASSERT_EQ(whole->changed_examples.size(), 1u);
  EXPECT_EQ(whole->changed_examples[0].json, "{\"id\":3,\"text\":\"THREE\"}");
  ASSERT_EQ(whole->removed_examples.size(), 1u);
  EXPECT_EQ(whole->removed_examples[0].line, 2u);
  ASSERT_EQ(whole->added_examples.size(), 2u);
  EXPECT_EQ(whole->added_examples[0].line, 3u);

  must_create("e", write("c.jsonl", "{\"id\":\"x\",\"prompt\":\"p\"}\n"));
  auto schemas = diff_datasets(*registry_, "d@1", "e@1", {.cache_dir = dir_.file("cache")});
  ASSERT_FALSE(schemas.ok());
  EXPECT_EQ(schemas.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(schemas.status().message().find("their schemas differ; fields only in d@1: text; fields only in e@1: "
                                            "prompt; fields of another type: id (integer -> string)"),
            std::string::npos)
      << schemas.status().to_string();

  must_create("f", write("dup.jsonl", "{\"id\":1,\"text\":\"a\"}\n{\"id\":1,\"text\":\"b\"}\n"));
  auto dup = diff_datasets(*registry_, "f@1", "d@1", {.cache_dir = dir_.file("cache")});
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("key field \"id\" is not unique in f@1 (record 2"), std::string::npos)
      << dup.status().to_string();
  auto unknown = diff_datasets(*registry_, "d@1", "d@9", {.cache_dir = dir_.file("cache")});
  EXPECT_EQ(unknown.status().code(), ErrorCode::kNotFound);
  auto bad_key = diff_datasets(*registry_, "d@1", "d@2", {.key = "nope", .cache_dir = dir_.file("cache")});
  EXPECT_EQ(bad_key.status().code(), ErrorCode::kInvalidArgument);
}

TEST_P(DatasetRegistryTest, WholeRecordDiffPairsNearDuplicateTextsAsChanged) {
  // v2 of a chat dataset without ids: one answer redacted, one shortened by two words,
  // one replaced by an unrelated one, one removed, two added; the rest as they were.
  auto chat = [](const std::string& user, const std::string& assistant) {
    data::Record messages = data::Record::array();
    messages.push_back({{"role", "user"}, {"content", user}});
    messages.push_back({{"role", "assistant"}, {"content", assistant}});
    return data::Record{{"messages", std::move(messages)}}.dump() + "\n";
  };
  std::string v1, v2;
  for (int i = 0; i < 30; ++i) {
    std::string user = made_up_words(i, 20), answer = made_up_words(100 + i, 80);
    std::string original = answer;
    if (i == 4) original.append(" Write to jane@example.com.");
    v1 += chat(user, original);
    if (i == 20) continue;                          // removed
    if (i == 4) answer.append(" Write to [EMAIL].");  // redacted
    if (i == 9) answer.resize(answer.size() - 16);  // two words fewer
    if (i == 12) {                                  // replaced
      user = made_up_words(500, 20);
      answer = made_up_words(501, 80);
    }
    v2 += chat(user, answer);
  }
  v2 += chat(made_up_words(600, 20), made_up_words(601, 80)) + chat(made_up_words(602, 20), made_up_words(603, 80));
  must_create("c", write("c1.jsonl", v1));
  must_create("c", write("c2.jsonl", v2));
  DiffOptions options;
  options.cache_dir = dir_.file("cache");
  auto d = diff_datasets(*registry_, "c@1", "c@2", options);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->key, "");
  EXPECT_EQ(d->near_threshold, 0.7);
  EXPECT_EQ(d->unchanged, 26u);
  EXPECT_EQ(d->changed, 2u);  // the redaction and the small edit
  EXPECT_EQ(d->removed, 2u);  // the replaced record's old text and the removed one
  EXPECT_EQ(d->added, 3u);    // the unrelated replacement and the two new ones
  ASSERT_EQ(d->changed_examples.size(), 2u);
  EXPECT_EQ(d->changed_examples[0].line, 5u);  // the redacted record, in c@2
  EXPECT_EQ(d->changed_examples[1].line, 10u);
  auto json = to_json(*d);
  EXPECT_EQ(json["near_threshold"], 0.7);
  EXPECT_EQ(json["near_pairing_skipped"], nullptr);
  EXPECT_EQ(json["changed"], 2);

  // Past the limit on added records the pairing is skipped, and the diff says so.
  options.max_near_pairs = 4;
  auto capped = diff_datasets(*registry_, "c@1", "c@2", options);
  ASSERT_TRUE(capped.ok()) << capped.status().to_string();
  EXPECT_EQ(capped->changed, 0u);
  EXPECT_EQ(capped->added, 5u);
  EXPECT_EQ(capped->removed, 4u);
  EXPECT_EQ(capped->near_threshold, 0.0);
  EXPECT_EQ(capped->near_skipped, "more than 4 added records");
}

}  // namespace
}  // namespace keel::datasets

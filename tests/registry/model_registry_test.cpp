#include "keel/registry/model_registry.h"

#include <thread>

#include "keel/store/artifact_catalog.h"
#include "keel/util/file.h"
#include "store/store_test_base.h"

namespace keel::registry {
namespace {

class ModelRegistryTest : public store::StoreWithBlobsTest {
 protected:
  std::string write_model(const std::string& name, const std::string& contents) {
    std::string p = dir_.file(name);
    EXPECT_TRUE(write_file_atomic(p, contents).ok());
    return p;
  }
  ModelFileFacts facts() {
    ModelFileFacts f;
    f.format = "gguf";
    f.architecture = "llama";
    f.parameter_count = 1234;
    f.metadata = {{"quantization", "Q4_1"}};
    return f;
  }

};
INSTANTIATE_STORE_TEST(ModelRegistryTest);

TEST_P(ModelRegistryTest, ImportCreatesVersionsAndIsIdempotentForSameBytes) {
  ModelRegistry models(*db_, *blobs_);
  std::string a = write_model("a.gguf", "model bytes v1");
  auto first = models.import_file(a, "tiny", facts(), "tester");
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_TRUE(first->created);
  EXPECT_EQ(first->version.version, 1);
  EXPECT_EQ(first->version.size_bytes, 14u);
  auto same = models.import_file(a, "tiny", facts(), "tester");
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->created);
  EXPECT_EQ(same->version.version, 1);
  std::string b = write_model("b.gguf", "model bytes v2");
  auto second = models.import_file(b, "tiny", facts(), "tester");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->version.version, 2);
  auto latest = models.get("tiny");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version, 2);
  auto v1 = models.get("tiny@1");
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->artifact_sha256, first->version.artifact_sha256);
  EXPECT_EQ(v1->metadata["quantization"], "Q4_1");
  auto list = models.list();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].version_count, 2);
  auto versions = models.versions("tiny");
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->size(), 2u);
  auto audit = db_->query("SELECT actor, action, target FROM audit_events ORDER BY at");
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 2u);  // the no-op import is not an event
  EXPECT_EQ(audit->rows[0].get_text(0), "tester");
  EXPECT_EQ(audit->rows[0].get_text(1), "model.import");
  EXPECT_EQ(audit->rows[0].get_text(2), "model:tiny");
}

TEST_P(ModelRegistryTest, ErrorsNameWhatIsWrong) {
  ModelRegistry models(*db_, *blobs_);
  EXPECT_EQ(models.get("nope").status().code(), ErrorCode::kNotFound);
  std::string a = write_model("a.gguf", "x");
  ASSERT_TRUE(models.import_file(a, "m", facts(), "t").ok());
  auto missing_version = models.get("m@7");
  EXPECT_EQ(missing_version.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing_version.status().message().find("no version 7"), std::string::npos);
  EXPECT_EQ(models.get("m@x").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(models.import_file(a, "../etc", facts(), "t").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(models.import_file(a, "", facts(), "t").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(models.import_file(dir_.file("absent.gguf"), "m2", facts(), "t").status().code(), ErrorCode::kNotFound);
  auto list = models.list();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u) << "failed imports must not leave models behind";
}

TEST_P(ModelRegistryTest, ConcurrentImportsGetDistinctVersions) {
  ModelRegistry models(*db_, *blobs_);
  constexpr int kThreads = 4;
  std::vector<std::string> paths;
  for (int i = 0; i < kThreads; ++i) {
    const std::string n = std::to_string(i);  // (operator+ on a temporary trips GCC 12's -Wrestrict here)
    paths.push_back(write_model(std::string("m").append(n), std::string("bytes ").append(n)));
  }
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[static_cast<size_t>(i)] = models.import_file(paths[static_cast<size_t>(i)], "shared", facts(), "t").status(); });
  }
  for (auto& t : threads) t.join();
  int ok = 0;
  for (const auto& st : results) ok += st.ok();
  EXPECT_EQ(ok, kThreads);
  auto versions = models.versions("shared");
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(static_cast<int>(versions->size()), ok);
  for (size_t i = 0; i < versions->size(); ++i) EXPECT_EQ((*versions)[i].version, static_cast<int64_t>(i + 1));
  store::ArtifactCatalog catalog(*db_, *blobs_);
  auto report = catalog.verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok());
}

}  // namespace
}  // namespace keel::registry

namespace keel::registry {
namespace {

TEST_P(ModelRegistryTest, RegisteredModelsVersionsTagsAndAliases) {
  ModelRegistry models(*db_, *blobs_);
  auto m = models.create_model("chat", "a chat model", {{"team", "nlp"}}, "alice");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(models.create_model("chat", "", {}, "bob").status().code(), ErrorCode::kAlreadyExists);
  NewVersion spec;
  spec.source = "mlflow-artifacts:/1/abc/artifacts/model";
  spec.run_id = "abc";
  spec.tags = {{"k", "v"}};
  auto v1 = models.create_version("chat", spec, "alice");
  ASSERT_TRUE(v1.ok()) << v1.status().to_string();
  EXPECT_EQ(v1->version, 1);
  EXPECT_EQ(v1->format, "mlflow");
  EXPECT_EQ(v1->status, "READY");
  auto v2 = models.create_version("chat", spec, "alice");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(models.create_version("nope", spec, "alice").status().code(), ErrorCode::kNotFound);

  ASSERT_TRUE(models.set_alias("chat", "staging", 1, "alice").ok());
  auto prod = models.get("chat@staging");
  ASSERT_TRUE(prod.ok()) << prod.status().to_string();
  EXPECT_EQ(prod->version, 1);
  EXPECT_EQ(prod->aliases, std::vector<std::string>{"staging"});
  ASSERT_TRUE(models.set_alias("chat", "staging", 2, "alice").ok()) << "moving an alias";
  EXPECT_EQ(models.get("chat@staging")->version, 2);
  EXPECT_EQ(models.get_version("chat", 1)->aliases.size(), 0u);
  EXPECT_EQ(models.set_alias("chat", "staging", 7, "alice").code(), ErrorCode::kNotFound);
  EXPECT_EQ(models.set_alias("chat", "latest", 1, "alice").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(models.set_alias("chat", "v2", 1, "alice").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(models.set_alias("chat", "bad alias", 1, "alice").code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(models.delete_alias("chat", "staging", "alice").ok());
  EXPECT_EQ(models.get_by_alias("chat", "staging").status().code(), ErrorCode::kInvalidArgument);

  ASSERT_TRUE(models.set_model_tag("chat", {"owner", "me"}, "alice").ok());
  ASSERT_TRUE(models.set_version_tag("chat", 2, {"stage", "prod"}, "alice").ok());
  auto got = models.get_model("chat");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->tags.size(), 2u);
  ASSERT_TRUE(got->latest.has_value());
  EXPECT_EQ(got->latest->version, 2);
  EXPECT_EQ(got->latest->tags.size(), 2u);

  // Every change is in the audit log.
  auto audit = db_->query("SELECT action FROM audit_events WHERE target = 'model:chat' ORDER BY at");
  ASSERT_TRUE(audit.ok());
  EXPECT_GE(audit->size(), 7u);
}

// resolve() names the same version get() does, by every kind of reference, with the
// same errors.
TEST_P(ModelRegistryTest, ResolveAgreesWithGet) {
  ModelRegistry models(*db_, *blobs_);
  ASSERT_TRUE(models.create_model("chat", "", {}, "alice").ok());
  NewVersion spec;
  spec.source = "mlflow-artifacts:/1/abc/artifacts/model";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(models.create_version("chat", spec, "alice").ok());
  ASSERT_TRUE(models.set_alias("chat", "staging", 2, "alice").ok());
  for (const char* reference : {"chat", "chat@1", "chat@3", "chat@staging"}) {
    auto key = models.resolve(reference);
    auto version = models.get(reference);
    ASSERT_TRUE(key.ok()) << reference << ": " << key.status().to_string();
    ASSERT_TRUE(version.ok());
    EXPECT_EQ(key->id, version->id) << reference;
    EXPECT_EQ(key->model_name, "chat");
    EXPECT_EQ(key->version, version->version) << reference;
  }
  EXPECT_EQ(models.resolve("chat")->version, 3);
  EXPECT_EQ(models.resolve("chat@staging")->version, 2);
  for (const char* reference : {"nope", "chat@7", "chat@canary", "nope@staging", "chat@", "bad name", "chat@1234567890"}) {
    auto key = models.resolve(reference);
    auto version = models.get(reference);
    ASSERT_FALSE(key.ok()) << reference;
    ASSERT_FALSE(version.ok()) << reference;
    EXPECT_EQ(key.status().code(), version.status().code()) << reference;
    EXPECT_EQ(key.status().message(), version.status().message()) << reference;
  }
}

TEST_P(ModelRegistryTest, SearchModelsAndVersions) {
  ModelRegistry models(*db_, *blobs_);
  for (const char* name : {"alpha", "beta", "prompt1"}) ASSERT_TRUE(models.create_model(name, "", {}, "u").ok());
  ASSERT_TRUE(models.set_model_tag("prompt1", {"mlflow.prompt.is_prompt", "true"}, "u").ok());
  NewVersion spec;
  spec.source = "s";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(models.create_version("alpha", spec, "u").ok());
  SearchRequest request;
  request.filter = "name LIKE '%a' AND tag.`mlflow.prompt.is_prompt` != 'true'";
  auto found = models.search_models(request);
  ASSERT_TRUE(found.ok()) << found.status().to_string();
  ASSERT_EQ(found->items.size(), 2u);
  EXPECT_EQ(found->items[0].name, "alpha");
  EXPECT_EQ(found->items[1].name, "beta");
  request.filter = "tags.`mlflow.prompt.is_prompt` = 'true'";
  found = models.search_models(request);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->items.size(), 1u);
  request.filter = "name='alpha'";
  request.max_results = 2;
  auto versions = models.search_versions(request);
  ASSERT_TRUE(versions.ok()) << versions.status().to_string();
  ASSERT_EQ(versions->items.size(), 2u);
  EXPECT_EQ(versions->items[0].version, 3) << "newest first";
  EXPECT_FALSE(versions->next_page_token.empty());
  request.filter = "name = 'alpha' and bogus = 1";
  EXPECT_EQ(models.search_versions(request).status().code(), ErrorCode::kInvalidArgument);
}

TEST_P(ModelRegistryTest, ConcurrentAliasMovesLeaveOneVersion) {
  ModelRegistry models(*db_, *blobs_);
  ASSERT_TRUE(models.create_model("m", "", {}, "u").ok());
  NewVersion spec;
  spec.source = "s";
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(models.create_version("m", spec, "u").ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      ModelRegistry local(*db_, *blobs_);
      for (int i = 0; i < 10; ++i) {
        if (!local.set_alias("m", "staging", 1 + (t + i) % 4, "u").ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto rows = db_->query("SELECT COUNT(*) FROM model_aliases WHERE alias = 'staging'");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->rows[0].get_int(0), 1);
  int holders = 0;
  for (int v = 1; v <= 4; ++v) holders += models.get_version("m", v)->aliases.size();
  EXPECT_EQ(holders, 1);
}

TEST_P(ModelRegistryTest, ConcurrentVersionCreationNumbersWithoutGaps) {
  ModelRegistry models(*db_, *blobs_);
  ASSERT_TRUE(models.create_model("m", "", {}, "u").ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      ModelRegistry local(*db_, *blobs_);
      NewVersion spec;
      spec.source = "s";
      for (int i = 0; i < 5; ++i) {
        if (!local.create_version("m", spec, "u").ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto versions = models.versions("m");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 20u);
  for (size_t i = 0; i < versions->size(); ++i) EXPECT_EQ((*versions)[i].version, static_cast<int64_t>(i + 1));
}

}  // namespace
}  // namespace keel::registry

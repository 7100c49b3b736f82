// Remote models: URL checks, and versions that point at an upstream, on both back ends.
#include "keel/registry/remote_models.h"

#include "store/store_test_base.h"

namespace keel::registry {
namespace {

TEST(ParseHttpUrl, TakesHostPortAndPathAndRefusesTheRest) {
  auto u = parse_http_url("http://127.0.0.1:8000/v1/");
  ASSERT_TRUE(u.ok()) << u.status().to_string();
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8000);
  EXPECT_EQ(u->path, "/v1");
  auto s = parse_http_url("https://api.example.com/v1");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->tls);
  EXPECT_EQ(s->port, 443);
  auto root = parse_http_url("http://localhost");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->port, 80);
  EXPECT_EQ(root->path, "");
  auto v6 = parse_http_url("http://[::1]:9000/v1");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 9000);
  for (const char* bad : {"ftp://h/v1", "h:80/v1", "http://", "http://:80/v1", "http://h:0/v1", "http://h:70000",
                          "http://h:x/v1", "http://h:/v1", "http://user:secret@h/v1", "http://h/v1?x=1", "http://h/v 1",
                          "http://[::1/v1"}) {
    auto r = parse_http_url(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(parse_http_url("http://u:p@h/v1").status().message().find("environment variable"), std::string::npos);
}

class RemoteModelsTest : public store::StoreWithBlobsTest {
 protected:
  void SetUp() override {
    StoreWithBlobsTest::SetUp();
    if (IsSkipped()) return;
    models_ = std::make_unique<ModelRegistry>(*db_, *blobs_);
  }
  std::unique_ptr<ModelRegistry> models_;
};
INSTANTIATE_STORE_TEST(RemoteModelsTest);

TEST_P(RemoteModelsTest, AVersionPointsAtTheUpstreamAndKeepsOnlyTheKeysVariableName) {
  RemoteEndpoint e{"http://10.0.0.5:8000/v1", "Qwen/Qwen2.5-7B-Instruct", "VLLM_KEY"};
  auto v = register_remote_model(*models_, "qwen", e, "vLLM on the GPU box", "alice");
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(v->version, 1);
  EXPECT_TRUE(is_remote(*v));
  EXPECT_EQ(v->source, e.base_url);
  auto back = models_->get("qwen@1");
  ASSERT_TRUE(back.ok());
  auto endpoint = remote_endpoint(*back);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().to_string();
  EXPECT_EQ(endpoint->base_url, e.base_url);
  EXPECT_EQ(endpoint->upstream_model, e.upstream_model);
  EXPECT_EQ(endpoint->api_key_env, "VLLM_KEY");
  // A second one is the next version of the same model: aliases and deployments apply.
  auto v2 = register_remote_model(*models_, "qwen", {"https://api.example.com/v1", "qwen-max", ""}, "", "alice");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->version, 2);
  ASSERT_TRUE(models_->set_alias("qwen", "stable", 2, "alice").ok());
  auto prod = models_->get("qwen@stable");
  ASSERT_TRUE(prod.ok());
  EXPECT_EQ(remote_endpoint(*prod)->api_key_env, "");
}

TEST_P(RemoteModelsTest, BadEndpointsAreRefusedAndLeaveNothing) {
  EXPECT_EQ(register_remote_model(*models_, "m", {"localhost:8000", "x", ""}, "", "a").status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(register_remote_model(*models_, "m", {"http://h/v1", "", ""}, "", "a").status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(register_remote_model(*models_, "m", {"http://h/v1", "x", "1BAD"}, "", "a").status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(register_remote_model(*models_, "m", {"http://h/v1", "x", "KEY-NAME"}, "", "a").status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(register_remote_model(*models_, "bad name", {"http://h/v1", "x", ""}, "", "a").status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(models_->get("m").status().code(), ErrorCode::kNotFound);
  // A file version is not a remote one.
  ASSERT_TRUE(models_->create_model("file", "", {}, "a").ok());
  NewVersion spec;
  spec.source = "runs:/x/model";
  auto v = models_->create_version("file", spec, "a");
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(is_remote(*v));
  EXPECT_EQ(remote_endpoint(*v).status().code(), ErrorCode::kFailedPrecondition);
}

}  // namespace
}  // namespace keel::registry

// API keys end to end: `keel up` with users requires a key on every request but
// /health; roles decide reads, writes and policy changes; MLflow's Basic auth works too.
#include <gtest/gtest.h>

#include <csignal>

#include "keel/util/json.h"
#include "cli/backend_cli_test.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

class AuthCliTest : public BackendCliTest {
 protected:
  void SetUp() override {
    BackendCliTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(keel::testing::write_test_gguf(dir_.file("m.gguf"), "llama", 64).ok());
  }
  std::string new_user_key(const std::string& name, const std::string& role) {
    EXPECT_EQ(keel({"users", "create", name, "--role", role}).exit_code, 0);
    auto r = keel({"--json", "keys", "create", "--user", name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = parse_json(r.out);
    return j.ok() ? (*j)["secret"].get<std::string>() : "";
  }
  int status(int port, const std::string& method, const std::string& target, const std::string& key,
             const std::string& body = "", std::string* response = nullptr) {
    std::map<std::string, std::string> headers;
    if (!key.empty()) headers["Authorization"] = key.rfind("Basic ", 0) == 0 ? key : "Bearer " + key;
    auto r = keel::testing::http_request(port, method, target, body, headers);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (response && r.ok()) *response = r->body;
    return r.ok() ? r->status : -1;
  }
};
INSTANTIATE_BACKEND_CLI_TEST(AuthCliTest);

TEST_P(AuthCliTest, KeysAndRolesGuardEveryRequest) {
  std::string admin = new_user_key("ada", "admin");
  std::string editor = new_user_key("ed", "editor");
  std::string viewer = new_user_key("vi", "viewer");
  std::vector<std::string> argv = {keel::testing::keel_binary()};
  argv.insert(argv.end(), base_.begin(), base_.end());
  for (const char* a : {"up", "--port", "0", "--default-model"}) argv.push_back(a);
  argv.push_back(dir_.file("m.gguf"));
  keel::testing::ChildProcess up(argv);
  auto line = up.wait_for_line("Keel is up at", 60);
  ASSERT_TRUE(line.has_value()) << up.stderr_text();
  int port = std::atoi(line->c_str() + line->find("127.0.0.1:") + 10);
  ASSERT_GT(port, 0);

  EXPECT_EQ(status(port, "GET", "/health", ""), 200) << "health stays open";
  std::string body;
  EXPECT_EQ(status(port, "GET", "/api/models", "", "", &body), 401);
  EXPECT_NE(body.find("API key"), std::string::npos) << body;
  EXPECT_EQ(status(port, "GET", "/api/models", "keel_wrong"), 401);
  EXPECT_EQ(status(port, "GET", "/api/models", viewer), 200);
  EXPECT_EQ(status(port, "POST", "/api/experiments", viewer, R"({"name": "e1"})", &body), 403);
  EXPECT_NE(body.find("editor role"), std::string::npos) << body;
  EXPECT_EQ(status(port, "POST", "/api/experiments", editor, R"({"name": "e1"})"), 201);

  // MLflow: a token (Bearer) or username/password (Basic, the key as password).
  EXPECT_EQ(status(port, "POST", "/api/2.0/mlflow/experiments/create", "", R"({"name": "e2"})", &body), 401);
  EXPECT_NE(body.find("UNAUTHENTICATED"), std::string::npos) << body;
  std::string basic = "Basic ";
  {
    std::string pair = "ed:" + editor, encoded;
    static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 2 < pair.size(); i += 3) {
      uint32_t n = (uint8_t(pair[i]) << 16) | (uint8_t(pair[i + 1]) << 8) | uint8_t(pair[i + 2]);
      for (int s = 18; s >= 0; s -= 6) encoded += kAlphabet[(n >> s) & 63];
    }
    if (i < pair.size()) {
      uint32_t n = uint8_t(pair[i]) << 16;
      if (i + 1 < pair.size()) n |= uint8_t(pair[i + 1]) << 8;
      encoded += kAlphabet[(n >> 18) & 63];
      encoded += kAlphabet[(n >> 12) & 63];
      encoded += i + 1 < pair.size() ? kAlphabet[(n >> 6) & 63] : '=';
      encoded += '=';
    }
    basic += encoded;
  }
  EXPECT_EQ(status(port, "POST", "/api/2.0/mlflow/experiments/create", basic, R"({"name": "e2"})"), 200);
  EXPECT_EQ(status(port, "POST", "/api/2.0/mlflow/runs/search", viewer, R"({"experiment_ids": ["1"]})"), 200)
      << "searching is a read";
  EXPECT_EQ(status(port, "POST", "/api/2.0/mlflow/runs/create", viewer, R"({"experiment_id": "1"})"), 403);

  // Policies are an admin's; the audit log names who did what.
  const std::string policy = R"({"protected_aliases": ["production"], "required_approvals": 2})";
  EXPECT_EQ(status(port, "PUT", "/api/models/smollm2-135m-instruct/policy", editor, policy), 403);
  EXPECT_EQ(status(port, "PUT", "/api/models/smollm2-135m-instruct/policy", admin, policy), 200);
  EXPECT_EQ(status(port, "GET", "/api/audit?action=model.policy", admin, "", &body), 200);
  auto audit = parse_json(body);
  ASSERT_TRUE(audit.ok()) << body;
  ASSERT_EQ((*audit)["events"].size(), 1u) << body;
  EXPECT_EQ((*audit)["events"][0]["actor"], "ada");
  EXPECT_EQ(status(port, "GET", "/api/audit", viewer), 403);

  ASSERT_EQ(keel({"keys", "revoke", editor.substr(0, 12)}).exit_code, 0);
  EXPECT_EQ(status(port, "GET", "/api/models", editor), 401) << "a revoked key stops working at once";
  up.send_signal(SIGTERM);
  EXPECT_EQ(up.wait(30), 0);
}

}  // namespace
}  // namespace keel::cli

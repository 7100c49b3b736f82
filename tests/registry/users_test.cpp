#include "keel/auth/users.h"

#include "store/store_test_base.h"

namespace keel::auth {
namespace {

class UsersTest : public store::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped()) return;
    db_ = open_db();
    ASSERT_TRUE(db_);
    users_ = std::make_unique<UserDirectory>(*db_);
  }
  std::unique_ptr<store::Db> db_;
  std::unique_ptr<UserDirectory> users_;
};
INSTANTIATE_STORE_TEST(UsersTest);

TEST_P(UsersTest, KeysAuthenticateTheirUserUntilRevoked) {
  EXPECT_FALSE(*users_->has_users());
  ASSERT_TRUE(users_->create_user("ana", Role::kEditor, "root").ok());
  EXPECT_TRUE(*users_->has_users());
  EXPECT_EQ(users_->create_user("ana", Role::kViewer, "root").status().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(users_->create_user("bad name", Role::kViewer, "root").status().code(), ErrorCode::kInvalidArgument);
  auto key = users_->create_key("ana", "laptop", "root");
  ASSERT_TRUE(key.ok()) << key.status().to_string();
  EXPECT_EQ(key->secret.rfind("keel_", 0), 0u);
  EXPECT_EQ(key->secret.size(), 53u);
  auto who = users_->authenticate(key->secret);
  ASSERT_TRUE(who.ok()) << who.status().to_string();
  EXPECT_EQ(who->name, "ana");
  EXPECT_EQ(who->role, Role::kEditor);
  EXPECT_EQ(users_->authenticate(key->secret + "x").status().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(users_->authenticate("").status().code(), ErrorCode::kPermissionDenied);
  auto stored = db_->query("SELECT key_hash FROM api_keys");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->rows[0].get_text(0).find(key->secret), std::string::npos) << "only a hash is stored";

  ASSERT_TRUE(users_->set_disabled("ana", true, "root").ok());
  EXPECT_EQ(users_->authenticate(key->secret).status().code(), ErrorCode::kPermissionDenied);
  ASSERT_TRUE(users_->set_disabled("ana", false, "root").ok());
  ASSERT_TRUE(users_->revoke_key(key->key.prefix, "root").ok());
  EXPECT_EQ(users_->authenticate(key->secret).status().code(), ErrorCode::kPermissionDenied);
  auto keys = users_->list_keys("ana");
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_TRUE((*keys)[0].revoked_at.has_value());
  EXPECT_TRUE(role_at_least(Role::kAdmin, Role::kReviewer));
  EXPECT_FALSE(role_at_least(Role::kEditor, Role::kReviewer));
  EXPECT_FALSE(parse_role("root").ok());
}

}  // namespace
}  // namespace keel::auth

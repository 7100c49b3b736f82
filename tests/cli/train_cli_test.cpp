// `keel train sft` end to end on the default model: one short step writes an adapter
// that reads back as llama.cpp's GGUF LoRA layout, and bad data is a one-line error
// naming its line.
#include <gtest/gtest.h>

#include <fstream>

#include "keel/engine/gguf.h"
#include "keel/util/json.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

using keel::testing::TempDir;

TEST(TrainCli, SftWritesAnAdapterAndReportsItsSteps) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  TempDir dir;
  {
    std::ofstream data(dir.file("data.jsonl"));
    data
        << R"({"messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}]})"
        << "\n\n"
        << R"({"prompt": "2+2=", "completion": "4"})"
        << "\n";
  }
  const std::string adapter = dir.file("adapter.gguf");
  auto r = keel::testing::run_keel({"train", "sft", "-m", *model, "-d", dir.file("data.jsonl"), "-o", adapter, "--rank",
                                    "2", "--modules", "q,v", "--max-steps", "1", "--max-len", "16", "--json", "--home",
                                    dir.file("home")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  // The chat record's prompt (SmolLM2's template adds its default system message) is
  // longer than --max-len 16: it is skipped, and the prompt/completion one trains.
  EXPECT_EQ((*j)["examples"], 1);
  EXPECT_EQ((*j)["skipped"], 1);
  ASSERT_EQ((*j)["steps"].size(), 1u);
  const double loss = (*j)["steps"][0]["loss"];
  EXPECT_GT(loss, 0.0);
  EXPECT_LT(loss, 20.0);
  EXPECT_EQ((*j)["lora_parameters"], 30 * 2 * (576 + 576 + 576 + 192));  // rank 2: A of q, v; B of q, v

  auto file = engine::GgufFile::open(adapter);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  EXPECT_EQ((*file)->get_string("general.type"), "adapter");
  EXPECT_EQ((*file)->tensors().size(), 30u * 2 * 2);
  EXPECT_EQ((*file)->tensors()[0].name, "blk.0.attn_q.weight.lora_a");

  {
    std::ofstream bad(dir.file("bad.jsonl"));
    bad << R"({"prompt": "a", "completion": "b"})"
        << "\n"
        << "not json\n";
  }
  auto e = keel::testing::run_keel({"train", "sft", "-m", *model, "-d", dir.file("bad.jsonl"), "-o", dir.file("x.gguf"),
                                    "--home", dir.file("home")});
  EXPECT_EQ(e.exit_code, 1);
  EXPECT_NE(e.err.find("bad.jsonl:2: not JSON"), std::string::npos) << e.err;
}

}  // namespace
}  // namespace keel::cli

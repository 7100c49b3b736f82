// Human feedback: validation, the trace it must name, lists, and the SFT and DPO
// datasets made from it, checked line by line on a small hand-made set.
#include "keel/monitor/feedback.h"

#include <sstream>

#include "keel/store/audit_log.h"
#include "monitor/monitor_test_base.h"

namespace keel::monitor {
namespace {

class FeedbackTest : public MonitorTest {
 protected:
  Feedback give(const std::string& trace_id, const std::string& kind, int score, const std::string& corrected = "",
                const std::string& user = "ana") {
    NewFeedback f;
    f.trace_id = trace_id;
    f.kind = kind;
    f.score = score;
    f.corrected_answer = corrected;
    f.user = user;
    auto added = FeedbackStore(*db_).add(f);
    EXPECT_TRUE(added.ok()) << added.status().to_string();
    return added.ok() ? *added : Feedback{};
  }
  Trace text_trace(const std::string& id, const std::string& prompt, const std::string& response,
                   const std::string& model = "smollm2") {
    Trace t = make_trace(id, 1, model);
    t.endpoint = "completions";
    t.prompt = prompt;
    t.response = response;
    return t;
  }
  Trace chat_trace(const std::string& id, const std::string& messages, const std::string& response) {
    Trace t = make_trace(id, 1);
    t.prompt = messages;
    t.response = response;
    return t;
  }
  std::string export_text(const std::string& format, const FeedbackFilter& filter = {},
                          ExportSummary* summary = nullptr, size_t max_pairs = 32) {
    std::ostringstream out;
    auto r = FeedbackStore(*db_).export_dataset(format, out, filter, max_pairs);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (r.ok() && summary) *summary = *r;
    return out.str();
  }
};
INSTANTIATE_MONITOR_TEST(FeedbackTest);

TEST_P(FeedbackTest, AddStoresFeedbackWithTheTracesModelAndAnAuditEvent) {
  append({make_trace("req-1", 1, "gemma", 3)});
  NewFeedback in;
  in.trace_id = "req-1";
  in.kind = "rating";
  in.score = 4;
  in.comment = "good, a bit long";
  in.corrected_answer = "Hi.";
  in.user = "bob";
  auto f = FeedbackStore(*db_).add(in);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->id.size(), 36u);
  EXPECT_EQ(f->model, "gemma");
  EXPECT_EQ(f->version, 3);
  EXPECT_GT(f->created_at, 0);
  auto listed = FeedbackStore(*db_).list({});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->feedback.size(), 1u);
  EXPECT_EQ(to_json(listed->feedback[0]), to_json(*f));

  store::AuditQuery q;
  q.action_prefix = "feedback.";
  auto events = store::list_audit_events(*db_, q);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].actor, "bob");
  EXPECT_EQ((*events)[0].target, "trace:req-1");
  EXPECT_EQ((*events)[0].details["score"], 4);
}

TEST_P(FeedbackTest, AddRefusesBadKindsScoresSizesAndUnknownTraces) {
  append({make_trace("req-1", 1)});
  FeedbackStore store(*db_);
  auto code = [&](NewFeedback f) { return store.add(f).status().code(); };
  NewFeedback ok{"req-1", "thumbs", 1, "", "", "ana"};
  EXPECT_EQ(code(ok), ErrorCode::kOk);
  NewFeedback defaults{"req-1", "", -1, "", "", "ana"};  // kind defaults to thumbs
  EXPECT_EQ(code(defaults), ErrorCode::kOk);

  NewFeedback f = ok;
  f.score = 0;
  EXPECT_EQ(code(f), ErrorCode::kInvalidArgument);
  f.score = 4;  // a rating score sent as thumbs
  auto refused = store.add(f);
  EXPECT_EQ(refused.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("rating"), std::string::npos) << refused.status().message();
  f = ok;
  f.kind = "rating";
  for (int s : {1, 5}) {
    f.score = s;
    EXPECT_EQ(code(f), ErrorCode::kOk) << s;
  }
  for (int s : {0, 6, -1}) {
    f.score = s;
    EXPECT_EQ(code(f), ErrorCode::kInvalidArgument) << s;
  }
  f = ok;
  f.kind = "stars";
  EXPECT_EQ(code(f), ErrorCode::kInvalidArgument);
  f = ok;
  f.comment = std::string(kMaxFeedbackCommentBytes, 'c');
  EXPECT_EQ(code(f), ErrorCode::kOk);
  f.comment += "c";
  EXPECT_EQ(code(f), ErrorCode::kInvalidArgument);
  f = ok;
  f.corrected_answer = std::string(kMaxCorrectedAnswerBytes + 1, 'a');
  EXPECT_EQ(code(f), ErrorCode::kInvalidArgument);
  f = ok;
  f.comment = "bad \xff";
  EXPECT_EQ(code(f), ErrorCode::kInvalidArgument);
  f = ok;
  f.trace_id = "no-such-request";
  EXPECT_EQ(code(f), ErrorCode::kNotFound);
  f.trace_id = "";
  EXPECT_EQ(code(f), ErrorCode::kInvalidArgument);

  auto all = store.list({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->feedback.size(), 5u);  // ok, defaults, two ratings, the 64 KiB comment
}

TEST_P(FeedbackTest, ListFiltersAndPagesNewestFirst) {
  append({make_trace("a", 1, "smollm2", 1), make_trace("b", 2, "gemma", 1)});
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(give(i % 2 ? "a" : "b", "thumbs", 1, "", i < 3 ? "ana" : "bob").id);
  give("a", "rating", 2);
  FeedbackStore store(*db_);
  FeedbackFilter f;
  f.trace_id = "a";
  f.kind = "thumbs";
  EXPECT_EQ(store.list(f)->feedback.size(), 3u);
  f = {};
  f.model = "gemma";
  EXPECT_EQ(store.list(f)->feedback.size(), 4u);
  f.user = "bob";
  EXPECT_EQ(store.list(f)->feedback.size(), 2u);
  f = {};
  f.kind = "thumbs";
  f.limit = 3;
  std::vector<std::string> seen;
  for (;;) {
    auto page = store.list(f);
    ASSERT_TRUE(page.ok()) << page.status().to_string();
    for (const auto& x : page->feedback) seen.push_back(x.id);
    if (page->next_page_token.empty()) break;
    f.page_token = page->next_page_token;
  }
  std::vector<std::string> newest_first(ids.rbegin(), ids.rend());
  EXPECT_EQ(seen, newest_first);
}

TEST_P(FeedbackTest, SftExportWritesOneExamplePerCorrectedAnswer) {
  append(
      {chat_trace("chat", R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Capital of France?"}])",
                  "It is Lyon."),
       text_trace("text", "2+2=", "5"), text_trace("dropped", "", "secret"),
       chat_trace("cut", R"([{"role":"user","content":"unfinis)", "x"), text_trace("other", "Hello", "Hi", "gemma")});
  give("chat", "thumbs", -1, "Paris.");
  give("text", "rating", 1, "4");
  give("text", "thumbs", 1);  // no correction: not an SFT example
  give("dropped", "thumbs", -1, "unusable: the prompt was not stored");
  give("cut", "thumbs", -1, "unusable: the prompt is not whole");
  give("other", "thumbs", -1, "Hello! How can I help?");
  FeedbackFilter smollm2;
  smollm2.model = "smollm2";
  ExportSummary summary;
  EXPECT_EQ(export_text("sft", smollm2, &summary),
            R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Capital of France?"},)"
            R"({"role":"assistant","content":"Paris."}]})"
            "\n"
            R"({"prompt":"2+2=","response":"4"})"
            "\n");
  EXPECT_EQ(summary.examples, 2u);
  EXPECT_EQ(summary.skipped, 2u);
  EXPECT_EQ(export_text("sft"), export_text("sft", smollm2) +
                                    R"({"prompt":"Hello","response":"Hello! How can I help?"})"
                                    "\n");
}

TEST_P(FeedbackTest, DpoExportPairsCorrectionsAndBetterScoredAnswers) {
  const std::string capital = R"([{"role":"user","content":"Capital of France?"}])";
  append({text_trace("a", "2+2=", "4"), text_trace("b", "2+2=", "5"), text_trace("c", "2+2=", "four"),
          text_trace("d", "2+2=", "4"), chat_trace("e", capital, "Paris"),
          // The same messages spelled differently are the same prompt.
          chat_trace("f", R"([ {"role": "user", "content": "Capital of France?"} ])", "Lyon"),
          chat_trace("g", "not json", "?"), text_trace("h", "2+2=", "22", "gemma")});
  give("a", "thumbs", 1);        // "4": +1
  give("b", "thumbs", -1, "4");  // "5": -1, corrected to "4"
  give("e", "thumbs", 1);
  give("f", "thumbs", -1);
  give("c", "rating", 4);  // "four": +0.5
  give("d", "rating", 5);  // "4" again: +1, mean stays 1
  give("g", "thumbs", 1);  // no usable prompt: skipped
  give("h", "thumbs", -1);
  FeedbackFilter smollm2;
  smollm2.model = "smollm2";
  ExportSummary summary;
  const std::string chat_pair =
      R"({"prompt":[{"role":"user","content":"Capital of France?"}],)"
      R"("chosen":[{"role":"assistant","content":"Paris"}],"rejected":[{"role":"assistant","content":"Lyon"}]})"
      "\n";
  EXPECT_EQ(export_text("dpo", smollm2, &summary),
            // The correction first; then the ranking 4 (1.0) > four (0.5) > 5 (-1.0), whose
            // pair (4, 5) is already written.
            R"({"prompt":"2+2=","chosen":"4","rejected":"5"})"
            "\n"
            R"({"prompt":"2+2=","chosen":"4","rejected":"four"})"
            "\n"
            R"({"prompt":"2+2=","chosen":"four","rejected":"5"})"
            "\n" +
                chat_pair);
  EXPECT_EQ(summary.examples, 4u);
  EXPECT_EQ(summary.skipped, 1u);

  // One ranking pair per prompt at most; the correction is not a ranking pair.
  EXPECT_EQ(export_text("dpo", smollm2, nullptr, 1), R"({"prompt":"2+2=","chosen":"4","rejected":"5"})"
                                                     "\n"
                                                     R"({"prompt":"2+2=","chosen":"4","rejected":"four"})"
                                                     "\n" +
                                                         chat_pair);
  // Without the model filter, gemma's "22" (-1) joins the 2+2= group: it ties with "5"
  // (no pair between them) and loses to "4" and "four".
  EXPECT_EQ(export_text("dpo"), R"({"prompt":"2+2=","chosen":"4","rejected":"5"})"
                                "\n"
                                R"({"prompt":"2+2=","chosen":"4","rejected":"four"})"
                                "\n"
                                R"({"prompt":"2+2=","chosen":"4","rejected":"22"})"
                                "\n"
                                R"({"prompt":"2+2=","chosen":"four","rejected":"5"})"
                                "\n"
                                R"({"prompt":"2+2=","chosen":"four","rejected":"22"})"
                                "\n" +
                                    chat_pair);

  std::ostringstream out;
  EXPECT_EQ(FeedbackStore(*db_).export_dataset("kto", out, {}).status().code(), ErrorCode::kInvalidArgument);
}

TEST(NormalizedScore, PutsThumbsAndRatingsOnOneScale) {
  EXPECT_EQ(normalized_score("thumbs", 1), 1.0);
  EXPECT_EQ(normalized_score("thumbs", -1), -1.0);
  EXPECT_EQ(normalized_score("rating", 1), -1.0);
  EXPECT_EQ(normalized_score("rating", 3), 0.0);
  EXPECT_EQ(normalized_score("rating", 4), 0.5);
  EXPECT_EQ(normalized_score("rating", 5), 1.0);
}

}  // namespace
}  // namespace keel::monitor

// Human feedback on served answers (table feedback): a thumbs up/down or a 1..5 rating
// on one trace, with an optional comment and corrected answer; and the datasets made
// from it for the next fine-tuning round (SFT examples, DPO preference pairs). Feedback
// names a trace that is already stored: a trace still in TraceWriter's queue (the
// first ~200 ms after the answer) is not found yet.
//
// Exports (JSONL, one example per line, keys in the order shown, oldest feedback first):
//
// A trace is "chat" when its endpoint is "chat.completions" and its prompt is a JSON
// array of message objects (each with a string "role"); its messages are kept as
// stored. Any other trace with a non-empty prompt is "text". Feedback on a trace whose
// prompt was not stored (TextPolicy::kDrop), or on a chat trace whose prompt is not
// such an array (cut by the size bound), is skipped and counted.
//
// sft: one line per feedback with a corrected answer:
//   chat: {"messages": [...prompt messages..., {"role": "assistant", "content": CORRECTED}]}
//   text: {"prompt": PROMPT, "response": CORRECTED}
//
// dpo: preference pairs {"prompt", "chosen", "rejected"}, in TRL's formats:
//   chat: {"prompt": [...messages...], "chosen": [{"role": "assistant", "content": A}],
//          "rejected": [{"role": "assistant", "content": B}]}
//   text: {"prompt": PROMPT, "chosen": A, "rejected": B}
// Feedback is grouped by prompt (the same messages, or the same text). In each group,
// taken in the order of its oldest feedback:
//   1. corrections: each feedback with a corrected answer gives chosen = the corrected
//      answer, rejected = its trace's response (unless that is empty or the same text);
//   2. rankings: every distinct non-empty trace response of the group is an answer,
//      scored by the mean normalized_score() of all feedback on traces that gave it.
//      Answers sorted by score (highest first; ties by oldest feedback) give a pair for
//      every two answers i < j whose scores differ (chosen = i, rejected = j), in that
//      order, at most max_pairs_per_prompt ranking pairs per group.
//   A (chosen, rejected) pair already written for the group is not written again.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "keel/store/db.h"
#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::monitor {

struct Feedback {
  std::string id;
  std::string trace_id;
  std::string kind;  // "thumbs" or "rating"
  int score = 0;     // thumbs: -1 or 1; rating: 1..5
  std::string comment;
  std::string corrected_answer;
  std::string user;
  int64_t created_at = 0;  // epoch ms
  std::string model;       // the trace's model and version, copied when the feedback is added
  int64_t version = 0;
};

constexpr size_t kMaxFeedbackCommentBytes = 64u << 10;
constexpr size_t kMaxCorrectedAnswerBytes = 1u << 20;

struct NewFeedback {
  std::string trace_id;
  std::string kind = "thumbs";
  int score = 0;
  std::string comment;
  std::string corrected_answer;
  std::string user;  // who gives it (the request's user)
};

struct FeedbackFilter {
  std::string trace_id;  // each "" = any
  std::string model;
  std::optional<int64_t> version;
  std::string user;
  std::string kind;
  int64_t limit = 50;      // 1..1000; list() only (exports take every match)
  std::string page_token;  // list() only
};

struct FeedbackPage {
  std::vector<Feedback> feedback;  // newest first
  std::string next_page_token;     // "" on the last page
};

struct ExportSummary {
  uint64_t examples = 0;  // lines written
  uint64_t skipped = 0;   // feedback whose trace has no usable prompt
};

// thumbs -1 / 1 as they are; rating r as (r - 3) / 2 (1 -> -1, 3 -> 0, 5 -> 1): one
// scale for ranking answers and for the summaries' mean score.
double normalized_score(std::string_view kind, int score);

class FeedbackStore {
 public:
  explicit FeedbackStore(store::Db& db) : db_(db) {}

  // Validates and stores feedback (and an audit event "feedback.add" on "trace:<id>").
  // kInvalidArgument for a bad kind or score, a comment over 64 KiB, a corrected answer
  // over 1 MiB, or text that is not UTF-8; kNotFound for an unknown trace id.
  Result<Feedback> add(const NewFeedback& feedback);
  Result<FeedbackPage> list(const FeedbackFilter& filter);

  // Writes the dataset of the feedback that matches filter (its limit and page_token
  // are ignored) in format "sft" or "dpo" (rules above).
  Result<ExportSummary> export_dataset(std::string_view format, std::ostream& out, const FeedbackFilter& filter,
                                       size_t max_pairs_per_prompt = 32);

 private:
  store::Db& db_;
};

Json to_json(const Feedback& feedback);

}  // namespace keel::monitor

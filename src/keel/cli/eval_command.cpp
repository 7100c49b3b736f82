#include <cstdio>
#include <iostream>

#include "keel/cli/commands.h"
#include "keel/eval/bleu.h"
#include "keel/eval/chrf.h"
#include "keel/eval/rouge.h"
#include "keel/eval/squad.h"
#include "keel/eval/text.h"
#include "keel/util/file.h"

namespace keel::cli {
namespace {

constexpr size_t kMaxSegmentFileBytes = size_t{2} << 30;

struct ScoreOptions {
  std::string metric;
  std::string pred;
  std::vector<std::string> refs;
  std::string tokenize = "13a";
  std::string smooth = "exp";
  bool lowercase = false;
  int word_order = 0;
  bool stem = false;
  std::vector<std::string> rouge_types = {"rouge1", "rouge2", "rougeL", "rougeLsum"};
  int bootstrap = 0;
  uint64_t seed = 0;
  int threads = 1;
};

// One segment per line ("\n"; a trailing "\r" is dropped), valid UTF-8 required.
Result<std::vector<std::string>> read_segments(const std::string& path) {
  KEEL_ASSIGN_OR_RETURN(std::string text, read_file(path, kMaxSegmentFileBytes));
  if (text.empty()) return invalid_argument(path + " is empty: give one segment per line");
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!eval::is_valid_utf8(line)) {
      return invalid_argument(path + " line " + std::to_string(lines.size() + 1) + " is not valid UTF-8");
    }
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

Json rouge_json(const eval::RougeScore& s) {
  return {{"precision", s.precision}, {"recall", s.recall}, {"fmeasure", s.fmeasure}};
}

Status run_score(CliContext& ctx, const ScoreOptions& o) {
  KEEL_ASSIGN_OR_RETURN(std::vector<std::string> preds, read_segments(o.pred));
  std::vector<std::vector<std::string>> refs;
  for (const auto& path : o.refs) {
    KEEL_ASSIGN_OR_RETURN(std::vector<std::string> r, read_segments(path));
    if (r.size() != preds.size()) {
      return invalid_argument(o.pred + " has " + std::to_string(preds.size()) + " lines but " + path + " has " +
                              std::to_string(r.size()) + ": predictions and references must align line by line");
    }
    refs.push_back(std::move(r));
  }

  if (o.metric == "bleu") {
    eval::BleuOptions bo;
    bo.tokenize = o.tokenize;
    bo.lowercase = o.lowercase;
    bo.smooth_method = o.smooth;
    bo.threads = o.threads;
    KEEL_ASSIGN_OR_RETURN(eval::BleuScore s, eval::corpus_bleu(preds, refs, bo));
    if (ctx.json()) {
      print_json({{"metric", "bleu"}, {"score", s.score}, {"signature", s.signature}, {"verbose", s.verbose()},
                  {"format", s.format()}, {"precisions", s.precisions}, {"counts", s.counts}, {"totals", s.totals},
                  {"bp", s.bp}, {"ratio", s.ratio}, {"hyp_len", s.sys_len}, {"ref_len", s.ref_len}});
    } else {
      std::cout << s.format() << "\nsignature: " << s.signature << "\n";
    }
    return Status::Ok();
  }
  if (o.metric == "chrf") {
    eval::ChrfOptions co;
    co.word_order = o.word_order;
    co.lowercase = o.lowercase;
    co.threads = o.threads;
    KEEL_ASSIGN_OR_RETURN(eval::ChrfScore s, eval::corpus_chrf(preds, refs, co));
    if (ctx.json()) {
      print_json({{"metric", "chrf"}, {"name", s.name}, {"score", s.score}, {"signature", s.signature},
                  {"format", s.format()}});
    } else {
      std::cout << s.format() << "\nsignature: " << s.signature << "\n";
    }
    return Status::Ok();
  }
  if (o.metric == "rouge") {
    eval::RougeOptions ro;
    ro.types = o.rouge_types;
    ro.use_stemmer = o.stem;
    ro.threads = o.threads;
    ro.bootstrap_samples = o.bootstrap;
    ro.seed = o.seed;
    KEEL_ASSIGN_OR_RETURN(eval::RougeCorpusResult r, eval::rouge_corpus(preds, refs, ro));
    if (ctx.json()) {
      Json out = Json::object();
      for (size_t t = 0; t < r.types.size(); ++t) {
        Json j = rouge_json(r.mean[t]);
        if (!r.intervals.empty()) {
          j["low"] = rouge_json(r.intervals[t].low);
          j["high"] = rouge_json(r.intervals[t].high);
        }
        out[r.types[t]] = std::move(j);
      }
      print_json(out);
    } else {
      std::printf("%-10s %10s %10s %10s   (mean over %zu segments%s)\n", "", "precision", "recall", "fmeasure",
                  preds.size(), o.stem ? ", Porter stemmer" : "");
      for (size_t t = 0; t < r.types.size(); ++t) {
        std::printf("%-10s %10.6f %10.6f %10.6f", r.types[t].c_str(), r.mean[t].precision, r.mean[t].recall,
                    r.mean[t].fmeasure);
        if (!r.intervals.empty()) {
          std::printf("   F %.0f%% interval [%.6f, %.6f]", ro.confidence * 100, r.intervals[t].low.fmeasure,
                      r.intervals[t].high.fmeasure);
        }
        std::printf("\n");
      }
      std::fflush(stdout);
    }
    return Status::Ok();
  }
  // em / f1: every --ref file holds one accepted answer per question.
  std::vector<std::vector<std::string>> golds(preds.size());
  for (size_t i = 0; i < preds.size(); ++i) {
    for (const auto& stream : refs) golds[i].push_back(stream[i]);
  }
  KEEL_ASSIGN_OR_RETURN(eval::SquadCorpusResult r, eval::squad_corpus(preds, golds));
  // Reported on SQuAD's 0-100 scale, as its official evaluation script prints it.
  double score = 100.0 * (o.metric == "em" ? r.mean.exact_match : r.mean.f1);
  if (ctx.json()) {
    print_json({{"metric", o.metric}, {"score", score}, {"questions", preds.size()}});
  } else {
    std::printf("%s = %.4f  (%zu questions, SQuAD normalisation)\n", o.metric == "em" ? "exact match" : "token F1",
                score, preds.size());
    std::fflush(stdout);
  }
  return Status::Ok();
}

}  // namespace

void add_eval_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* eval = app.add_subcommand("eval", "Evaluate models: tasks, runs, comparisons and release gates; metrics identical to the reference tools");
  eval->require_subcommand(1);
  auto o = std::make_shared<ScoreOptions>();
  auto* score = eval->add_subcommand(
      "score",
      "Score predictions against references, one segment per line: BLEU and chrF as sacrebleu 2.6 computes them, "
      "ROUGE as rouge-score 0.1.2, exact match / token F1 as SQuAD v1.1 (0-100)");
  score->add_option("--metric", o->metric, "bleu, chrf, rouge, em or f1")
      ->required()
      ->check(CLI::IsMember({"bleu", "chrf", "rouge", "em", "f1"}));
  score->add_option("--pred", o->pred, "Predictions file (one segment per line)")->required();
  score->add_option("--ref", o->refs, "Reference file; repeat for several references")->required();
  score->add_option("--tokenize", o->tokenize, "BLEU tokenizer: 13a, none, intl or char")
      ->check(CLI::IsMember({"13a", "none", "intl", "char"}))
      ->capture_default_str();
  score->add_option("--smooth", o->smooth, "BLEU smoothing: exp, floor, add-k or none")
      ->check(CLI::IsMember({"exp", "floor", "add-k", "none"}))
      ->capture_default_str();
  score->add_flag("--lowercase", o->lowercase, "Lowercase before scoring (BLEU, chrF)");
  score->add_option("--word-order", o->word_order, "chrF word n-gram order (2 gives chrF++)")
      ->check(CLI::Range(0, 3))
      ->capture_default_str();
  score->add_flag("--stem", o->stem, "ROUGE with rouge-score's Porter stemmer");
  score->add_option("--rouge-types", o->rouge_types, "ROUGE variants: rouge1 rouge2 rougeL rougeLsum (rougeN up to 9)");
  score->add_option("--bootstrap", o->bootstrap, "ROUGE: bootstrap resamples for a 95% interval (0: none)")
      ->check(CLI::Range(0, 1000000));
  score->add_option("--seed", o->seed, "Seed of the bootstrap");
  score->add_option("--threads", o->threads, "Threads (0: one per core); the scores never depend on it")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  score->callback([&ctx, &outcome, o] { outcome = run_score(ctx, *o); });
  add_eval_run_commands(*eval, ctx, outcome);
  add_eval_review_commands(*eval, ctx, outcome);
  add_eval_probe_commands(*eval, ctx, outcome);
}

}  // namespace keel::cli

// `keel data dedup|pii|normalize|filter|split|format|run`: thin wrappers over keel/data
// (dedup.h, pii.h, steps.h, pipeline.h, recipe.h) that parse flags, show progress on
// stderr and print a summary (or --json).
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "keel/cli/commands.h"
#include "keel/cli/dataset_inputs.h"
#include "keel/cli/model_files.h"
#include "keel/data/dedup.h"
#include "keel/data/length_filter.h"
#include "keel/data/pii.h"
#include "keel/data/pipeline.h"
#include "keel/data/recipe.h"
#include "keel/util/id.h"

namespace keel::cli {
namespace {

struct DedupFlags {
  data::DedupOptions options;
  std::string preset = "datatrove";
  int ngram = 0;
  bool char_ngrams = false;
  int num_perm = 0;
  int bands = 0;
  double threshold = 0;
  uint64_t seed = 1;
  double max_record_mib = 64;
  CLI::Option* ngram_opt = nullptr;
  CLI::Option* char_opt = nullptr;
  CLI::Option* num_perm_opt = nullptr;
  CLI::Option* bands_opt = nullptr;
  CLI::Option* threshold_opt = nullptr;
};

struct PiiFlags {
  data::PiiFileOptions options;
  std::string mode = "redact";
  double max_record_mib = 64;
};

uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Shows where the first rejected records are, so a user need not rerun to find them.
void warn_rejections(const std::vector<data::Rejection>& first, uint64_t total) {
  for (const auto& r : first) {
    std::fprintf(stderr, "keel: warning: %s line %llu: %s\n", r.file.c_str(), static_cast<unsigned long long>(r.line),
                 r.reason.c_str());
  }
  if (total > first.size()) {
    std::fprintf(stderr, "keel: warning: ... and %llu more rejected records\n",
                 static_cast<unsigned long long>(total - first.size()));
  }
}

Result<size_t> max_record_bytes(double mib) {
  if (!(mib > 0) || mib > 4096) return invalid_argument("--max-record-mib must be between 0 and 4096");
  return static_cast<size_t>(mib * 1024 * 1024);
}

// The preset, then any flag given explicitly on top of it.
Result<data::MinHashConfig> minhash_config(const DedupFlags& f) {
  KEEL_ASSIGN_OR_RETURN(data::MinHashConfig c, data::minhash_preset(f.preset));
  if (f.ngram_opt->count() > 0) c.ngram = f.ngram;
  if (f.char_opt->count() > 0) c.char_ngrams = f.char_ngrams;
  if (f.threshold_opt->count() > 0) c.threshold = f.threshold;
  c.seed = f.seed;
  int num_perm = f.num_perm_opt->count() > 0 ? f.num_perm : c.num_perm();
  int bands = f.bands_opt->count() > 0 ? f.bands : c.bands;
  if (bands <= 0 || num_perm <= 0 || num_perm % bands != 0) {
    return invalid_argument("--num-perm (" + std::to_string(num_perm) + ") must be a positive multiple of --bands (" +
                            std::to_string(bands) + ")");
  }
  c.bands = bands;
  c.rows = num_perm / bands;
  KEEL_RETURN_IF_ERROR(c.validate());
  return c;
}

Status run_dedup(CliContext& ctx, DedupFlags& f) {
  data::DedupOptions& o = f.options;
  KEEL_ASSIGN_OR_RETURN(o.max_record_bytes, max_record_bytes(f.max_record_mib));
  if (o.near) {
    KEEL_ASSIGN_OR_RETURN(o.minhash, minhash_config(f));
  }
  uint64_t total = file_size(o.input);
  ProgressBar bar(o.near ? "dedup (near)" : "dedup", total);
  o.progress = [&bar](uint64_t bytes, uint64_t records) { bar.update(bytes, records, "records"); };
  auto summary = data::deduplicate(o);
  bar.finish();
  if (!summary.ok()) return summary.status();
  const data::DedupSummary& s = *summary;
  warn_rejections(s.first_rejections, s.rejected);
  double rate = s.seconds_total > 0 ? static_cast<double>(s.records_read) / s.seconds_total : 0;
  if (ctx.json()) {
    Json out = {{"mode", o.near ? "near" : "exact"},
                {"field", o.field},
                {"records_read", s.records_read},
                {"kept", s.kept},
                {"removed", s.removed},
                {"clusters", s.clusters},
                {"rejected", s.rejected},
                {"seconds", s.seconds_total},
                {"records_per_second", rate}};
    if (o.near) {
      out["minhash"] = {{"preset", f.preset},
                        {"ngram", o.minhash.ngram},
                        {"char_ngrams", o.minhash.char_ngrams},
                        {"num_perm", o.minhash.num_perm()},
                        {"bands", o.minhash.bands},
                        {"rows", o.minhash.rows},
                        {"threshold", o.minhash.threshold},
                        {"seed", o.minhash.seed}};
      out["seconds_signatures"] = s.seconds_signatures;
    }
    print_json(out);
    return Status::Ok();
  }
  std::printf("read %s records in %.2f s (%s records/s)", human_count(s.records_read).c_str(), s.seconds_total,
              human_count(static_cast<uint64_t>(rate)).c_str());
  if (s.rejected > 0) {
    std::printf(
        "; %s rejected%s", human_count(s.rejected).c_str(),
        o.rejects.empty() ? " (see --rejects FILE for which and why)" : (" (listed in " + o.rejects + ")").c_str());
  }
  std::printf("\nkept %s, removed %s %sduplicates in %s clusters -> %s\n", human_count(s.kept).c_str(),
              human_count(s.removed).c_str(), o.near ? "near-" : "exact ", human_count(s.clusters).c_str(),
              o.output.c_str());
  if (o.near) {
    std::printf(
        "minhash: %s %d-grams, %d permutations = %d bands x %d rows%s\n", o.minhash.char_ngrams ? "character" : "word",
        o.minhash.ngram, o.minhash.num_perm(), o.minhash.bands, o.minhash.rows,
        o.minhash.threshold > 0 ? (", verified at Jaccard >= " + std::to_string(o.minhash.threshold)).c_str() : "");
  }
  std::fflush(stdout);
  return Status::Ok();
}

Status run_pii(CliContext& ctx, PiiFlags& f) {
  data::PiiFileOptions& o = f.options;
  KEEL_ASSIGN_OR_RETURN(o.max_record_bytes, max_record_bytes(f.max_record_mib));
  KEEL_ASSIGN_OR_RETURN(o.mode, data::parse_redaction_mode(f.mode));
  ProgressBar bar("pii", file_size(o.input));
  o.progress = [&bar](uint64_t bytes, uint64_t records) { bar.update(bytes, records, "records"); };
  auto summary = data::redact_file(o);
  bar.finish();
  if (!summary.ok()) return summary.status();
  const data::PiiFileSummary& s = *summary;
  warn_rejections(s.first_rejections, s.rejected);
  double mb_per_s = s.seconds > 0 ? static_cast<double>(s.text_bytes) / 1e6 / s.seconds : 0;
  Json counts = Json::object();
  uint64_t total = 0;
  for (size_t t = 0; t < data::kPiiTypeCount; ++t) {
    counts[std::string(data::pii_type_name(static_cast<data::PiiType>(t)))] = s.counts[t];
    total += s.counts[t];
  }
  if (ctx.json()) {
    print_json({{"mode", f.mode},
                {"field", o.field},
                {"records_read", s.records_read},
                {"records_changed", s.records_changed},
                {"records_without_field", s.records_without_field},
                {"rejected", s.rejected},
                {"findings", total},
                {"counts", counts},
                {"text_bytes", s.text_bytes},
                {"seconds", s.seconds},
                {"mb_per_second", mb_per_s}});
    return Status::Ok();
  }
  std::printf("read %s records (%s of text) in %.2f s, %.1f MB/s; %s changed", human_count(s.records_read).c_str(),
              human_bytes(s.text_bytes).c_str(), s.seconds, mb_per_s, human_count(s.records_changed).c_str());
  if (s.records_without_field > 0) {
    std::printf("; %s without text (a string \"%s\" field or chat messages; copied unchanged)",
                human_count(s.records_without_field).c_str(), o.field.c_str());
  }
  if (s.rejected > 0) std::printf("; %s rejected", human_count(s.rejected).c_str());
  std::printf("\n%s findings (%s) -> %s\n", human_count(total).c_str(), f.mode.c_str(), o.output.c_str());
  for (size_t t = 0; t < data::kPiiTypeCount; ++t) {
    if (s.counts[t] > 0) {
      std::printf("  %-16s %s\n", std::string(data::pii_type_name(static_cast<data::PiiType>(t))).c_str(),
                  human_count(s.counts[t]).c_str());
    }
  }
  std::fflush(stdout);
  return Status::Ok();
}

// Flags shared by the step commands (normalize, filter, split, format, run).
struct StepIoFlags {
  std::string input;
  std::string output;
  std::string input_format;
  std::string output_format;
  std::string rejects;
  std::string field = "text";
  double max_record_mib = 64;
  std::vector<std::string> sets;  // --set [step.]name=value
};

// Applies the --set assignments meant for a step ("name=value" for the command's
// only step type, or "step.name=value").
Status apply_sets(const std::vector<std::string>& sets, std::string_view type, bool single_type,
                  const data::ParamSet& params) {
  for (const auto& s : sets) {
    size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) return invalid_argument("--set takes name=value, not \"" + s + "\"");
    std::string name = s.substr(0, eq);
    size_t dot = name.find('.');
    if (dot != std::string::npos) {
      if (name.substr(0, dot) != type) continue;
      name = name.substr(dot + 1);
    } else if (!single_type) {
      return invalid_argument("--set " + s + ": name the step too (step.name=value, e.g. gopher_quality." + name + ")");
    }
    Status st = params.set_from_string(name, s.substr(eq + 1));
    if (!st.ok()) return st.with_context("--set " + s);
  }
  return Status::Ok();
}

// Every --set must have found its step.
Status check_sets_used(const std::vector<std::string>& sets, const std::vector<data::PipelineStep>& steps) {
  for (const auto& s : sets) {
    size_t dot = s.find('.');
    size_t eq = s.find('=');
    if (dot == std::string::npos || dot > eq) continue;
    std::string type = s.substr(0, dot);
    bool found = false;
    for (const auto& step : steps) found = found || step.type == type;
    if (!found) return invalid_argument("--set " + s + ": no " + type + " step in this command");
  }
  return Status::Ok();
}

Result<data::PipelineStep> build_cli_step(std::string_view type, const StepIoFlags& f, bool single_type,
                                          const std::function<Status(const data::ParamSet&)>& flags) {
  return data::build_step(type, f.field, [&](const data::ParamSet& params) -> Status {
    if (flags) KEEL_RETURN_IF_ERROR(flags(params));
    return apply_sets(f.sets, type, single_type, params);
  });
}

std::string tally_text(const std::map<std::string, uint64_t>& tally) {
  std::string out;
  for (const auto& [reason, n] : tally) out += (out.empty() ? "" : ", ") + reason + " " + human_count(n);
  return out;
}

// Runs the steps and prints their summary. With summary_out the caller gets the
// summary too; with json_out the --json document is left there to add to, not printed.
Status run_steps(CliContext& ctx, const StepIoFlags& f, std::vector<data::PipelineStep>& steps,
                 const std::string& output, const std::string& label, data::PipelineSummary* summary_out = nullptr,
                 Json* json_out = nullptr, bool print_outputs = true) {
  // Steps that count tokens get their model's tokenizer (loaded once per model, kept
  // for the run).
  std::map<std::string, LoadedModel> tokenizers;
  for (data::PipelineStep& step : steps) {
    auto* length = dynamic_cast<data::LengthFilter*>(step.op.get());
    if (length == nullptr || !length->counts_tokens()) continue;
    auto [it, fresh] = tokenizers.try_emplace(length->tokenizer());
    if (fresh) {
      auto loaded = load_model(ctx, length->tokenizer(), false);
      if (!loaded.ok()) return loaded.status().with_context("the length step's tokenizer");
      it->second = std::move(*loaded);
    }
    const engine::Tokenizer* tokenizer = it->second.tokenizer.get();
    length->set_token_counter([tokenizer](std::string_view text) -> Result<size_t> {
      KEEL_ASSIGN_OR_RETURN(auto ids, tokenizer->encode(text, false, false));
      return ids.size();
    });
  }
  data::PipelineOptions o;
  o.input = f.input;
  o.output = output;
  o.input_format = f.input_format;
  o.output_format = f.output_format;
  o.rejects = f.rejects;
  o.text_field = f.field;
  KEEL_ASSIGN_OR_RETURN(o.max_record_bytes, max_record_bytes(f.max_record_mib));
  uint64_t total = file_size(f.input);
  std::unique_ptr<ProgressBar> bar;
  int bar_pass = 0;
  o.progress = [&](int pass, const std::string& pass_label, uint64_t bytes, uint64_t records) {
    if (pass != bar_pass) {
      if (bar) bar->finish();
      bar = std::make_unique<ProgressBar>(label + (pass > 1 || pass_label != "pass 1" ? " (" + pass_label + ")" : ""),
                                          pass == 1 ? total : file_size(f.input));
      bar_pass = pass;
    }
    bar->update(bytes, records, "records");
  };
  auto summary = data::run_pipeline(steps, o);
  if (bar) bar->finish();
  if (!summary.ok()) return summary.status();
  const data::PipelineSummary& s = *summary;
  if (summary_out != nullptr) *summary_out = s;
  warn_rejections(s.first_rejections, s.rejected);
  double rate = s.seconds > 0 ? static_cast<double>(s.records_read) / s.seconds : 0;
  if (ctx.json()) {
    Json step_list = Json::array();
    for (const auto& r : s.steps) {
      Json step = {{"step", r.type},
                   {"seen", r.counts.seen},
                   {"kept", r.counts.kept},
                   {"changed", r.counts.changed},
                   {"dropped", r.counts.dropped},
                   {"dropped_by_reason", r.counts.dropped_by_reason},
                   {"notes", r.counts.notes},
                   {"params", Json::parse(r.params.dump())}};
      if (r.type == "dedup" && r.params.value("near", false)) step["clusters"] = r.clusters;
      step_list.push_back(std::move(step));
    }
    Json outputs = Json::array();
    for (const auto& [path, n] : s.outputs) outputs.push_back({{"path", path}, {"records", n}});
    Json doc = {{"records_read", s.records_read},
                {"written", s.written},
                {"dropped", s.dropped},
                {"rejected", s.rejected},
                {"passes", s.passes},
                {"seconds", s.seconds},
                {"records_per_second", rate},
                {"outputs", outputs},
                {"steps", step_list}};
    if (json_out != nullptr) {
      *json_out = std::move(doc);
    } else {
      print_json(doc);
    }
    return Status::Ok();
  }
  std::printf("read %s records in %.2f s (%s records/s)", human_count(s.records_read).c_str(), s.seconds,
              human_count(static_cast<uint64_t>(rate)).c_str());
  if (s.rejected > 0) {
    std::printf(
        "; %s rejected%s", human_count(s.rejected).c_str(),
        f.rejects.empty() ? " (see --rejects FILE for which and why)" : (" (listed in " + f.rejects + ")").c_str());
  }
  std::printf("\n");
  for (const auto& r : s.steps) {
    std::printf("  %-18s kept %s of %s", r.type.c_str(), human_count(r.counts.kept).c_str(),
                human_count(r.counts.seen).c_str());
    if (r.counts.changed > 0) std::printf(", changed %s", human_count(r.counts.changed).c_str());
    if (!r.counts.notes.empty()) std::printf(" (%s)", tally_text(r.counts.notes).c_str());
    if (r.counts.dropped > 0) {
      std::printf("; dropped %s (%s)", human_count(r.counts.dropped).c_str(),
                  tally_text(r.counts.dropped_by_reason).c_str());
    }
    std::printf("\n");
  }
  if (print_outputs) {
    for (const auto& [path, n] : s.outputs) std::printf("wrote %s records -> %s\n", human_count(n).c_str(), path.c_str());
  }
  if (s.dropped > 0 && !f.rejects.empty()) {
    std::printf("dropped records, with step and reason, are in %s\n", f.rejects.c_str());
  }
  std::fflush(stdout);
  return Status::Ok();
}

void add_step_io_flags(CLI::App* cmd, StepIoFlags& f, bool with_out) {
  cmd->add_option("--in", f.input, "Input: .jsonl, .json, .csv, .tsv or .txt, optionally .gz or .zst")->required();
  if (with_out) cmd->add_option("--out", f.output, "Output, format and compression from its extension")->required();
  cmd->add_option("--format", f.input_format,
                  "Input format when the extension does not say: jsonl, json, csv, tsv, text")
      ->check(CLI::IsMember({"jsonl", "json", "csv", "tsv", "text"}));
  cmd->add_option("--out-format", f.output_format, "Output format when the extension does not say")
      ->check(CLI::IsMember({"jsonl", "json", "csv", "tsv", "text"}));
  cmd->add_option("--rejects", f.rejects,
                  "Write records that could not be read, and records a step dropped (with the step and reason), "
                  "as JSONL");
  cmd->add_option("--max-record-mib", f.max_record_mib, "Largest record accepted, in MiB; larger ones are rejected")
      ->capture_default_str();
}

void add_field_and_set_flags(CLI::App* cmd, StepIoFlags& f, const std::string& set_help) {
  cmd->add_option("--field", f.field, "The text field (a plain-text input line becomes this field)")
      ->capture_default_str();
  cmd->add_option("--set", f.sets, set_help);
}

struct NormalizeFlags {
  StepIoFlags io;
  std::string unicode = "nfc";
  bool html = false;
  bool no_whitespace = false;
  bool keep_spaces = false;
};

Status run_normalize(CliContext& ctx, NormalizeFlags& f) {
  std::vector<data::PipelineStep> steps;
  KEEL_ASSIGN_OR_RETURN(auto step, build_cli_step("normalize", f.io, true, [&](const data::ParamSet& p) {
                          KEEL_RETURN_IF_ERROR(p.set_from_string("unicode", f.unicode));
                          KEEL_RETURN_IF_ERROR(p.set_from_string("html", f.html ? "true" : "false"));
                          KEEL_RETURN_IF_ERROR(p.set_from_string("whitespace", f.no_whitespace ? "false" : "true"));
                          return p.set_from_string("collapse_spaces", f.keep_spaces ? "false" : "true");
                        }));
  steps.push_back(std::move(step));
  return run_steps(ctx, f.io, steps, f.io.output, "normalize");
}

struct FilterFlags {
  StepIoFlags io;
  std::vector<std::string> presets;
  int64_t min_chars = 0, max_chars = 0, min_words = 0, max_words = 0, min_tokens = 0, max_tokens = 0;
  std::string tokenizer;
  std::vector<std::string> languages;
  double language_confidence = 0.65;
  bool annotate_language = false;
  bool gopher_quality = false, gopher_repetition = false, c4 = false;
  CLI::Option* confidence_opt = nullptr;
};

Status run_filter(CliContext& ctx, FilterFlags& f) {
  bool gopher_quality = f.gopher_quality, gopher_repetition = f.gopher_repetition, c4 = f.c4;
  for (const auto& p : f.presets) {
    if (p == "gopher") {
      gopher_quality = gopher_repetition = true;
    } else if (p == "c4") {
      c4 = true;
    }
  }
  bool length = f.min_chars > 0 || f.max_chars > 0 || f.min_words > 0 || f.max_words > 0 || f.min_tokens > 0 ||
                f.max_tokens > 0;
  bool language = !f.languages.empty() || f.confidence_opt->count() > 0;
  std::vector<data::PipelineStep> steps;
  if (length) {
    KEEL_ASSIGN_OR_RETURN(auto step, build_cli_step("length", f.io, false, [&](const data::ParamSet& p) {
                            KEEL_RETURN_IF_ERROR(p.set_from_string("min_chars", std::to_string(f.min_chars)));
                            KEEL_RETURN_IF_ERROR(p.set_from_string("max_chars", std::to_string(f.max_chars)));
                            KEEL_RETURN_IF_ERROR(p.set_from_string("min_words", std::to_string(f.min_words)));
                            KEEL_RETURN_IF_ERROR(p.set_from_string("max_words", std::to_string(f.max_words)));
                            KEEL_RETURN_IF_ERROR(p.set_from_string("min_tokens", std::to_string(f.min_tokens)));
                            KEEL_RETURN_IF_ERROR(p.set_from_string("max_tokens", std::to_string(f.max_tokens)));
                            return p.set_from_string("tokenizer", f.tokenizer);
                          }));
    steps.push_back(std::move(step));
  }
  if (language) {
    KEEL_ASSIGN_OR_RETURN(auto step, build_cli_step("language", f.io, false, [&](const data::ParamSet& p) {
                            if (!f.languages.empty()) {
                              std::string joined;
                              for (const auto& l : f.languages) joined += (joined.empty() ? "" : ",") + l;
                              KEEL_RETURN_IF_ERROR(p.set_from_string("languages", joined));
                            }
                            KEEL_RETURN_IF_ERROR(p.set_from_string("annotate", f.annotate_language ? "true" : "false"));
                            return p.set_from_string("min_confidence", std::to_string(f.language_confidence));
                          }));
    steps.push_back(std::move(step));
  }
  for (auto [on, type] : {std::pair{gopher_quality, "gopher_quality"},
                          std::pair{gopher_repetition, "gopher_repetition"}, std::pair{c4, "c4"}}) {
    if (!on) continue;
    KEEL_ASSIGN_OR_RETURN(auto step, build_cli_step(type, f.io, false, nullptr));
    steps.push_back(std::move(step));
  }
  if (steps.empty()) {
    return invalid_argument(
        "no filter chosen: give --preset gopher|c4, --gopher-quality, --gopher-repetition, --c4, --lang or a "
        "length bound");
  }
  KEEL_RETURN_IF_ERROR(check_sets_used(f.io.sets, steps));
  return run_steps(ctx, f.io, steps, f.io.output, "filter");
}

struct SplitFlags {
  StepIoFlags io;
  std::string out_dir;
  std::vector<double> ratios = {0.8, 0.1, 0.1};
  std::vector<std::string> names = {"train", "validation", "test"};
  std::string key;
  std::string seed = "keel";
  std::string tag_field;
};

Status run_split(CliContext& ctx, SplitFlags& f) {
  std::vector<data::PipelineStep> steps;
  KEEL_ASSIGN_OR_RETURN(auto step, build_cli_step("split", f.io, true, [&](const data::ParamSet& p) {
                          std::string ratios, names;
                          for (double r : f.ratios) ratios += (ratios.empty() ? "" : ",") + std::to_string(r);
                          for (const auto& n : f.names) names += (names.empty() ? "" : ",") + n;
                          KEEL_RETURN_IF_ERROR(p.set_from_string("ratios", ratios));
                          KEEL_RETURN_IF_ERROR(p.set_from_string("names", names));
                          KEEL_RETURN_IF_ERROR(p.set_from_string("key", f.key));
                          KEEL_RETURN_IF_ERROR(p.set_from_string("seed", f.seed));
                          return p.set_from_string("tag_field", f.tag_field);
                        }));
  steps.push_back(std::move(step));
  std::error_code ec;
  std::filesystem::create_directories(f.out_dir, ec);
  if (ec) return invalid_argument("--out-dir " + f.out_dir + ": " + ec.message());
  std::string ext = f.io.output_format.empty() ? "jsonl" : f.io.output_format;
  if (ext == "text") ext = "txt";
  return run_steps(ctx, f.io, steps, (std::filesystem::path(f.out_dir) / ("{split}." + ext)).string(), "split");
}

struct FormatFlags {
  StepIoFlags io;
  std::vector<std::string> templates;  // ROLE=TEXT
  std::string style;
  std::vector<std::string> keep_fields;
};

Status run_format(CliContext& ctx, FormatFlags& f) {
  std::vector<std::pair<std::string, std::string>> roles;
  bool chat = false;
  for (const auto& t : f.templates) {
    size_t eq = t.find('=');
    std::string role = eq == std::string::npos ? "" : t.substr(0, eq);
    if (role != "prompt" && role != "response" && role != "system" && role != "user" && role != "assistant") {
      return invalid_argument(
          "--template takes ROLE=TEXT with ROLE prompt, response, system, user or assistant, not \"" + t + "\"");
    }
    chat = chat || role == "system" || role == "user" || role == "assistant";
    roles.emplace_back(role, t.substr(eq + 1));
  }
  std::string style = !f.style.empty() ? f.style : (chat ? "chat" : "prompt_response");
  std::vector<data::PipelineStep> steps;
  KEEL_ASSIGN_OR_RETURN(auto step, build_cli_step("format", f.io, true, [&](const data::ParamSet& p) {
                          KEEL_RETURN_IF_ERROR(p.set_from_string("style", style));
                          for (const auto& [role, text] : roles) {
                            // Templates may hold commas: set the string slot directly.
                            *std::get<std::string*>(p.find(role)->slot) = text;
                          }
                          std::string keep;
                          for (const auto& k : f.keep_fields) keep += (keep.empty() ? "" : ",") + k;
                          return p.set_from_string("keep_fields", keep);
                        }));
  steps.push_back(std::move(step));
  return run_steps(ctx, f.io, steps, f.io.output, "format");
}

struct RunFlags {
  StepIoFlags io;
  std::string recipe;
  std::string name;  // record the output as a version of this dataset
};

// The split a file written for an output pattern holds ("{split}" in the pattern).
std::string split_of(const std::string& pattern, const std::string& path) {
  size_t at = pattern.find("{split}");
  if (at == std::string::npos) return "";
  size_t suffix = pattern.size() - at - 7;
  if (path.size() < at + suffix) return "";
  return path.substr(at, path.size() - at - suffix);
}

Status run_recipe(CliContext& ctx, RunFlags& f) {
  KEEL_ASSIGN_OR_RETURN(data::Recipe recipe, data::load_recipe(f.recipe));
  std::string name = !f.name.empty() ? f.name : recipe.dataset;
  if (!name.empty()) KEEL_RETURN_IF_ERROR(datasets::check_dataset_name(name));
  f.io.field = recipe.field;
  std::string label = recipe.name.empty() ? "run" : recipe.name;
  if (name.empty()) {
    if (f.io.output.empty()) {
      return invalid_argument("give --out FILE, or --name NAME (or a dataset: key in the recipe) to record the output "
                              "as a dataset version");
    }
    KEEL_ASSIGN_OR_RETURN(DataInput input, resolve_data_input(ctx, f.io.input));
    StepIoFlags io = f.io;
    io.input = input.path;
    if (io.input_format.empty()) io.input_format = input.format;
    return run_steps(ctx, io, recipe.steps, f.io.output, label);
  }

  KEEL_ASSIGN_OR_RETURN(DataInput input, resolve_data_input(ctx, f.io.input));
  StepIoFlags io = f.io;
  io.input = input.path;
  if (io.input_format.empty()) io.input_format = input.format;
  std::string output = f.io.output;
  std::string work_dir;
  if (output.empty()) {
    // Without --out the output lives only in the artifact store: written to a work
    // folder in the home, recorded, removed.
    KEEL_RETURN_IF_ERROR(ctx.prepare_home());
    work_dir = ctx.options().home + "/tmp/run-" + new_id();
    std::error_code ec;
    std::filesystem::create_directories(work_dir, ec);
    if (ec) return unavailable("work folder " + work_dir + ": " + ec.message());
    bool splits = std::any_of(recipe.steps.begin(), recipe.steps.end(), [](const auto& s) { return s.type == "split"; });
    output = work_dir + (splits ? "/{split}.jsonl" : "/output.jsonl");
  }
  struct RemoveWorkDir {
    std::string dir;
    ~RemoveWorkDir() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{work_dir};

  data::PipelineSummary summary;
  Json doc;
  // Outputs in the work folder are not worth naming: they become dataset versions.
  KEEL_RETURN_IF_ERROR(run_steps(ctx, io, recipe.steps, output, label, &summary, &doc, work_dir.empty()));

  std::ifstream recipe_in(f.recipe, std::ios::binary);
  std::string recipe_text((std::istreambuf_iterator<char>(recipe_in)), std::istreambuf_iterator<char>());
  data::ProfileJson steps = data::ProfileJson::array();
  for (const auto& r : summary.steps) {
    steps.push_back({{"step", r.type}, {"kept", r.counts.kept}, {"dropped", r.counts.dropped}});
  }
  Json recorded = Json::array();
  for (const auto& [path, n] : summary.outputs) {
    std::string split = split_of(output, path);
    datasets::NewDatasetVersion spec;
    spec.name = split.empty() ? name : name + "-" + split;
    KEEL_RETURN_IF_ERROR(datasets::check_dataset_name(spec.name));
    spec.source = "recipe " + std::filesystem::path(f.recipe).filename().string() + " on " +
                  (input.dataset ? input.dataset->reference() : f.io.input);
    spec.recipe = recipe_text;
    spec.read.format = f.io.output_format;  // empty: from the output's extension
    spec.read.text_field = recipe.field;
    spec.text_field = recipe.field;
    spec.details = {{"input", f.io.input}, {"recipe_file", f.recipe}, {"steps", steps}};
    if (!split.empty()) spec.details["split"] = split;
    if (input.dataset) spec.parents.push_back({input.dataset->name, input.dataset->version});
    KEEL_ASSIGN_OR_RETURN(datasets::CreatedDataset created, record_dataset_version(ctx, path, std::move(spec)));
    recorded.push_back({{"reference", created.version.reference()},
                        {"content_sha256", created.version.content_sha256},
                        {"records", created.version.record_count},
                        {"created", created.created}});
  }
  if (ctx.json()) {
    doc["datasets"] = recorded;
    print_json(doc);
  }
  return Status::Ok();
}

// The steps and their parameters, for --help (recipes and --set use the same names).
std::string step_reference(const std::vector<std::string>& only = {}) {
  std::string out = "Steps and their parameters:\n";
  for (const auto& type : data::step_types()) {
    if (!only.empty() && std::find(only.begin(), only.end(), type) == only.end()) continue;
    auto params = data::step_parameters(type);
    if (!params.ok()) continue;
    out += "  " + type + ":";
    for (const auto& [name, help] : *params) out += " " + name;
    out += "\n";
  }
  return out;
}

void add_io_flags(CLI::App* cmd, std::string& in, std::string& out, std::string& in_format, std::string& out_format,
                  std::string& rejects, std::string& field, double& max_record_mib) {
  cmd->add_option("--in", in, "Input: .jsonl, .json, .csv, .tsv or .txt, optionally .gz or .zst")->required();
  cmd->add_option("--out", out, "Output, format and compression from its extension")->required();
  cmd->add_option("--format", in_format, "Input format when the extension does not say: jsonl, json, csv, tsv, text")
      ->check(CLI::IsMember({"jsonl", "json", "csv", "tsv", "text"}));
  cmd->add_option("--out-format", out_format, "Output format when the extension does not say")
      ->check(CLI::IsMember({"jsonl", "json", "csv", "tsv", "text"}));
  cmd->add_option("--rejects", rejects, "Write records that could not be read (with file, line, reason) as JSONL");
  cmd->add_option("--field", field, "The text field (a plain-text input line becomes this field)")
      ->capture_default_str();
  cmd->add_option("--max-record-mib", max_record_mib, "Largest record accepted, in MiB; larger ones are rejected")
      ->capture_default_str();
}

}  // namespace

void add_data_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* data_cmd = app.add_subcommand(
      "data",
      "Prepare training data: normalise, filter, remove duplicates, redact personal data, split, format; "
      "recipes");
  data_cmd->require_subcommand(1);

  auto d = std::make_shared<DedupFlags>();
  auto* dedup = data_cmd->add_subcommand(
      "dedup",
      "Remove exact duplicates (default) or near-duplicates (--near, MinHash LSH); keeps the first record of each "
      "cluster, with all its fields, in input order");
  add_io_flags(dedup, d->options.input, d->options.output, d->options.input_format, d->options.output_format,
               d->options.rejects, d->options.field, d->max_record_mib);
  dedup->add_flag("--near", d->options.near, "Near-duplicates by MinHash LSH instead of exact matches");
  dedup
      ->add_option("--preset", d->preset,
                   "MinHash defaults: datatrove (word 5-grams, 14x8) or nemo (char 24-grams, 20x13)")
      ->check(CLI::IsMember({"datatrove", "nemo"}))
      ->capture_default_str();
  d->ngram_opt = dedup->add_option("--ngram", d->ngram, "Shingle size in words (characters with --char-ngrams)")
                     ->check(CLI::Range(1, 1000));
  d->char_opt = dedup->add_flag("--char-ngrams", d->char_ngrams, "Character n-grams instead of word n-grams");
  d->num_perm_opt =
      dedup->add_option("--num-perm", d->num_perm, "Permutations (a multiple of --bands)")->check(CLI::Range(1, 4096));
  d->bands_opt = dedup->add_option("--bands", d->bands, "LSH bands")->check(CLI::Range(1, 4096));
  d->threshold_opt = dedup
                         ->add_option("--threshold", d->threshold,
                                      "Join LSH candidates only at this estimated Jaccard similarity (0: all)")
                         ->check(CLI::Range(0.0, 1.0));
  dedup->add_option("--seed", d->seed, "Seed of the MinHash permutations (each seed is another draw of the same LSH)")
      ->capture_default_str();
  dedup->add_option("--clusters", d->options.clusters, "Write duplicate clusters as JSONL {cluster, size, members}");
  dedup->add_option("--threads", d->options.threads, "Signature threads (0: one per core)")->check(CLI::Range(0, 1024));
  dedup->callback([&ctx, &outcome, d] { outcome = run_dedup(ctx, *d); });

  auto p = std::make_shared<PiiFlags>();
  auto* pii = data_cmd->add_subcommand(
      "pii",
      "Find and redact personal data and secrets (emails, phones, IPs, cards, IBANs, US SSNs, credentials, keys) in "
      "one text field; every other field is copied unchanged");
  add_io_flags(pii, p->options.input, p->options.output, p->options.input_format, p->options.output_format,
               p->options.rejects, p->options.field, p->max_record_mib);
  pii->add_option("--mode", p->mode, "redact ([EMAIL]), mask (****) or hash ([EMAIL:sha256 prefix])")
      ->check(CLI::IsMember({"redact", "mask", "hash"}))
      ->capture_default_str();
  pii->callback([&ctx, &outcome, p] { outcome = run_pii(ctx, *p); });
  auto nf = std::make_shared<NormalizeFlags>();
  auto* normalize = data_cmd->add_subcommand(
      "normalize",
      "Normalise one text field: HTML to text (--html), Unicode NFC or NFKC, line breaks, odd spaces and control "
      "characters; counts what changed");
  add_step_io_flags(normalize, nf->io, true);
  add_field_and_set_flags(normalize, nf->io, "Set a normalize parameter: name=value");
  normalize->add_option("--unicode", nf->unicode, "Unicode normalisation: nfc, nfkc or none")
      ->check(CLI::IsMember({"nfc", "nfkc", "none"}))
      ->capture_default_str();
  normalize->add_flag("--html", nf->html,
                      "Strip HTML to text: entities decoded, script/style dropped, blocks as lines");
  normalize->add_flag("--no-whitespace", nf->no_whitespace, "Leave whitespace and control characters as they are");
  normalize->add_flag("--keep-spaces", nf->keep_spaces, "Do not collapse runs of spaces inside lines");
  normalize->callback([&ctx, &outcome, nf] { outcome = run_normalize(ctx, *nf); });

  auto ff = std::make_shared<FilterFlags>();
  auto* filter = data_cmd->add_subcommand(
      "filter",
      "Keep records that pass quality rules: length, language (CLD2), Gopher quality and repetition, C4; counts "
      "drops per rule");
  add_step_io_flags(filter, ff->io, true);
  add_field_and_set_flags(filter, ff->io,
                          "Set a rule's threshold: step.name=value (gopher_quality.min_doc_words=30, "
                          "c4.min_sentences=3, gopher_repetition.dup_line_frac=0.5)");
  filter->add_option("--preset", ff->presets, "gopher (Gopher quality + repetition) or c4; may be given twice")
      ->check(CLI::IsMember({"gopher", "c4"}));
  filter->add_flag("--gopher-quality", ff->gopher_quality, "Gopher quality rules (datatrove defaults)");
  filter->add_flag("--gopher-repetition", ff->gopher_repetition, "Gopher repetition rules (datatrove defaults)");
  filter->add_flag("--c4", ff->c4, "C4 rules (datatrove defaults; rewrites the text to its kept lines)");
  filter->add_option("--min-chars", ff->min_chars, "Fewest characters")->check(CLI::NonNegativeNumber);
  filter->add_option("--max-chars", ff->max_chars, "Most characters")->check(CLI::NonNegativeNumber);
  filter->add_option("--min-words", ff->min_words, "Fewest words")->check(CLI::NonNegativeNumber);
  filter->add_option("--max-words", ff->max_words, "Most words")->check(CLI::NonNegativeNumber);
  filter->add_option("--min-tokens", ff->min_tokens, "Fewest tokens of --tokenizer's model")->check(CLI::NonNegativeNumber);
  filter->add_option("--max-tokens", ff->max_tokens, "Most tokens of --tokenizer's model")->check(CLI::NonNegativeNumber);
  filter->add_option("--tokenizer", ff->tokenizer, "Model whose tokenizer counts tokens: a GGUF file or a registered model");
  filter->add_option("--lang", ff->languages, "Allowed languages, CLD2 codes (en,fr,...)")->delimiter(',');
  ff->confidence_opt = filter
                           ->add_option("--lang-min-confidence", ff->language_confidence,
                                        "Least share of the text in the detected language")
                           ->check(CLI::Range(0.0, 1.0))
                           ->capture_default_str();
  filter->add_flag("--annotate-language", ff->annotate_language, "Add language and language_score fields");
  filter->callback([&ctx, &outcome, ff] { outcome = run_filter(ctx, *ff); });

  auto sf = std::make_shared<SplitFlags>();
  auto* split = data_cmd->add_subcommand(
      "split",
      "Split records into train / validation / test files by a hash of a key field (or the whole record): the same "
      "record always lands in the same split");
  add_step_io_flags(split, sf->io, false);
  split->add_option("--out-dir", sf->out_dir, "Folder for one file per split (NAME.jsonl)")->required();
  split->add_option("--ratios", sf->ratios, "Share of each split, summing to 1")->delimiter(',')->capture_default_str();
  split->add_option("--names", sf->names, "Split names, one per ratio")->delimiter(',')->capture_default_str();
  split->add_option("--key", sf->key, "Field whose value decides the split (default: the whole record)");
  split->add_option("--seed", sf->seed, "Seed of the hash")->capture_default_str();
  split->add_option("--tag-field", sf->tag_field, "Also write the split name into this field");
  split->callback([&ctx, &outcome, sf] { outcome = run_split(ctx, *sf); });

  auto fmt = std::make_shared<FormatFlags>();
  auto* format = data_cmd->add_subcommand(
      "format",
      "Turn records into fine-tuning examples: prompt/response pairs or chat messages, from templates naming fields "
      "({field}); counts records lacking a field");
  add_step_io_flags(format, fmt->io, true);
  format
      ->add_option("--template", fmt->templates,
                   "ROLE=TEXT, ROLE one of prompt, response (pairs) or system, user, assistant (chat); "
                   "e.g. --template 'prompt=Summarise:\\n{text}' --template 'response={summary}'")
      ->required();
  format->add_option("--style", fmt->style, "prompt_response or chat (default: from the roles)")
      ->check(CLI::IsMember({"prompt_response", "chat"}));
  format->add_option("--keep", fmt->keep_fields, "Input fields copied to the output (id,source)")->delimiter(',');
  format->callback([&ctx, &outcome, fmt] { outcome = run_format(ctx, *fmt); });

  auto rf = std::make_shared<RunFlags>();
  auto* run = data_cmd->add_subcommand(
      "run",
      "Run a recipe (YAML: a list of steps and their parameters) over a file in one streaming pass (near dedup "
      "takes its own); prints per-step counts. An --out with {split} writes one file per split");
  run->add_option("recipe", rf->recipe, "The recipe, a YAML file")->required();
  add_step_io_flags(run, rf->io, false);
  run->add_option("--out", rf->io.output,
                  "Output, format and compression from its extension (optional with --name: then the records are "
                  "kept in the artifact store only)");
  run->add_option("--name", rf->name,
                  "Record the output as a new version of this dataset (with the recipe, and an --in given as "
                  "NAME@VERSION as its parent); overrides the recipe's dataset: key");
  run->callback([&ctx, &outcome, rf] { outcome = run_recipe(ctx, *rf); });
  run->footer("--in may name a dataset version (NAME@VERSION) instead of a file.\n" + step_reference());
  add_dataset_commands(data_cmd, ctx, outcome);
  filter->footer(step_reference({"length", "language", "gopher_quality", "gopher_repetition", "c4"}));
}

}  // namespace keel::cli

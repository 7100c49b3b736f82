// `keel data dedup` and `keel data pii`: thin wrappers over keel/data (dedup.h, pii.h)
// that parse flags, show progress on stderr and print a summary (or --json).
#include <sys/stat.h>

#include <cstdio>

#include "keel/cli/commands.h"
#include "keel/data/dedup.h"
#include "keel/data/pii.h"

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
                        {"threshold", o.minhash.threshold}};
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
    std::printf("; %s without a string \"%s\" field (copied unchanged)", human_count(s.records_without_field).c_str(),
                o.field.c_str());
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
  auto* data_cmd = app.add_subcommand("data", "Prepare training data: remove duplicates, redact personal data");
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
}

}  // namespace keel::cli

// `keel data import|list|show|diff|export|profile`: dataset versions (keel/datasets)
// and profiles (keel/data/dataset_profile.h) from the command line. Thin: parse flags,
// call the registry or the profiler, print (or --json).
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "keel/cli/commands.h"
#include "keel/cli/dataset_inputs.h"
#include "keel/cli/model_files.h"
#include "keel/data/profile_report.h"
#include "keel/datasets/dataset_diff.h"

namespace keel::cli {
namespace {

uint64_t size_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void print_ordered(const data::ProfileJson& value) {
  std::cout << value.dump(2) << "\n";
  std::cout.flush();
}

void warn_first_rejections(const std::vector<data::Rejection>& first, uint64_t total) {
  for (const auto& r : first) {
    std::fprintf(stderr, "keel: warning: %s line %llu: %s (record skipped)\n", r.file.c_str(),
                 static_cast<unsigned long long>(r.line), r.reason.c_str());
  }
  if (total > first.size()) {
    std::fprintf(stderr, "keel: warning: ... and %llu more malformed records skipped\n",
                 static_cast<unsigned long long>(total - first.size()));
  }
}

std::string pct(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", share * 100);
  return buf;
}

double number(const data::ProfileJson& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

// A few lines that say what a profile found; --json and --html give everything.
void print_profile_summary(const data::ProfileJson& p) {
  std::printf("%s records", human_count(static_cast<uint64_t>(number(p, "records"))).c_str());
  if (p.value("text_field", data::ProfileJson()).is_string()) {
    std::printf("; text field \"%s\"", p["text_field"].get<std::string>().c_str());
  }
  std::printf("\n  %-20s %-8s %9s %9s %9s %24s\n", "field", "type", "missing", "null", "empty", "chars p50/p90/max");
  for (const auto& f : p.value("fields", data::ProfileJson::array())) {
    std::string lengths;
    if (f.contains("lengths")) {
      const auto& c = f["lengths"]["chars"];
      const auto& q = c["percentiles"];
      lengths = std::to_string(q.value("p50", 0)) + "/" + std::to_string(q.value("p90", 0)) + "/" +
                std::to_string(c.value("max", 0));
    }
    std::string name = f.value("name", "");
    if (f.contains("categorical")) name += " (" + std::to_string(f["categorical"].value("distinct", 0)) + " values)";
    std::printf("  %-20s %-8s %9s %9s %9s %24s\n", name.c_str(), f.value("type", "").c_str(),
                human_count(f.value("missing", uint64_t{0})).c_str(), human_count(f.value("null", uint64_t{0})).c_str(),
                human_count(f.value("empty", uint64_t{0})).c_str(), lengths.c_str());
  }
  if (!p.value("text_field", data::ProfileJson()).is_string()) return;
  std::string langs;
  int shown = 0;
  for (const auto& l : p["languages"]["mix"]) {
    if (shown++ == 5) break;
    langs += (langs.empty() ? "" : ", ") + l.value("code", "") + " " + pct(number(l, "share"));
  }
  std::printf("languages: %s\n", langs.c_str());
  const auto& d = p["duplicates"];
  std::printf("duplicates: exact %s, near %s in %s clusters\n", pct(number(d["exact"], "rate")).c_str(),
              pct(number(d["near"], "rate")).c_str(),
              human_count(static_cast<uint64_t>(number(d["near"], "clusters"))).c_str());
  std::string pii;
  for (const auto& [type, n] : p["pii"]["by_type"].items()) {
    if (n.get<uint64_t>() > 0) pii += (pii.empty() ? "" : ", ") + type + " " + human_count(n.get<uint64_t>());
  }
  std::printf("pii: %s records (%s)\n", pct(number(p["pii"], "rate")).c_str(), pii.empty() ? "none" : pii.c_str());
  std::string quality;
  for (const auto& [name, q] : p["quality"].items()) {
    quality += (quality.empty() ? "" : ", ") + name + " " + pct(number(q, "rate"));
  }
  std::printf("would remove at defaults: %s\n", quality.empty() ? "not computed (--no-quality)" : quality.c_str());
  std::fflush(stdout);
}

Result<std::unique_ptr<datasets::DatasetRegistry>> open_registry(CliContext& ctx) {
  KEEL_ASSIGN_OR_RETURN(store::Db* db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore* blobs, ctx.artifacts());
  return std::make_unique<datasets::DatasetRegistry>(*db, *blobs);
}

struct ImportFlags {
  std::string file;
  std::string name;
  std::string format;
  std::string field = "text";
  std::string profile_field;
  std::vector<std::string> parents;
  double max_record_mib = 64;
};

Status run_import(CliContext& ctx, ImportFlags& f) {
  if (!is_regular_file(f.file)) return not_found("import " + f.file + ": no such file");
  datasets::NewDatasetVersion spec;
  spec.name = f.name;
  spec.source = "import " + std::filesystem::path(f.file).filename().string();
  spec.details = {{"input", f.file}};
  spec.read.format = f.format;
  spec.read.text_field = f.field;
  if (!(f.max_record_mib > 0) || f.max_record_mib > 4096) {
    return invalid_argument("--max-record-mib must be between 0 and 4096");
  }
  spec.read.max_record_bytes = static_cast<size_t>(f.max_record_mib * 1024 * 1024);
  spec.text_field = f.profile_field;
  for (const auto& p : f.parents) {
    KEEL_ASSIGN_OR_RETURN(datasets::DatasetReference ref, datasets::parse_dataset_reference(p));
    spec.parents.push_back(ref);
  }
  KEEL_ASSIGN_OR_RETURN(datasets::CreatedDataset created, record_dataset_version(ctx, f.file, std::move(spec)));
  if (ctx.json()) {
    data::ProfileJson out = datasets::to_json(created.version);
    out.erase("profile");
    out["created"] = created.created;
    out["rejected"] = created.rejected;
    print_ordered(out);
  }
  return Status::Ok();
}

Status run_list(CliContext& ctx, const std::string& name) {
  KEEL_ASSIGN_OR_RETURN(auto registry, open_registry(ctx));
  if (name.empty()) {
    KEEL_ASSIGN_OR_RETURN(auto list, registry->list());
    if (ctx.json()) {
      data::ProfileJson out = data::ProfileJson::array();
      for (const auto& s : list) out.push_back(datasets::to_json(s));
      print_ordered(out);
      return Status::Ok();
    }
    if (list.empty()) {
      std::printf("no datasets yet (keel data import FILE --name NAME, or keel data run RECIPE --name NAME)\n");
      return Status::Ok();
    }
    std::printf("%-32s %8s %10s %-16s %s\n", "NAME", "VERSIONS", "RECORDS", "SHA256", "UPDATED");
    for (const auto& s : list) {
      std::printf("%-32s %8lld %10s %-16s %s\n", s.name.c_str(), static_cast<long long>(s.versions),
                  human_count(s.latest_records).c_str(), s.latest_sha256.substr(0, 12).c_str(),
                  format_time(s.updated_at).c_str());
    }
    return Status::Ok();
  }
  KEEL_ASSIGN_OR_RETURN(auto versions, registry->versions(name));
  if (ctx.json()) {
    data::ProfileJson out = data::ProfileJson::array();
    for (const auto& v : versions) out.push_back(datasets::to_json(v));
    print_ordered(out);
    return Status::Ok();
  }
  std::printf("%-24s %10s %-14s %-24s %-20s %s\n", "VERSION", "RECORDS", "SHA256", "PARENTS", "CREATED", "SOURCE");
  for (const auto& v : versions) {
    std::string parents;
    for (const auto& p : v.parents) parents += (parents.empty() ? "" : ",") + p.to_string();
    std::printf("%-24s %10s %-14s %-24s %-20s %s\n", v.reference().c_str(), human_count(v.record_count).c_str(),
                v.content_sha256.substr(0, 12).c_str(), parents.empty() ? "-" : parents.c_str(),
                format_time(v.created_at).c_str(), v.source.c_str());
  }
  return Status::Ok();
}

Status run_show(CliContext& ctx, const std::string& reference) {
  KEEL_ASSIGN_OR_RETURN(auto registry, open_registry(ctx));
  KEEL_ASSIGN_OR_RETURN(datasets::DatasetVersion v, registry->resolve(reference, true));
  KEEL_ASSIGN_OR_RETURN(auto children, registry->children(v));
  if (ctx.json()) {
    data::ProfileJson out = datasets::to_json(v);
    data::ProfileJson kids = data::ProfileJson::array();
    for (const auto& c : children) kids.push_back(c.to_string());
    out["children"] = kids;
    print_ordered(out);
    return Status::Ok();
  }
  std::printf("%s\n  content sha256  %s\n  records         %s (%s of JSONL)\n  source          %s\n",
              v.reference().c_str(), v.content_sha256.c_str(), human_count(v.record_count).c_str(),
              human_bytes(v.size_bytes).c_str(), v.source.c_str());
  std::string parents, kids, schema;
  for (const auto& p : v.parents) parents += (parents.empty() ? "" : ", ") + p.to_string();
  for (const auto& c : children) kids += (kids.empty() ? "" : ", ") + c.to_string();
  for (const auto& f : v.schema) schema += (schema.empty() ? "" : ", ") + f.value("name", "") + ": " + f.value("type", "");
  std::printf("  parents         %s\n  children        %s\n  schema          %s\n  made by         Keel %s, %s, %s\n",
              parents.empty() ? "-" : parents.c_str(), kids.empty() ? "-" : kids.c_str(), schema.c_str(),
              v.keel_version.c_str(), v.user_id.c_str(), format_time(v.created_at).c_str());
  if (!v.recipe.empty()) {
    std::printf("  recipe:\n");
    size_t start = 0;
    while (start < v.recipe.size()) {
      size_t end = v.recipe.find('\n', start);
      if (end == std::string::npos) end = v.recipe.size();
      std::printf("    %s\n", v.recipe.substr(start, end - start).c_str());
      start = end + 1;
    }
  }
  std::printf("profile: ");
  print_profile_summary(v.profile);
  return Status::Ok();
}

struct DiffFlags {
  std::string from, to;
  std::string key;
  CLI::Option* key_opt = nullptr;
  double near_threshold = 0.7;
};

Status run_diff(CliContext& ctx, DiffFlags& f) {
  KEEL_ASSIGN_OR_RETURN(auto registry, open_registry(ctx));
  datasets::DiffOptions options;
  options.cache_dir = dataset_cache_dir(ctx);
  if (f.key_opt->count() > 0) options.key = f.key;
  options.near_threshold = f.near_threshold;
  KEEL_ASSIGN_OR_RETURN(datasets::DatasetVersion from, registry->resolve(f.from));
  KEEL_ASSIGN_OR_RETURN(datasets::DatasetVersion to, registry->resolve(f.to));
  ProgressBar bar("diff", from.record_count + to.record_count);
  options.progress = [&bar](uint64_t records) { bar.update(records); };
  auto diffed = datasets::diff_datasets(*registry, f.from, f.to, options);
  bar.finish();
  if (!diffed.ok()) return diffed.status();
  const datasets::DatasetDiff& d = *diffed;
  if (ctx.json()) {
    print_ordered(datasets::to_json(d));
    return Status::Ok();
  }
  std::printf("%s (%s records) -> %s (%s records), %s\n", d.from.c_str(), human_count(d.from_records).c_str(),
              d.to.c_str(), human_count(d.to_records).c_str(),
              d.key.empty() ? (d.near_threshold > 0 ? "whole records compared, changed ones paired by near-duplicate text"
                                                    : "whole records compared")
                            : ("matched by " + d.key).c_str());
  if (!d.near_skipped.empty()) std::printf("  (no near-duplicate pairing: %s)\n", d.near_skipped.c_str());
  std::printf("  added %s, removed %s, changed %s, unchanged %s\n", human_count(d.added).c_str(),
              human_count(d.removed).c_str(), human_count(d.changed).c_str(), human_count(d.unchanged).c_str());
  auto show = [](const char* what, const std::vector<datasets::RecordExample>& list) {
    for (const auto& e : list) {
      std::printf("  %s line %llu: %s\n", what, static_cast<unsigned long long>(e.line), e.json.c_str());
    }
  };
  show("+", d.added_examples);
  show("-", d.removed_examples);
  show("~", d.changed_examples);
  if (!d.profile.empty()) {
    std::printf("profile changes:\n");
    for (const auto& p : d.profile) {
      std::printf("  %-40s %12.4g -> %-12.4g (%+.4g)\n", p.metric.c_str(), p.from, p.to, p.to - p.from);
    }
  }
  std::fflush(stdout);
  return Status::Ok();
}

struct ExportFlags {
  std::string reference;
  std::string out;
  std::string format;
  std::string field = "text";
};

Status run_export(CliContext& ctx, ExportFlags& f) {
  KEEL_ASSIGN_OR_RETURN(auto registry, open_registry(ctx));
  KEEL_ASSIGN_OR_RETURN(datasets::LocalDataset local, registry->local_file(f.reference, dataset_cache_dir(ctx)));
  data::ReadOptions read;
  read.format = "jsonl";
  KEEL_ASSIGN_OR_RETURN(auto reader, data::RecordReader::open(local.path, read));
  data::WriteOptions write;
  write.format = f.format;
  write.text_field = f.field;
  KEEL_ASSIGN_OR_RETURN(auto writer, data::RecordWriter::open(f.out, write));
  ProgressBar bar("export", size_of(local.path));
  data::Record record;
  uint64_t n = 0;
  while (true) {
    auto more = reader->next(&record);
    if (!more.ok()) return more.status();
    if (!*more) break;
    Status st = writer->writes_raw_json() ? writer->write_raw_json(reader->raw_json()) : writer->write(record);
    if (!st.ok()) return st.with_context("export " + local.version.reference() + " record " + std::to_string(n + 1));
    if ((++n & 1023) == 0) bar.update(reader->file_bytes_read(), n, "records");
  }
  KEEL_RETURN_IF_ERROR(writer->close());
  bar.finish();
  if (ctx.json()) {
    print_ordered({{"reference", local.version.reference()},
                   {"content_sha256", local.version.content_sha256},
                   {"records", n},
                   {"out", f.out}});
    return Status::Ok();
  }
  std::printf("wrote %s records of %s -> %s\n", human_count(n).c_str(), local.version.reference().c_str(),
              f.out.c_str());
  return Status::Ok();
}

struct ProfileFlags {
  std::string input;
  std::string format;
  std::string field;
  std::string html;
  std::string model;
  double max_record_mib = 64;
  size_t threads = 0;
  bool no_quality = false;
};

Status run_profile(CliContext& ctx, ProfileFlags& f) {
  KEEL_ASSIGN_OR_RETURN(DataInput input, resolve_data_input(ctx, f.input));
  data::ProfileJson profile;
  std::string title = "Profile of " + f.input;
  if (input.dataset && f.model.empty() && f.field.empty() && !f.no_quality) {
    // The version's stored profile: the same function over the same records.
    KEEL_ASSIGN_OR_RETURN(auto registry, open_registry(ctx));
    KEEL_ASSIGN_OR_RETURN(datasets::DatasetVersion v, registry->get(input.dataset->name, input.dataset->version, true));
    profile = v.profile;
    title = "Profile of " + v.reference();
  } else {
    data::ProfileFileOptions o;
    o.read.format = f.format.empty() ? input.format : f.format;
    if (!(f.max_record_mib > 0) || f.max_record_mib > 4096) {
      return invalid_argument("--max-record-mib must be between 0 and 4096");
    }
    o.read.max_record_bytes = static_cast<size_t>(f.max_record_mib * 1024 * 1024);
    o.profile.text_field = f.field;
    o.profile.threads = f.threads;
    o.profile.quality_rules = !f.no_quality;
    LoadedModel model;
    if (!f.model.empty()) {
      KEEL_ASSIGN_OR_RETURN(model, load_model(ctx, f.model, false));
      const engine::Tokenizer* tokenizer = model.tokenizer.get();
      o.profile.count_tokens = [tokenizer](std::string_view text) -> Result<size_t> {
        KEEL_ASSIGN_OR_RETURN(auto ids, tokenizer->encode(text, false, false));
        return ids.size();
      };
      o.profile.tokenizer = f.model;
    }
    ProgressBar bar("profile", size_of(input.path));
    o.progress = [&bar](uint64_t bytes, uint64_t records) { bar.update(bytes, records, "records"); };
    auto result = data::profile_file(input.path, std::move(o));
    bar.finish();
    if (!result.ok()) return result.status();
    warn_first_rejections(result->first_rejections, result->rejected);
    profile = std::move(result->profile);
    if (result->rejected > 0) profile["rejected"] = result->rejected;
    double mb = static_cast<double>(result->input_bytes) / 1e6;
    if (!ctx.json()) {
      std::fprintf(stderr, "profiled %.1f MB in %.2f s (%.1f MB/s)\n", mb, result->seconds,
                   result->seconds > 0 ? mb / result->seconds : 0.0);
    }
  }
  if (!f.html.empty()) {
    std::ofstream out(f.html, std::ios::binary | std::ios::trunc);
    out << data::profile_html(profile, title);
    out.close();
    if (!out) return unavailable("--html " + f.html + ": cannot write it");
  }
  if (ctx.json()) {
    print_ordered(profile);
    return Status::Ok();
  }
  print_profile_summary(profile);
  if (!f.html.empty()) std::printf("report -> %s\n", f.html.c_str());
  return Status::Ok();
}

}  // namespace

std::string dataset_cache_dir(CliContext& ctx) { return ctx.options().home + "/datasets"; }

Result<DataInput> resolve_data_input(CliContext& ctx, const std::string& argument) {
  DataInput input;
  if (is_regular_file(argument)) {
    input.path = argument;
    return input;
  }
  auto ref = datasets::parse_dataset_reference(argument);
  if (!ref.ok()) {
    return not_found(argument + ": no such file, and not a dataset reference (" + ref.status().message() + ")");
  }
  KEEL_ASSIGN_OR_RETURN(auto registry, open_registry(ctx));
  auto local = registry->local_file(argument, dataset_cache_dir(ctx));
  if (!local.ok()) {
    if (local.status().code() == ErrorCode::kNotFound) {
      return not_found(argument + ": no such file, and " + local.status().message());
    }
    return local.status();
  }
  input.path = local->path;
  input.format = "jsonl";
  input.dataset = std::move(local->version);
  return input;
}

Result<datasets::CreatedDataset> record_dataset_version(CliContext& ctx, const std::string& file,
                                                        datasets::NewDatasetVersion spec) {
  KEEL_ASSIGN_OR_RETURN(auto registry, open_registry(ctx));
  ProgressBar bar("dataset " + spec.name, size_of(file));
  spec.progress = [&bar](uint64_t bytes, uint64_t records) { bar.update(bytes, records, "records"); };
  auto created = registry->create_from_file(file, spec, ctx.actor());
  bar.finish();
  if (!created.ok()) return created.status();
  warn_first_rejections(created->first_rejections, created->rejected);
  if (!ctx.json()) std::printf("%s\n", describe_created(*created).c_str());
  return created;
}

std::string describe_created(const datasets::CreatedDataset& c) {
  const datasets::DatasetVersion& v = c.version;
  std::string facts = human_count(v.record_count) + " records, sha256 " + v.content_sha256.substr(0, 12);
  if (!c.created) return "unchanged: " + v.reference() + " already holds this content (" + facts + ")";
  std::string parents;
  for (const auto& p : v.parents) parents += (parents.empty() ? "" : ", ") + p.to_string();
  return "recorded " + v.reference() + " (" + facts + (parents.empty() ? "" : "; parents " + parents) + ")";
}

void add_dataset_commands(CLI::App* data_cmd, CliContext& ctx, Status& outcome) {
  auto im = std::make_shared<ImportFlags>();
  auto* import = data_cmd->add_subcommand(
      "import", "Record a file (JSONL, JSON, CSV, TSV or text, optionally .gz/.zst) as a new version of a dataset, "
                "with its profile; identical content is not a new version");
  import->add_option("file", im->file, "The file")->required();
  import->add_option("--name", im->name, "The dataset (letters, digits, '.', '_', '-')")->required();
  import->add_option("--format", im->format, "Input format when the extension does not say")
      ->check(CLI::IsMember({"jsonl", "json", "csv", "tsv", "text"}));
  import->add_option("--field", im->field, "The field a plain-text line becomes")->capture_default_str();
  import->add_option("--profile-field", im->profile_field,
                     "The text field the profile analyses (default: text, else the longest string field)");
  import->add_option("--parent", im->parents, "A dataset version this one derives from (NAME@VERSION); repeatable");
  import->add_option("--max-record-mib", im->max_record_mib, "Largest record accepted, in MiB")->capture_default_str();
  import->callback([&ctx, &outcome, im] { outcome = run_import(ctx, *im); });

  auto list_name = std::make_shared<std::string>();
  auto* list = data_cmd->add_subcommand("list", "List datasets, or the versions of one");
  list->add_option("name", *list_name, "A dataset: list its versions");
  list->callback([&ctx, &outcome, list_name] { outcome = run_list(ctx, *list_name); });

  auto show_ref = std::make_shared<std::string>();
  auto* show = data_cmd->add_subcommand(
      "show", "Show a dataset version: content hash, records, schema, source, recipe, parents and children, profile");
  show->add_option("dataset", *show_ref, "NAME@VERSION, or NAME for the latest")->required();
  show->callback([&ctx, &outcome, show_ref] { outcome = run_show(ctx, *show_ref); });

  auto df = std::make_shared<DiffFlags>();
  auto* diff = data_cmd->add_subcommand(
      "diff", "Compare two dataset versions: records added, removed and changed, and the profile's changes");
  diff->add_option("from", df->from, "NAME@VERSION")->required();
  diff->add_option("to", df->to, "NAME@VERSION")->required();
  df->key_opt = diff->add_option("--key", df->key,
                                 "Field that identifies a record (default: id when both have it; '' for whole records)");
  diff->add_option("--near-threshold", df->near_threshold,
                   "Whole records: a removed and an added record whose texts reach this estimated Jaccard "
                   "similarity (MinHash) count as one changed record; 0 turns the pairing off")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  diff->callback([&ctx, &outcome, df] { outcome = run_diff(ctx, *df); });

  auto ex = std::make_shared<ExportFlags>();
  auto* exp = data_cmd->add_subcommand("export", "Write a dataset version's records to a file in any output format");
  exp->add_option("dataset", ex->reference, "NAME@VERSION, or NAME for the latest")->required();
  exp->add_option("--out", ex->out, "Output; format and compression from its extension")->required();
  exp->add_option("--format", ex->format, "Output format when the extension does not say")
      ->check(CLI::IsMember({"jsonl", "json", "csv", "tsv", "text"}));
  exp->add_option("--field", ex->field, "The field a text output writes per line")->capture_default_str();
  exp->callback([&ctx, &outcome, ex] { outcome = run_export(ctx, *ex); });

  auto pf = std::make_shared<ProfileFlags>();
  auto* profile = data_cmd->add_subcommand(
      "profile",
      "Profile a file or dataset version in one pass: fields, lengths, categories, languages, duplicates, PII, "
      "quality-rule hit rates, outliers; --html writes a standalone report");
  profile->add_option("input", pf->input, "A file, or NAME@VERSION")->required();
  profile->add_option("--format", pf->format, "Input format when the extension does not say")
      ->check(CLI::IsMember({"jsonl", "json", "csv", "tsv", "text"}));
  profile->add_option("--field", pf->field, "The text field to analyse (default: text, else the longest string field)");
  profile->add_option("--html", pf->html, "Also write the report as one HTML file (inline SVG charts, no scripts)");
  profile->add_option("--model", pf->model, "Token lengths with this model's tokenizer (a GGUF path or NAME[@VERSION])");
  profile->add_option("--max-record-mib", pf->max_record_mib, "Largest record accepted, in MiB")->capture_default_str();
  profile->add_option("--threads", pf->threads, "Threads for the per-text analyses (0: one per core)")
      ->check(CLI::Range(0, 1024));
  profile->add_flag("--no-quality", pf->no_quality,
                    "Leave out the Gopher and C4 hit rates (most of the time a profile takes)");
  profile->callback([&ctx, &outcome, pf] { outcome = run_profile(ctx, *pf); });
}

}  // namespace keel::cli

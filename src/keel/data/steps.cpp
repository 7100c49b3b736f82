#include "keel/data/steps.h"

#include "keel/data/c4_quality_filter.h"
#include "keel/data/exact_dedup_operator.h"
#include "keel/data/format_operator.h"
#include "keel/data/gopher_quality_filter.h"
#include "keel/data/gopher_repetition_filter.h"
#include "keel/data/language_filter.h"
#include "keel/data/length_filter.h"
#include "keel/data/normalize_operator.h"
#include "keel/data/pii_operator.h"
#include "keel/data/split_operator.h"

namespace keel::data {
namespace {

// Duplicate removal as a step: exact (streaming) or near (MinHash, own passes).
struct DedupStepOptions {
  std::string field = "text";
  bool near = false;
  std::string preset = "datatrove";
  std::string shingles;  // "words" or "chars"; empty: the preset's
  int64_t ngram = 0;     // 0: the preset's
  int64_t num_perm = 0;
  int64_t bands = 0;
  double threshold = -1;  // -1: the preset's
  int64_t seed = 1;
  int64_t threads = 0;

  void describe(ParamSet* p) {
    p->add("field", &field, "The text field");
    p->add("near", &near, "Near-duplicates (MinHash LSH) instead of exact matches");
    p->add("preset", &preset, "MinHash defaults: datatrove or nemo");
    p->add("shingles", &shingles, "words or chars (empty: the preset's)");
    p->add("ngram", &ngram, "Shingle size (0: the preset's)");
    p->add("num_perm", &num_perm, "Permutations, a multiple of bands (0: the preset's)");
    p->add("bands", &bands, "LSH bands (0: the preset's)");
    p->add("threshold", &threshold, "Estimated Jaccard similarity to join candidates (-1: the preset's)");
    p->add("seed", &seed, "Seed of the MinHash permutations");
    p->add("threads", &threads, "Signature threads (0: one per core)");
  }

  Result<MinHashConfig> minhash() const {
    KEEL_ASSIGN_OR_RETURN(MinHashConfig c, minhash_preset(preset));
    if (shingles == "chars") {
      c.char_ngrams = true;
    } else if (shingles == "words") {
      c.char_ngrams = false;
    } else if (!shingles.empty()) {
      return invalid_argument("shingles must be words or chars, not \"" + shingles + "\"");
    }
    if (ngram < 0 || ngram > 1000) return invalid_argument("ngram must be in 1..1000");
    if (ngram > 0) c.ngram = static_cast<int>(ngram);
    int perms = num_perm > 0 ? static_cast<int>(num_perm) : c.num_perm();
    int b = bands > 0 ? static_cast<int>(bands) : c.bands;
    if (num_perm < 0 || bands < 0 || perms > 4096 || b > 4096 || perms % b != 0) {
      return invalid_argument("num_perm (" + std::to_string(perms) + ") must be a positive multiple of bands (" +
                              std::to_string(b) + ")");
    }
    c.bands = b;
    c.rows = perms / b;
    if (threshold > 1) return invalid_argument("threshold must be at most 1");
    if (threshold >= 0) c.threshold = threshold;
    if (seed < 0) return invalid_argument("seed must be 0 or more");
    c.seed = static_cast<uint64_t>(seed);
    KEEL_RETURN_IF_ERROR(c.validate());
    return c;
  }
};

template <typename Options>
Result<Options> configure(const std::string& default_field, const ParamSetter& set, ParamSet* params,
                          Options* options) {
  if constexpr (requires { options->field; }) options->field = default_field;
  options->describe(params);
  if (set) KEEL_RETURN_IF_ERROR(set(*params));
  return *options;
}

// Builds Options (defaults, field, then the caller's settings) and the operator Op.
template <typename Options, typename Op>
Result<PipelineStep> make(std::string_view type, const std::string& default_field, const ParamSetter& set) {
  Options options;
  ParamSet params;
  KEEL_RETURN_IF_ERROR(configure(default_field, set, &params, &options).status());
  PipelineStep step;
  step.type = std::string(type);
  step.params = params.to_json();
  KEEL_ASSIGN_OR_RETURN(auto op, Op::create(options));
  step.op = std::move(op);
  return step;
}

Result<PipelineStep> make_dedup(const std::string& default_field, const ParamSetter& set) {
  DedupStepOptions options;
  ParamSet params;
  KEEL_RETURN_IF_ERROR(configure(default_field, set, &params, &options).status());
  PipelineStep step;
  step.type = "dedup";
  step.params = params.to_json();
  if (!options.near) {
    step.op = std::make_unique<ExactDedupOperator>(options.field);
    return step;
  }
  DedupOptions d;
  d.field = options.field;
  d.near = true;
  if (options.threads < 0 || options.threads > 1024) return invalid_argument("threads must be in 0..1024");
  d.threads = static_cast<int>(options.threads);
  KEEL_ASSIGN_OR_RETURN(d.minhash, options.minhash());
  step.near_dedup = d;
  return step;
}

Status cancelled_build() {
  return failed_precondition("parameters listed; step not built");
}

}  // namespace

const std::vector<std::string>& step_types() {
  static const std::vector<std::string> kTypes = {
      "normalize", "length", "language", "gopher_quality", "gopher_repetition",
      "c4",        "dedup",  "pii",      "split",          "format"};
  return kTypes;
}

Result<PipelineStep> build_step(std::string_view type, const std::string& default_field, const ParamSetter& set) {
  if (type == "normalize") return make<NormalizeOptions, NormalizeOperator>(type, default_field, set);
  if (type == "length") return make<LengthFilterOptions, LengthFilter>(type, default_field, set);
  if (type == "language") return make<LanguageFilterOptions, LanguageFilter>(type, default_field, set);
  if (type == "gopher_quality") return make<GopherQualityOptions, GopherQualityFilter>(type, default_field, set);
  if (type == "gopher_repetition") {
    return make<GopherRepetitionOptions, GopherRepetitionFilter>(type, default_field, set);
  }
  if (type == "c4") return make<C4QualityOptions, C4QualityFilter>(type, default_field, set);
  if (type == "pii") return make<PiiStepOptions, PiiOperator>(type, default_field, set);
  if (type == "split") return make<SplitOptions, SplitOperator>(type, default_field, set);
  if (type == "format") return make<FormatOptions, FormatOperator>(type, default_field, set);
  if (type == "dedup") return make_dedup(default_field, set);
  std::string known;
  for (const auto& t : step_types()) known += (known.empty() ? "" : ", ") + t;
  return invalid_argument("unknown step \"" + std::string(type) + "\" (steps: " + known + ")");
}

Result<std::vector<std::pair<std::string, std::string>>> step_parameters(std::string_view type) {
  std::vector<std::pair<std::string, std::string>> out;
  // The setter stops the build once it has seen the parameters, so no operator is
  // made (some compile patterns at creation).
  auto collect = [&out](const ParamSet& params) {
    for (const auto& p : params.params()) out.emplace_back(p.name, p.help);
    return cancelled_build();
  };
  auto step = build_step(type, "text", collect);
  if (out.empty()) return step.status();
  return out;
}

}  // namespace keel::data

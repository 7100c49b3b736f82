#include "keel/data/dataset_profile.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "keel/data/c4_quality_filter.h"
#include "keel/data/english_words.h"
#include "keel/data/gopher_quality_filter.h"
#include "keel/data/gopher_repetition_filter.h"
#include "keel/data/hash.h"
#include "keel/data/language_filter.h"
#include "keel/data/minhash.h"
#include "keel/data/pii.h"
#include "keel/data/record_text.h"
#include "keel/data/unicode_text.h"
#include "keel/util/thread_pool.h"

namespace keel::data {
namespace {

constexpr uint64_t kMaxCategories = 1000;
constexpr size_t kMaxCategoryValueBytes = 256;
constexpr size_t kRepetitionMinWords = 20;
const char* const kQualitySteps[] = {"gopher_quality", "gopher_repetition", "c4"};
constexpr size_t kQualityCount = 3;

std::string_view json_type(const Record& value) {
  switch (value.type()) {
    case Record::value_t::null:
      return "null";
    case Record::value_t::boolean:
      return "boolean";
    case Record::value_t::number_integer:
    case Record::value_t::number_unsigned:
      return "integer";
    case Record::value_t::number_float:
      return "number";
    case Record::value_t::string:
      return "string";
    case Record::value_t::array:
      return "array";
    default:
      return "object";
  }
}

// Code points and words (Python's str.split()) of a text, in one pass.
void count_chars_words(std::string_view text, uint64_t* chars, uint64_t* words) {
  uint64_t c = 0, w = 0;
  bool in_word = false;
  size_t pos = 0;
  while (pos < text.size()) {
    unsigned char byte = static_cast<unsigned char>(text[pos]);
    bool space;
    if (byte < 0x80) {
      space = byte == ' ' || (byte >= '\t' && byte <= '\r') || (byte >= 0x1c && byte <= 0x1f);
      ++pos;
    } else {
      space = is_python_space(next_code_point(text, &pos));
    }
    ++c;
    if (!space && !in_word) ++w;
    in_word = !space;
  }
  *chars = c;
  *words = w;
}

// Distinct chat roles counted by name; the rest are "(other)".
constexpr size_t kMaxChatRoles = 64;

uint32_t clamp32(uint64_t v) { return static_cast<uint32_t>(std::min<uint64_t>(v, UINT32_MAX)); }

std::string preview(std::string_view text, size_t max_chars) {
  size_t pos = 0, n = 0;
  while (pos < text.size() && n < max_chars) {
    next_code_point(text, &pos);
    ++n;
  }
  std::string out(text.substr(0, pos));
  if (pos < text.size()) out += "\u2026";
  return out;
}

// Percentiles (nearest rank) and an equal-width histogram of lengths.
ProfileJson distribution(std::vector<uint32_t>& values, int bins) {
  ProfileJson out = ProfileJson::object();
  out["count"] = values.size();
  if (values.empty()) return out;
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (uint32_t v : values) sum += v;
  uint32_t lo = values.front(), hi = values.back();
  out["min"] = lo;
  out["max"] = hi;
  out["mean"] = sum / static_cast<double>(values.size());
  out["sum"] = sum;
  ProfileJson pct = ProfileJson::object();
  static const std::pair<int, const char*> kPercentiles[] = {{5, "p5"},   {25, "p25"}, {50, "p50"}, {75, "p75"},
                                                              {90, "p90"}, {95, "p95"}, {99, "p99"}};
  for (const auto& [p, name] : kPercentiles) {
    size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
    pct[name] = values[rank == 0 ? 0 : rank - 1];
  }
  out["percentiles"] = pct;
  uint64_t span = uint64_t{hi} - lo + 1;
  uint64_t width = std::max<uint64_t>(1, (span + bins - 1) / bins);
  size_t n_bins = static_cast<size_t>((span + width - 1) / width);
  std::vector<uint64_t> counts(n_bins, 0);
  for (uint32_t v : values) ++counts[(v - lo) / width];
  out["histogram"] = {{"from", lo}, {"width", width}, {"counts", counts}};
  return out;
}

struct Example {
  double score = 0;
  uint64_t line = 0;
  uint64_t chars = 0;
  uint64_t words = 0;
  std::string preview;
};

// The k best examples by score (higher first; `lowest` flips it); ties keep the earlier.
class TopExamples {
 public:
  TopExamples(size_t k, bool lowest) : k_(k), lowest_(lowest) {}
  bool wants(double score) const {
    if (items_.size() < k_) return true;
    return better(score, items_.back().score);
  }
  void offer(Example e) {
    if (!wants(e.score)) return;
    auto at = std::find_if(items_.begin(), items_.end(), [&](const Example& x) { return better(e.score, x.score); });
    items_.insert(at, std::move(e));
    if (items_.size() > k_) items_.pop_back();
  }
  ProfileJson to_json(const char* score_name) const {
    ProfileJson out = ProfileJson::array();
    for (const auto& e : items_) {
      ProfileJson j = {{"line", e.line}, {"chars", e.chars}, {"words", e.words}};
      if (score_name != nullptr) j[score_name] = e.score;
      j["preview"] = e.preview;
      out.push_back(std::move(j));
    }
    return out;
  }

 private:
  bool better(double a, double b) const { return lowest_ ? a < b : a > b; }
  size_t k_;
  bool lowest_;
  std::vector<Example> items_;
};

struct FieldStats {
  std::string name;
  uint64_t present = 0;
  uint64_t nulls = 0;
  uint64_t empty = 0;
  std::map<std::string, uint64_t> types;
  std::vector<uint32_t> chars, words, tokens;
  uint64_t numbers = 0;
  double number_min = 0, number_max = 0, number_sum = 0;
  bool tracking_categories = true;
  uint64_t category_values = 0;
  std::unordered_map<std::string, uint64_t> categories;  // a value's JSON text -> count
};

// What the analyses of one text found; computed on any thread, folded in input order.
struct TextFacts {
  LanguageGuess language;
  PiiCounts pii{};
  bool any_pii = false;
  std::string quality[kQualityCount];  // each filter's drop reason; "" when it keeps the text
  bool no_shingles = false;
  std::vector<uint64_t> band_keys;
  double repetition = -1;  // share of repeated word 3-grams; -1: too short to say
};

// One analysing thread's own scratch (a Hyperscan scratch is per thread).
struct Worker {
  std::unique_ptr<PiiScanner> pii;
  std::vector<PiiFinding> findings;
  std::vector<uint64_t> shingles;
  std::vector<uint32_t> signature;
  std::unordered_set<uint64_t> ngrams;
};

}  // namespace

bool is_categorical(uint64_t distinct, uint64_t values) {
  if (values == 0 || distinct == 0) return false;
  if (distinct <= 10) return true;
  return distinct < kMaxCategories && static_cast<double>(distinct) / static_cast<double>(values) <= 0.2;
}

struct DatasetProfiler::State {
  ProfileOptions options;
  bool field_chosen = false;
  std::string text_field;
  uint64_t records = 0;
  std::vector<FieldStats> fields;
  std::unordered_map<std::string, size_t> field_index;
  // Chat records (record_text.h): how many, messages per conversation, messages by role.
  uint64_t chats = 0;
  std::vector<uint32_t> chat_turns;
  std::map<std::string, uint64_t> chat_roles;

  // Shared by the analysing threads; immutable.
  std::unique_ptr<MinHasher> hasher;
  std::shared_ptr<const EnglishWordTokenizer> words;
  GopherQualityOptions gopher_quality;
  GopherRepetitionOptions gopher_repetition;
  C4QualityOptions c4;
  std::vector<Worker> workers;        // one per thread
  std::unique_ptr<ThreadPool> pool;   // null with one thread

  // Folded in input order.
  uint64_t texts = 0;
  uint64_t text_bytes = 0;
  std::map<std::string, uint64_t> languages;
  uint64_t language_unreliable = 0;
  std::unordered_map<uint64_t, uint32_t> exact;  // text hash -> occurrences
  uint64_t exact_duplicates = 0;
  std::unique_ptr<MinHashLsh> lsh;
  std::vector<uint64_t> text_lines;  // line of each text, in LSH index order
  PiiCounts pii_counts{};
  uint64_t pii_records = 0;
  uint64_t quality_removed[kQualityCount] = {};
  std::map<std::string, uint64_t> quality_by_rule[kQualityCount];
  TopExamples longest{3, false}, shortest{3, true}, repetitive{3, false};

  FieldStats& field(const std::string& name) {
    auto it = field_index.find(name);
    if (it != field_index.end()) return fields[it->second];
    field_index.emplace(name, fields.size());
    fields.push_back(FieldStats{});
    fields.back().name = name;
    return fields.back();
  }

  // The per-text analyses: language, PII, quality rules, MinHash band keys, repetition.
  void analyse(const std::string& text, uint64_t word_count, Worker& w, TextFacts* f) const {
    f->language = identify_language(text);
    if (pii_ok(w.pii->find(text, &w.findings))) {
      for (const auto& finding : w.findings) ++f->pii[static_cast<size_t>(finding.type)];
      f->any_pii = !w.findings.empty();
    }
    if (options.quality_rules) {
      std::vector<std::string> tokens = words->words(text);
      f->quality[0] = gopher_quality_reason(text, tokens, gopher_quality);
      f->quality[1] = gopher_repetition_reason(text, tokens, gopher_repetition);
      f->quality[2] = c4_quality(text, c4, *words).reason;
    }
    hasher->shingles(text, &w.shingles);
    f->no_shingles = w.shingles.empty();
    f->band_keys.assign(static_cast<size_t>(hasher->config().bands), 0);
    if (!f->no_shingles) {
      hasher->signature(w.shingles, w.signature.data());
      for (int b = 0; b < hasher->config().bands; ++b) f->band_keys[b] = hasher->band_key(w.signature.data(), b);
    }
    if (word_count >= kRepetitionMinWords) {
      std::vector<std::string_view> split = split_on_space(text);
      w.ngrams.clear();
      for (size_t i = 0; i + 2 < split.size(); ++i) {
        w.ngrams.insert(combine64(combine64(hash_bytes(split[i]), hash_bytes(split[i + 1])), hash_bytes(split[i + 2])));
      }
      f->repetition = 1.0 - static_cast<double>(w.ngrams.size()) / static_cast<double>(split.size() - 2);
    }
  }
  // Hyperscan fails only on a broken scratch; the text then counts no PII.
  static bool pii_ok(const Status& st) { return st.ok(); }
};

DatasetProfiler::DatasetProfiler(std::unique_ptr<State> state) : state_(std::move(state)) {}
DatasetProfiler::~DatasetProfiler() = default;

Result<std::unique_ptr<DatasetProfiler>> DatasetProfiler::create(ProfileOptions options) {
  if (options.histogram_bins < 1 || options.histogram_bins > 1000) {
    return invalid_argument("histogram bins must be between 1 and 1000");
  }
  auto state = std::make_unique<State>();
  state->longest = TopExamples(options.examples, false);
  state->shortest = TopExamples(options.examples, true);
  state->repetitive = TopExamples(options.examples, false);
  size_t threads = options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  state->options = std::move(options);
  MinHashConfig config = datatrove_preset();
  state->hasher = std::make_unique<MinHasher>(config);
  state->lsh = std::make_unique<MinHashLsh>(config);
  KEEL_ASSIGN_OR_RETURN(state->words, EnglishWordTokenizer::create());
  state->workers.resize(threads);
  for (auto& w : state->workers) w.signature.resize(static_cast<size_t>(config.num_perm()));
  if (threads > 1) state->pool = std::make_unique<ThreadPool>(threads);
  if (!state->options.text_field.empty()) {
    state->text_field = state->options.text_field;
    state->field_chosen = true;
  }
  return std::unique_ptr<DatasetProfiler>(new DatasetProfiler(std::move(state)));
}

Status DatasetProfiler::add(const Record& record, uint64_t line) {
  return add_batch(std::span<const Record>(&record, 1), std::span<const uint64_t>(&line, 1));
}

Status DatasetProfiler::add_batch(std::span<const Record> records, std::span<const uint64_t> lines) {
  State& s = *state_;
  if (records.size() != lines.size()) return invalid_argument("add_batch: one line per record");
  struct Text {
    const std::string* text;
    uint64_t line, chars, words;
  };
  std::vector<Text> texts;
  texts.reserve(records.size());
  std::deque<std::string> chat_texts;  // the joined messages of this batch's chats
  std::vector<std::string> roles;
  for (size_t r = 0; r < records.size(); ++r) {
    const Record& record = records[r];
    ++s.records;
    if (!s.field_chosen) {
      s.field_chosen = true;
      auto text = record.find("text");
      if (text != record.end() && text->is_string()) {
        s.text_field = "text";
      } else if (chat_messages(record, kDefaultTextField, &roles)) {
        s.text_field = chat_messages(record, "messages", &roles) ? "messages" : "conversations";
      } else {
        size_t longest = 0;
        for (const auto& [key, value] : record.items()) {
          if (value.is_string() && (s.text_field.empty() || value.get_ref<const std::string&>().size() > longest)) {
            s.text_field = key;
            longest = value.get_ref<const std::string&>().size();
          }
        }
      }
    }
    for (const auto& [key, value] : record.items()) {
      FieldStats& f = s.field(key);
      ++f.present;
      ++f.types[std::string(json_type(value))];
      if (value.is_null()) {
        ++f.nulls;
        continue;
      }
      if (value.is_string() ? value.get_ref<const std::string&>().empty()
                            : (value.is_array() || value.is_object()) && value.empty()) {
        ++f.empty;
      }
      if (value.is_string()) {
        const std::string& str = value.get_ref<const std::string&>();
        uint64_t chars = 0, words = 0;
        count_chars_words(str, &chars, &words);
        f.chars.push_back(clamp32(chars));
        f.words.push_back(clamp32(words));
        if (key == s.text_field) {
          texts.push_back({&str, lines[r], chars, words});
          if (s.options.count_tokens) {
            KEEL_ASSIGN_OR_RETURN(size_t tokens, s.options.count_tokens(str));
            f.tokens.push_back(clamp32(tokens));
          }
        }
      } else if (key == s.text_field && chat_messages(record, key, &roles)) {
        // A chat: its messages' texts, joined, are the record's text.
        std::string joined;
        record_text(record, key, &joined);
        chat_texts.push_back(std::move(joined));
        const std::string& str = chat_texts.back();
        uint64_t chars = 0, words = 0;
        count_chars_words(str, &chars, &words);
        f.chars.push_back(clamp32(chars));
        f.words.push_back(clamp32(words));
        texts.push_back({&str, lines[r], chars, words});
        if (s.options.count_tokens) {
          KEEL_ASSIGN_OR_RETURN(size_t tokens, s.options.count_tokens(str));
          f.tokens.push_back(clamp32(tokens));
        }
        ++s.chats;
        s.chat_turns.push_back(clamp32(roles.size()));
        for (const std::string& role : roles) {
          // Roles are few; a file that makes up thousands gets them counted as one.
          const bool known = s.chat_roles.count(role) > 0 || s.chat_roles.size() < kMaxChatRoles;
          ++s.chat_roles[known ? role : std::string("(other)")];
        }
      } else if (value.is_number()) {
        double v = value.get<double>();
        if (f.numbers == 0 || v < f.number_min) f.number_min = v;
        if (f.numbers == 0 || v > f.number_max) f.number_max = v;
        f.number_sum += v;
        ++f.numbers;
      }
      if (f.tracking_categories) {
        bool scalar = value.is_boolean() || value.is_number_integer() ||
                      (value.is_string() && value.get_ref<const std::string&>().size() <= kMaxCategoryValueBytes);
        if (!scalar) {
          f.tracking_categories = false;
          f.categories.clear();
        } else {
          ++f.category_values;
          ++f.categories[value.dump()];
          if (f.categories.size() > kMaxCategories) {
            f.tracking_categories = false;
            f.categories.clear();
          }
        }
      }
    }
  }
  if (texts.empty()) return Status::Ok();

  // The expensive analyses, spread over the threads in contiguous chunks.
  std::vector<TextFacts> facts(texts.size());
  // At least 64 texts a thread: a Hyperscan scanner takes a while to build, so a small
  // input is not worth more threads. Scanners are built on first use.
  size_t chunks = std::min(s.workers.size(), (texts.size() + 63) / 64);
  size_t per = (texts.size() + chunks - 1) / chunks;
  for (size_t c = 0; c < chunks; ++c) {
    if (s.workers[c].pii == nullptr) {
      KEEL_ASSIGN_OR_RETURN(s.workers[c].pii, PiiScanner::create());
    }
  }
  auto run_chunk = [&](size_t c) {
    for (size_t i = c * per; i < std::min(texts.size(), (c + 1) * per); ++i) {
      s.analyse(*texts[i].text, texts[i].words, s.workers[c], &facts[i]);
    }
  };
  if (s.pool == nullptr || chunks == 1) {
    run_chunk(0);
  } else {
    std::vector<std::future<void>> done;
    for (size_t c = 0; c < chunks; ++c) done.push_back(s.pool->submit([&run_chunk, c] { run_chunk(c); }));
    for (auto& d : done) d.wait();
  }

  for (size_t i = 0; i < texts.size(); ++i) {
    const Text& t = texts[i];
    const TextFacts& f = facts[i];
    ++s.texts;
    s.text_bytes += t.text->size();
    ++s.languages[f.language.code];
    if (!f.language.reliable) ++s.language_unreliable;
    uint32_t& seen = s.exact[hash_bytes(*t.text)];
    if (seen > 0) ++s.exact_duplicates;
    ++seen;
    s.lsh->add(f.band_keys.data(), nullptr, f.no_shingles);
    s.text_lines.push_back(t.line);
    for (size_t k = 0; k < kPiiTypeCount; ++k) s.pii_counts[k] += f.pii[k];
    if (f.any_pii) ++s.pii_records;
    for (size_t q = 0; q < kQualityCount; ++q) {
      if (f.quality[q].empty()) continue;
      ++s.quality_removed[q];
      ++s.quality_by_rule[q][f.quality[q]];
    }
    auto example = [&](double score) {
      Example e;
      e.score = score;
      e.line = t.line;
      e.chars = t.chars;
      e.words = t.words;
      e.preview = preview(*t.text, s.options.preview_chars);
      return e;
    };
    double length = static_cast<double>(t.chars);
    if (s.longest.wants(length)) s.longest.offer(example(length));
    if (s.shortest.wants(length)) s.shortest.offer(example(length));
    if (f.repetition > 0 && s.repetitive.wants(f.repetition)) s.repetitive.offer(example(f.repetition));
  }
  return Status::Ok();
}

ProfileJson DatasetProfiler::finish() {
  State& s = *state_;
  const int bins = s.options.histogram_bins;
  auto rate = [](uint64_t n, uint64_t of) { return of == 0 ? 0.0 : static_cast<double>(n) / static_cast<double>(of); };
  ProfileJson out = ProfileJson::object();
  out["records"] = s.records;
  out["text_field"] = s.text_field.empty() ? ProfileJson(nullptr) : ProfileJson(s.text_field);
  out["tokenizer"] = s.options.count_tokens ? ProfileJson(s.options.tokenizer) : ProfileJson(nullptr);

  ProfileJson fields = ProfileJson::array();
  for (auto& f : s.fields) {
    std::set<std::string> kinds;
    for (const auto& [t, n] : f.types) {
      if (t != "null") kinds.insert(t);
    }
    std::string type = kinds.empty() ? "null" : *kinds.begin();
    if (kinds.size() > 1) {
      type = kinds == std::set<std::string>{"integer", "number"} ? "number" : "mixed";
    }
    ProfileJson j = {{"name", f.name}, {"type", type}, {"types", f.types}, {"present", f.present},
                     {"missing", s.records - f.present}, {"null", f.nulls}, {"empty", f.empty}};
    if (!f.chars.empty()) {
      ProfileJson lengths = {{"chars", distribution(f.chars, bins)}, {"words", distribution(f.words, bins)}};
      if (!f.tokens.empty()) lengths["tokens"] = distribution(f.tokens, bins);
      j["lengths"] = std::move(lengths);
    }
    if (f.numbers > 0) {
      j["numbers"] = {{"min", f.number_min}, {"max", f.number_max},
                      {"mean", f.number_sum / static_cast<double>(f.numbers)}};
    }
    if (f.tracking_categories && is_categorical(f.categories.size(), f.category_values)) {
      std::vector<std::pair<std::string, uint64_t>> freq(f.categories.begin(), f.categories.end());
      std::sort(freq.begin(), freq.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
      });
      ProfileJson list = ProfileJson::array();
      for (const auto& [value, n] : freq) {
        list.push_back({{"value", ProfileJson::parse(value)}, {"count", n}, {"share", rate(n, f.category_values)}});
      }
      j["categorical"] = {{"distinct", freq.size()}, {"frequencies", std::move(list)}};
    }
    fields.push_back(std::move(j));
    // Release the lengths as soon as they are summarised.
    f.chars = {};
    f.words = {};
    f.tokens = {};
  }
  out["fields"] = std::move(fields);

  ProfileJson text = {{"records", s.texts}, {"without_field", s.records - s.texts}, {"bytes", s.text_bytes}};
  out["text"] = std::move(text);
  if (s.chats > 0) {
    out["chat"] = {{"records", s.chats}, {"messages", distribution(s.chat_turns, bins)}, {"roles", s.chat_roles}};
    s.chat_turns = {};
  }

  std::vector<std::pair<std::string, uint64_t>> langs(s.languages.begin(), s.languages.end());
  std::sort(langs.begin(), langs.end(),
            [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  ProfileJson lang_list = ProfileJson::array();
  for (const auto& [code, n] : langs) lang_list.push_back({{"code", code}, {"records", n}, {"share", rate(n, s.texts)}});
  out["languages"] = {{"mix", std::move(lang_list)}, {"unreliable", s.language_unreliable}};

  uint64_t groups = 0;
  for (const auto& [hash, n] : s.exact) groups += n > 1 ? 1 : 0;
  ProfileJson near = ProfileJson::object();
  {
    DocumentClusters clusters = s.lsh->cluster();
    size_t n = s.lsh->size();
    std::vector<uint32_t> size(n, 0);
    for (size_t i = 0; i < n; ++i) ++size[clusters.find(static_cast<uint32_t>(i))];
    std::map<uint64_t, uint64_t> by_size;
    uint64_t count = 0, removable = 0;
    std::vector<uint32_t> roots;
    for (size_t i = 0; i < n; ++i) {
      if (size[i] < 2) continue;
      ++count;
      removable += size[i] - 1;
      ++by_size[size[i]];
      roots.push_back(static_cast<uint32_t>(i));
    }
    std::stable_sort(roots.begin(), roots.end(), [&](uint32_t a, uint32_t b) { return size[a] > size[b]; });
    if (roots.size() > s.options.examples) roots.resize(s.options.examples);
    ProfileJson largest = ProfileJson::array();
    for (uint32_t root : roots) {
      ProfileJson lines = ProfileJson::array();
      for (size_t i = root; i < n && lines.size() < 10; ++i) {
        if (clusters.find(static_cast<uint32_t>(i)) == root) lines.push_back(s.text_lines[i]);
      }
      largest.push_back({{"size", size[root]}, {"lines", std::move(lines)}});
    }
    ProfileJson sizes = ProfileJson::array();
    for (const auto& [sz, c] : by_size) sizes.push_back({{"size", sz}, {"clusters", c}});
    near = {{"method", "minhash word 5-grams, 14 bands x 8 rows (datatrove)"},
            {"clusters", count},
            {"removable", removable},
            {"rate", rate(removable, s.texts)},
            {"cluster_sizes", std::move(sizes)},
            {"largest", std::move(largest)}};
  }
  out["duplicates"] = {
      {"exact", {{"duplicates", s.exact_duplicates}, {"groups", groups}, {"rate", rate(s.exact_duplicates, s.texts)}}},
      {"near", std::move(near)}};
  s.exact = {};

  ProfileJson pii = ProfileJson::object();
  uint64_t findings = 0;
  for (size_t t = 0; t < kPiiTypeCount; ++t) {
    pii[std::string(pii_type_name(static_cast<PiiType>(t)))] = s.pii_counts[t];
    findings += s.pii_counts[t];
  }
  out["pii"] = {{"findings", findings},
                {"records", s.pii_records},
                {"rate", rate(s.pii_records, s.texts)},
                {"by_type", std::move(pii)}};

  ProfileJson quality = ProfileJson::object();
  if (!s.text_field.empty() && s.options.quality_rules) {
    for (size_t q = 0; q < kQualityCount; ++q) {
      quality[kQualitySteps[q]] = {{"would_remove", s.quality_removed[q]},
                                   {"rate", rate(s.quality_removed[q], s.texts)},
                                   {"by_rule", s.quality_by_rule[q]}};
    }
  }
  out["quality"] = std::move(quality);

  out["outliers"] = {{"longest", s.longest.to_json(nullptr)},
                     {"shortest", s.shortest.to_json(nullptr)},
                     {"most_repetitive", s.repetitive.to_json("repeated_3gram_share")}};
  return out;
}

Result<FileProfile> profile_file(const std::string& path, ProfileFileOptions options) {
  auto start = std::chrono::steady_clock::now();
  FileProfile result;
  auto user_reject = options.read.on_reject;
  options.read.on_reject = [&](const Rejection& r) {
    ++result.rejected;
    if (result.first_rejections.size() < 3) result.first_rejections.push_back(r);
    if (user_reject) user_reject(r);
  };
  KEEL_ASSIGN_OR_RETURN(auto reader, RecordReader::open(path, options.read));
  KEEL_ASSIGN_OR_RETURN(auto profiler, DatasetProfiler::create(std::move(options.profile)));
  std::vector<Record> batch(kProfileBatch);
  std::vector<uint64_t> lines(kProfileBatch);
  uint64_t n = 0;
  bool more = true;
  while (more) {
    size_t filled = 0;
    while (filled < kProfileBatch) {
      KEEL_ASSIGN_OR_RETURN(more, reader->next(&batch[filled]));
      if (!more) break;
      lines[filled++] = reader->record_line();
    }
    KEEL_RETURN_IF_ERROR(profiler->add_batch(std::span<const Record>(batch.data(), filled),
                                             std::span<const uint64_t>(lines.data(), filled)));
    n += filled;
    if (options.progress) options.progress(reader->file_bytes_read(), n);
  }
  result.input_bytes = reader->file_bytes_read();
  result.profile = profiler->finish();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

ProfileJson profile_schema(const ProfileJson& profile) {
  ProfileJson schema = ProfileJson::array();
  auto fields = profile.find("fields");
  if (fields == profile.end() || !fields->is_array()) return schema;
  for (const auto& f : *fields) schema.push_back({{"name", f.value("name", "")}, {"type", f.value("type", "")}});
  return schema;
}

}  // namespace keel::data

#include "keel/data/exact_dedup_operator.h"

#include "keel/data/hash.h"
#include "keel/data/record_text.h"
#include "keel/data/text_normalize.h"

namespace keel::data {

Verdict ExactDedupOperator::process(Record* record, bool* /*changed*/) {
  std::string joined;  // a chat's messages
  const std::string* text = record_text(*record, field_, &joined);
  if (text == nullptr) return Verdict::Drop("no_text_field");
  std::string normal = normalize_for_exact(*text);
  // The seeds of dedup.cpp's exact pass, so both find the same duplicates.
  Key key{hash_bytes(normal, 0x6b65656c), hash_bytes(normal, 0x64617461)};
  if (!seen_.insert(key).second) return Verdict::Drop("exact_duplicate");
  return Verdict::Keep();
}

}  // namespace keel::data

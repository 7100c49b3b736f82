// The "pii" step for pipelines: redacts personal data and secrets in one text field
// with a PiiScanner (pii.h), as `keel data pii` does. Keeps every record; notes count
// findings per type ("EMAIL", "PHONE", ...). Records without the field pass unchanged.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keel/data/operator.h"
#include "keel/data/pii.h"

namespace keel::data {

struct PiiStepOptions {
  std::string field = "text";
  std::string mode = "redact";  // redact, mask or hash

  void describe(ParamSet* params);
};

class PiiOperator : public RecordOperator {
 public:
  static Result<std::unique_ptr<PiiOperator>> create(PiiStepOptions options);
  std::string_view name() const override { return "pii"; }

 protected:
  Verdict process(Record* record, bool* changed) override;

 private:
  PiiOperator(std::string field, RedactionMode mode, std::unique_ptr<PiiScanner> scanner)
      : field_(std::move(field)), mode_(mode), scanner_(std::move(scanner)) {}
  std::string field_;
  RedactionMode mode_;
  std::unique_ptr<PiiScanner> scanner_;
  std::vector<std::string*> parts_;  // the record being processed
};

}  // namespace keel::data

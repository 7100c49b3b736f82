// libFuzzer target for the GGUF reader (keel/engine/gguf.h): any byte string must
// parse into a file or an error value, never a crash, a sanitizer report or a huge
// allocation. Small limits keep each input cheap; the seed corpus is fuzz/corpus/gguf/.
#include <cstddef>
#include <cstdint>

#include "keel/engine/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  keel::engine::GgufLimits limits;
  limits.max_string_bytes = 4096;
  limits.max_array_elements = 4096;
  limits.max_tensors = 256;
  limits.max_metadata_entries = 256;
  auto file = keel::engine::GgufFile::parse(data, size, limits);
  if (!file.ok()) return 0;
  // Touch what a caller would: every accessor, every value, every tensor's bytes.
  const auto& g = **file;
  (void)g.architecture();
  (void)g.parameter_count();
  for (const auto& kv : g.metadata()) {
    (void)kv.value.as_string();
    (void)kv.value.as_int();
    (void)kv.value.as_double();
  }
  // Reads the first and last byte of every tensor: AddressSanitizer catches a tensor
  // that the reader let run past the input.
  volatile uint8_t sink = 0;
  for (const auto& t : g.tensors()) {
    const uint8_t* p = g.tensor_data(t);
    if (t.size_bytes > 0) sink = static_cast<uint8_t>(sink ^ p[0] ^ p[t.size_bytes - 1]);
  }
  (void)sink;
  return 0;
}

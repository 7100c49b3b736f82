// GgufWriter against GgufFile (write, read back, compare) and against gguf-py 0.19.0
// (tests/reference/make_gguf_fixture.py wrote tests/fixtures/engine/gguf/: the writer,
// given the same content in the same order, must produce the same bytes).
#include "keel/engine/gguf_writer.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "keel/engine/gguf.h"
#include "support/test_support.h"

namespace keel::engine {
namespace {

using keel::testing::TempDir;

constexpr uint32_t kF32 = 0, kF16 = 1, kQ8_0 = 8, kI8 = 24;

std::string fixture_path(const std::string& name) {
  const std::string root = keel::testing::source_dir();
  return root + "/tests/fixtures/engine/gguf/" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing " << path << " (tests/reference/make_gguf_fixture.py writes fixtures)";
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
template <typename T>
std::span<const uint8_t> as_bytes(const std::vector<T>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T)};
}

// Deep equality of two metadata values: same type, same widened data, same elements.
::testing::AssertionResult same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type) {
    return ::testing::AssertionFailure() << gguf_value_type_name(a.type) << " vs " << gguf_value_type_name(b.type);
  }
  if (a.type != GgufValueType::kArray) {
    if (a.data != b.data) return ::testing::AssertionFailure() << "different " << gguf_value_type_name(a.type);
    return ::testing::AssertionSuccess();
  }
  const GgufArray& x = *std::get<std::shared_ptr<GgufArray>>(a.data);
  const GgufArray& y = *std::get<std::shared_ptr<GgufArray>>(b.data);
  if (x.element_type != y.element_type || x.values.size() != y.values.size()) {
    return ::testing::AssertionFailure() << "different array element type or length";
  }
  for (size_t i = 0; i < x.values.size(); ++i) {
    auto r = same_value(x.values[i], y.values[i]);
    if (!r) return r << " (element " << i << ")";
  }
  return ::testing::AssertionSuccess();
}

GgufValue array_of(GgufValueType element_type, std::vector<GgufValue> values) {
  auto arr = std::make_shared<GgufArray>();
  arr->element_type = element_type;
  arr->values = std::move(values);
  return GgufValue{GgufValueType::kArray, std::move(arr)};
}
GgufValue u(GgufValueType t, uint64_t v) { return GgufValue{t, v}; }
GgufValue i(GgufValueType t, int64_t v) { return GgufValue{t, v}; }

// The tensors of every_type.gguf (see make_gguf_fixture.py).
struct EveryTypeTensors {
  std::vector<float> embd;       // F32, dims (3, 4): arange(12) * 0.5
  std::string norm;              // F16, dims (8): linspace(-1, 1, 8), taken from the fixture
  std::vector<uint8_t> attn_q;   // Q8_0, dims (64, 2): (i * 37 + 7) % 251
};

EveryTypeTensors every_type_tensors() {
  EveryTypeTensors t;
  for (int k = 0; k < 12; ++k) t.embd.push_back(static_cast<float>(k) * 0.5f);
  for (int k = 0; k < 136; ++k) t.attn_q.push_back(static_cast<uint8_t>((k * 37 + 7) % 251));
  auto fixture = GgufFile::open(fixture_path("every_type.gguf"));
  if (fixture.ok() && (*fixture)->tensors().size() == 3) {
    const GgufTensorInfo& n = (*fixture)->tensors()[1];
    t.norm.assign(reinterpret_cast<const char*>((*fixture)->tensor_data(n)), n.size_bytes);
  }
  return t;
}

// The same content, in the same order, as make_gguf_fixture.py's write_every_type.
void add_every_type(GgufWriter& w, const EveryTypeTensors& t) {
  using T = GgufValueType;
  ASSERT_TRUE(w.add_string("general.architecture", "llama").ok());
  ASSERT_TRUE(w.add_uint8("t.uint8", 200).ok());
  ASSERT_TRUE(w.add_int8("t.int8", -100).ok());
  ASSERT_TRUE(w.add_uint16("t.uint16", 60000).ok());
  ASSERT_TRUE(w.add_int16("t.int16", -30000).ok());
  ASSERT_TRUE(w.add_uint32("t.uint32", 4000000000u).ok());
  ASSERT_TRUE(w.add_int32("t.int32", -2000000000).ok());
  ASSERT_TRUE(w.add_float32("t.float32", 0.15625f).ok());
  ASSERT_TRUE(w.add_bool("t.bool", true).ok());
  ASSERT_TRUE(w.add_string("t.string", "h\xc3\xa9llo \xe6\xa8\xa1\xe5\x9e\x8b").ok());
  ASSERT_TRUE(w.add_uint64("t.uint64", 18000000000000000000ull).ok());
  ASSERT_TRUE(w.add_int64("t.int64", -9000000000000000000ll).ok());
  ASSERT_TRUE(w.add_float64("t.float64", -2.5e-300).ok());
  ASSERT_TRUE(w.add_string_array("t.strings", {"a", "", "\xc3\xbc\xc3\x9f"}).ok());
  ASSERT_TRUE(w.add_int32_array("t.int32s", {1, -2, 2147483647}).ok());
  ASSERT_TRUE(w.add_float32_array("t.float32s", {0.5f, -1.0f, 3.25f}).ok());
  ASSERT_TRUE(w.add("t.bools", array_of(T::kBool, {GgufValue{T::kBool, true}, GgufValue{T::kBool, false}})).ok());
  ASSERT_TRUE(w.add("t.uint8s", array_of(T::kUint8, {u(T::kUint8, 0), u(T::kUint8, 255)})).ok());
  ASSERT_TRUE(w.add("t.nested", array_of(T::kArray, {array_of(T::kInt32, {i(T::kInt32, 1), i(T::kInt32, 2)}),
                                                      array_of(T::kInt32, {i(T::kInt32, 3)})}))
                  .ok());
  ASSERT_TRUE(w.add_tensor("tok_embd.weight", {3, 4}, kF32, as_bytes(t.embd)).ok());
  ASSERT_TRUE(w.add_tensor("norm.weight", {8}, kF16, as_bytes(t.norm)).ok());
  ASSERT_TRUE(w.add_tensor("blk.0.attn_q.weight", {64, 2}, kQ8_0, as_bytes(t.attn_q)).ok());
}

// Every metadata entry, tensor entry and tensor byte of a and b are equal.
void expect_same_file(const GgufFile& a, const GgufFile& b) {
  EXPECT_EQ(a.version(), b.version());
  EXPECT_EQ(a.alignment(), b.alignment());
  EXPECT_EQ(a.data_offset(), b.data_offset());
  ASSERT_EQ(a.metadata().size(), b.metadata().size());
  for (size_t k = 0; k < a.metadata().size(); ++k) {
    EXPECT_EQ(a.metadata()[k].key, b.metadata()[k].key);
    EXPECT_TRUE(same_value(a.metadata()[k].value, b.metadata()[k].value)) << a.metadata()[k].key;
  }
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t k = 0; k < a.tensors().size(); ++k) {
    const GgufTensorInfo& x = a.tensors()[k];
    const GgufTensorInfo& y = b.tensors()[k];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.dims, y.dims);
    EXPECT_EQ(x.type, y.type);
    EXPECT_EQ(x.offset, y.offset);
    ASSERT_EQ(x.size_bytes, y.size_bytes);
    EXPECT_EQ(0, std::memcmp(a.tensor_data(x), b.tensor_data(y), x.size_bytes)) << x.name;
  }
}

bool folder_has_only(const std::string& dir, const std::vector<std::string>& names) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  std::vector<std::string> found;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") found.push_back(n);
  }
  ::closedir(d);
  std::sort(found.begin(), found.end());
  std::vector<std::string> want = names;
  std::sort(want.begin(), want.end());
  return found == want;
}

TEST(GgufWriter, RoundTripsEveryValueTypeAndTensor) {
  TempDir dir;
  EveryTypeTensors t = every_type_tensors();
  ASSERT_EQ(t.norm.size(), 16u);
  GgufWriter w;
  add_every_type(w, t);
  ASSERT_TRUE(w.write(dir.file("m.gguf")).ok());
  auto g = GgufFile::open(dir.file("m.gguf"));
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ((*g)->version(), 3u);
  EXPECT_EQ((*g)->alignment(), 32u);
  EXPECT_EQ((*g)->data_offset() % 32, 0u);
  ASSERT_EQ((*g)->metadata().size(), 19u);
  EXPECT_EQ((*g)->architecture(), "llama");
  EXPECT_EQ((*g)->get_int("t.uint8"), 200);
  EXPECT_EQ((*g)->get_int("t.int8"), -100);
  EXPECT_EQ((*g)->get_int("t.int64"), -9000000000000000000ll);
  EXPECT_EQ(std::get<uint64_t>((*g)->find("t.uint64")->data), 18000000000000000000ull);
  EXPECT_EQ((*g)->find("t.float32")->as_double(), 0.15625);
  EXPECT_EQ((*g)->find("t.float64")->as_double(), -2.5e-300);
  EXPECT_EQ((*g)->get_string("t.string"), "h\xc3\xa9llo \xe6\xa8\xa1\xe5\x9e\x8b");
  const auto& strings = *std::get<std::shared_ptr<GgufArray>>((*g)->find("t.strings")->data);
  ASSERT_EQ(strings.values.size(), 3u);
  EXPECT_EQ(strings.values[1].as_string(), "");
  const auto& nested = *std::get<std::shared_ptr<GgufArray>>((*g)->find("t.nested")->data);
  ASSERT_EQ(nested.element_type, GgufValueType::kArray);
  EXPECT_EQ(std::get<std::shared_ptr<GgufArray>>(nested.values[1].data)->values[0].as_int(), 3);
  ASSERT_EQ((*g)->tensors().size(), 3u);
  const auto& embd = (*g)->tensors()[0];
  EXPECT_EQ(embd.dims, (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(embd.size_bytes, 48u);
  EXPECT_EQ(0, std::memcmp((*g)->tensor_data(embd), t.embd.data(), 48));
  EXPECT_EQ((*g)->tensors()[1].offset, 64u);  // 48 padded to 32
  EXPECT_EQ((*g)->tensors()[2].offset, 96u);  // + 16 padded to 32
  EXPECT_EQ(0, std::memcmp((*g)->tensor_data((*g)->tensors()[2]), t.attn_q.data(), 136));
  // The file ends padded, as ggml and gguf-py write it.
  EXPECT_EQ((*g)->file_size(), (*g)->data_offset() + 96 + 160);
  EXPECT_TRUE(folder_has_only(dir.path(), {"m.gguf"}));  // no temporary file left behind
}

TEST(GgufWriter, ReadsTheGgufPyFixture) {
  auto g = GgufFile::open(fixture_path("every_type.gguf"));
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ((*g)->metadata().size(), 19u);
  EXPECT_EQ((*g)->get_int("t.int32"), -2000000000);
  EXPECT_EQ((*g)->get_int("t.uint32"), 4000000000ll);
  EXPECT_EQ((*g)->get_int("t.int16"), -30000);
  EXPECT_EQ((*g)->get_int("t.uint16"), 60000);
  EXPECT_EQ(std::get<bool>((*g)->find("t.bool")->data), true);
  ASSERT_EQ((*g)->tensors().size(), 3u);
  EXPECT_EQ((*g)->tensors()[2].name, "blk.0.attn_q.weight");
  EXPECT_EQ((*g)->tensors()[2].type, kQ8_0);
  EXPECT_EQ((*g)->tensors()[2].dims, (std::vector<uint64_t>{64, 2}));
  // linspace(-1, 1, 8) in fp16: the ends are exactly -1 (0xBC00) and 1 (0x3C00).
  const uint8_t* norm = (*g)->tensor_data((*g)->tensors()[1]);
  EXPECT_EQ(norm[0] | norm[1] << 8, 0xBC00);
  EXPECT_EQ(norm[14] | norm[15] << 8, 0x3C00);
}

TEST(GgufWriter, WritesTheSameBytesAsGgufPy) {
  TempDir dir;
  {
    EveryTypeTensors t = every_type_tensors();
    GgufWriter w;
    add_every_type(w, t);
    ASSERT_TRUE(w.write(dir.file("every_type.gguf")).ok());
    std::string ours = slurp(dir.file("every_type.gguf"));
    std::string theirs = slurp(fixture_path("every_type.gguf"));
    EXPECT_EQ(ours.size(), theirs.size());
    EXPECT_TRUE(ours == theirs) << "differs from gguf-py's every_type.gguf";
    auto a = GgufFile::open(dir.file("every_type.gguf"));
    auto b = GgufFile::open(fixture_path("every_type.gguf"));
    ASSERT_TRUE(a.ok() && b.ok());
    expect_same_file(**a, **b);
  }
  {
    GgufWriter w;
    ASSERT_TRUE(w.add_string("general.architecture", "test").ok());
    ASSERT_TRUE(w.set_alignment(64).ok());
    std::vector<int8_t> bytes = {1, -2, 3, -4, 5};
    ASSERT_TRUE(w.add_tensor("bytes", {5}, kI8, as_bytes(bytes)).ok());
    ASSERT_TRUE(w.write(dir.file("aligned64.gguf")).ok());
    EXPECT_TRUE(slurp(dir.file("aligned64.gguf")) == slurp(fixture_path("aligned64.gguf")))
        << "differs from gguf-py's aligned64.gguf";
  }
}

TEST(GgufWriter, HonoursGeneralAlignment) {
  TempDir dir;
  GgufWriter w;
  ASSERT_TRUE(w.add("general.alignment", u(GgufValueType::kUint32, 256)).ok());
  EXPECT_EQ(w.alignment(), 256u);
  std::vector<float> a(3, 1.0f), b(70, 2.0f);
  ASSERT_TRUE(w.add_tensor("a", {3}, kF32, as_bytes(a)).ok());
  ASSERT_TRUE(w.add_tensor("b", {70}, kF32, as_bytes(b)).ok());
  ASSERT_TRUE(w.write(dir.file("m.gguf")).ok());
  auto g = GgufFile::open(dir.file("m.gguf"));
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ((*g)->alignment(), 256u);
  EXPECT_EQ((*g)->data_offset() % 256, 0u);
  EXPECT_EQ((*g)->tensors()[1].offset, 256u);
  EXPECT_EQ((*g)->file_size(), (*g)->data_offset() + 256 + 512);
  EXPECT_EQ(0, std::memcmp((*g)->tensor_data((*g)->tensors()[1]), b.data(), 280));
}

// A sink that hands out the bytes in pieces: the writer never needs the whole tensor.
TEST(GgufWriter, StreamsProducedTensorsInPieces) {
  TempDir dir;
  GgufWriter w;
  const uint64_t rows = 100, cols = 256;
  auto producer = [&](GgufTensorSink& sink) -> Status {
    std::vector<float> row(cols);
    for (uint64_t r = 0; r < rows; ++r) {
      for (uint64_t c = 0; c < cols; ++c) row[c] = static_cast<float>(r * cols + c);
      KEEL_RETURN_IF_ERROR(sink.write(as_bytes(row)));
    }
    return Status::Ok();
  };
  ASSERT_TRUE(w.add_tensor("big", {cols, rows}, kF32, rows * cols * 4, producer).ok());
  ASSERT_TRUE(w.write(dir.file("m.gguf")).ok());
  auto g = GgufFile::open(dir.file("m.gguf"));
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  const float* data = reinterpret_cast<const float*>((*g)->tensor_data((*g)->tensors()[0]));
  for (uint64_t k = 0; k < rows * cols; k += 997) EXPECT_EQ(data[k], static_cast<float>(k));
}

TEST(GgufWriter, RejectsInvalidMetadata) {
  using T = GgufValueType;
  GgufWriter w;
  ASSERT_TRUE(w.add_uint32("k", 1).ok());
  EXPECT_EQ(w.add_string("k", "again").code(), ErrorCode::kInvalidArgument);  // duplicate key
  EXPECT_FALSE(w.add_uint8("", 1).ok());
  EXPECT_FALSE(w.add(std::string(70000, 'k'), u(T::kUint8, 1)).ok());
  EXPECT_FALSE(w.add("a", u(T::kUint8, 300)).ok());             // does not fit
  EXPECT_FALSE(w.add("b", i(T::kInt16, 40000)).ok());
  EXPECT_FALSE(w.add("c", GgufValue{T::kInt32, std::string("x")}).ok());  // data of another type
  EXPECT_FALSE(w.add("d", array_of(T::kInt32, {u(T::kUint32, 1)})).ok());  // element of another type
  GgufValue deep = array_of(T::kArray, {array_of(T::kArray, {array_of(T::kInt32, {i(T::kInt32, 1)})})});
  EXPECT_FALSE(w.add("e", deep).ok());  // the reader accepts two levels of arrays, no more
  EXPECT_FALSE(w.set_alignment(48).ok());
  EXPECT_FALSE(w.set_alignment(0).ok());
  EXPECT_FALSE(w.add("general.alignment", GgufValue{T::kString, std::string("32")}).ok());
  EXPECT_FALSE(w.add("general.alignment", u(T::kUint64, uint64_t{1} << 21)).ok());
  EXPECT_EQ(w.alignment(), 32u);
  // Nothing rejected was kept: the file holds the one good entry.
  TempDir dir;
  ASSERT_TRUE(w.write(dir.file("m.gguf")).ok());
  auto g = GgufFile::open(dir.file("m.gguf"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)->metadata().size(), 1u);
}

TEST(GgufWriter, RejectsInvalidTensors) {
  GgufWriter w;
  std::vector<float> four(4);
  ASSERT_TRUE(w.add_tensor("t", {4}, kF32, as_bytes(four)).ok());
  EXPECT_FALSE(w.add_tensor("t", {4}, kF32, as_bytes(four)).ok());      // duplicate name
  EXPECT_FALSE(w.add_tensor("u", {2, 3}, kF32, as_bytes(four)).ok());   // 24 bytes expected, 16 given
  EXPECT_FALSE(w.add_tensor("v", {}, kF32, as_bytes(four)).ok());
  EXPECT_FALSE(w.add_tensor("v", {1, 1, 1, 1, 4}, kF32, as_bytes(four)).ok());
  EXPECT_FALSE(w.add_tensor("v", {4, 0}, kF32, as_bytes(four)).ok());
  EXPECT_FALSE(w.add_tensor("v", {4}, 9999, as_bytes(four)).ok());       // unknown type
  EXPECT_FALSE(w.add_tensor("v", {16}, kQ8_0, 17, [](GgufTensorSink&) { return Status::Ok(); }).ok());  // 16 % 32
  EXPECT_FALSE(w.add_tensor("", {4}, kF32, as_bytes(four)).ok());
  // general.alignment after a tensor would move offsets already handed out.
  EXPECT_FALSE(w.set_alignment(64).ok());
}

TEST(GgufWriter, AFailedWriteLeavesTheOldFileAndNoTemporary) {
  TempDir dir;
  const std::string path = dir.file("m.gguf");
  {
    GgufWriter w;
    ASSERT_TRUE(w.add_string("general.architecture", "old").ok());
    ASSERT_TRUE(w.write(path).ok());
  }
  for (uint64_t produced : {uint64_t{8}, uint64_t{24}}) {
    GgufWriter w;
    ASSERT_TRUE(w.add_string("general.architecture", "new").ok());
    auto producer = [produced](GgufTensorSink& sink) {
      std::vector<uint8_t> bytes(produced, 1);
      return sink.write(bytes);
    };
    ASSERT_TRUE(w.add_tensor("t", {4}, kF32, 16, producer).ok());
    Status st = w.write(path);
    EXPECT_FALSE(st.ok()) << "a producer that wrote " << produced << " of 16 bytes";
    auto g = GgufFile::open(path);
    ASSERT_TRUE(g.ok());
    EXPECT_EQ((*g)->architecture(), "old");
    EXPECT_TRUE(folder_has_only(dir.path(), {"m.gguf"}));
  }
  GgufWriter w;
  EXPECT_FALSE(w.write(dir.file("no/such/folder/m.gguf")).ok());
}

}  // namespace
}  // namespace keel::engine

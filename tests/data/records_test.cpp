// Readers and writers: every format round-trips, compression by extension, and
// malformed input is counted with its line and never stops or crashes the reader.
#include "keel/data/records.h"

#include <gtest/gtest.h>

#include <fstream>

#include "keel/data/byte_stream.h"
#include "support/test_support.h"

namespace keel::data {
namespace {

using keel::testing::TempDir;

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

void write_compressed(const std::string& path, const std::string& bytes) {
  auto sink = open_byte_sink(path);
  ASSERT_TRUE(sink.ok()) << sink.status().to_string();
  ASSERT_TRUE((*sink)->write(bytes).ok());
  ASSERT_TRUE((*sink)->close().ok());
}

std::string read_all_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct ReadOutcome {
  std::vector<Record> records;
  std::vector<Rejection> rejections;
  std::vector<uint64_t> lines;
  Status status;
};

ReadOutcome read_all(const std::string& path, ReadOptions options = {}) {
  ReadOutcome out;
  options.on_reject = [&out](const Rejection& r) { out.rejections.push_back(r); };
  auto reader = RecordReader::open(path, options);
  if (!reader.ok()) {
    out.status = reader.status();
    return out;
  }
  Record record;
  while (true) {
    auto got = (*reader)->next(&record);
    if (!got.ok()) {
      out.status = got.status();
      return out;
    }
    if (!*got) break;
    out.records.push_back(record);
    out.lines.push_back((*reader)->record_line());
  }
  return out;
}

TEST(RecordReader, JsonlKeepsFieldOrderAndSkipsBlankLines) {
  TempDir dir;
  write_raw(dir.file("a.jsonl"), "{\"z\":1,\"a\":\"x\",\"m\":[1,2]}\n\n{\"id\":7}\r\n");
  auto r = read_all(dir.file("a.jsonl"));
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].dump(), "{\"z\":1,\"a\":\"x\",\"m\":[1,2]}");
  EXPECT_EQ(r.records[1]["id"], 7);
  EXPECT_EQ(r.lines, (std::vector<uint64_t>{1, 3}));
}

TEST(RecordReader, MalformedJsonlLinesAreRejectedWithLineNumbersAndReadingGoesOn) {
  TempDir dir;
  std::string bad_utf8 = "{\"text\":\"caf\xC3\"}";
  write_raw(dir.file("a.jsonl"), "{\"id\":1}\n{\"id\":\n" + bad_utf8 + "\n[1,2]\n\"str\"\n{\"id\":6}\n");
  auto r = read_all(dir.file("a.jsonl"));
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[1]["id"], 6);
  ASSERT_EQ(r.rejections.size(), 4u);
  EXPECT_EQ(r.rejections[0].line, 2u);
  EXPECT_NE(r.rejections[0].reason.find("invalid JSON"), std::string::npos);
  EXPECT_EQ(r.rejections[1].line, 3u);
  EXPECT_EQ(r.rejections[1].reason, "invalid UTF-8");
  EXPECT_EQ(r.rejections[2].line, 4u);
  EXPECT_NE(r.rejections[2].reason.find("not a JSON object"), std::string::npos);
  EXPECT_EQ(r.rejections[3].line, 5u);
  EXPECT_EQ(r.rejections[0].file, dir.file("a.jsonl"));
}

TEST(RecordReader, LineOverTheSizeLimitIsRejectedAndTheNextLineIsRead) {
  TempDir dir;
  std::string big = "{\"text\":\"" + std::string(5000, 'x') + "\"}";
  write_raw(dir.file("a.jsonl"), "{\"id\":1}\n" + big + "\n{\"id\":3}\n");
  ReadOptions options;
  options.max_record_bytes = 1000;
  auto r = read_all(dir.file("a.jsonl"), options);
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[1]["id"], 3);
  ASSERT_EQ(r.rejections.size(), 1u);
  EXPECT_EQ(r.rejections[0].line, 2u);
  EXPECT_NE(r.rejections[0].reason.find("maximum record size"), std::string::npos);
  EXPECT_TRUE(r.rejections[0].raw.empty());
}

TEST(RecordReader, GzipAndZstdRoundTripByExtension) {
  TempDir dir;
  for (std::string name : {"a.jsonl.gz", "a.jsonl.zst"}) {
    std::string text;
    for (int i = 0; i < 20000; ++i)
      text += "{\"id\":" + std::to_string(i) + ",\"text\":\"doc number " + std::to_string(i) + "\"}\n";
    write_compressed(dir.file(name), text);
    EXPECT_LT(read_all_bytes(dir.file(name)).size(), text.size() / 3) << name << " is not compressed";
    auto r = read_all(dir.file(name));
    ASSERT_TRUE(r.status.ok()) << r.status.to_string();
    ASSERT_EQ(r.records.size(), 20000u) << name;
    EXPECT_EQ(r.records[19999]["id"], 19999);
  }
}

TEST(ByteSource, SmallReadsDrainOutputHeldAfterTheLastInputByte) {
  // 4 MiB of one byte compresses to a few KiB, so the decoders hand out their output
  // over thousands of small reads, most with the file already read to its end; every
  // byte must come out and none of it may read as truncation.
  TempDir dir;
  std::string text(size_t{4} << 20, 'a');
  for (std::string name : {"a.txt.gz", "a.txt.zst"}) {
    write_compressed(dir.file(name), text);
    auto source = open_byte_source(dir.file(name));
    ASSERT_TRUE(source.ok());
    std::string back;
    char buffer[1000];
    while (true) {
      auto n = (*source)->read(buffer, sizeof buffer);
      ASSERT_TRUE(n.ok()) << name << ": " << n.status().to_string();
      if (*n == 0) break;
      back.append(buffer, *n);
    }
    EXPECT_EQ(back.size(), text.size()) << name;
    EXPECT_EQ(back, text) << name;
  }
}

TEST(RecordReader, ConcatenatedGzipMembersAreAllRead) {
  TempDir dir;
  write_compressed(dir.file("a.jsonl.gz"), "{\"id\":1}\n");
  write_compressed(dir.file("b.jsonl.gz"), "{\"id\":2}\n");
  write_raw(dir.file("ab.jsonl.gz"), read_all_bytes(dir.file("a.jsonl.gz")) + read_all_bytes(dir.file("b.jsonl.gz")));
  auto r = read_all(dir.file("ab.jsonl.gz"));
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  EXPECT_EQ(r.records.size(), 2u);
}

TEST(RecordReader, TruncatedGzipIsAnErrorThatSaysHowManyRecordsWereRead) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 50000; ++i)
    text += "{\"id\":" + std::to_string(i) + ",\"text\":\"some words " + std::to_string(i * 7919) + "\"}\n";
  write_compressed(dir.file("full.jsonl.gz"), text);
  std::string bytes = read_all_bytes(dir.file("full.jsonl.gz"));
  write_raw(dir.file("cut.jsonl.gz"), bytes.substr(0, bytes.size() / 2));
  auto r = read_all(dir.file("cut.jsonl.gz"));
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.code(), ErrorCode::kCorrupt);
  EXPECT_NE(r.status.message().find("truncated"), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find("after " + std::to_string(r.records.size()) + " records read"), std::string::npos)
      << r.status.message();
  EXPECT_GT(r.records.size(), 1000u);
  EXPECT_LT(r.records.size(), 50000u);
}

TEST(RecordReader, TruncatedZstdIsAnError) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 50000; ++i) text += "{\"id\":" + std::to_string(i) + "}\n";
  write_compressed(dir.file("full.jsonl.zst"), text);
  std::string bytes = read_all_bytes(dir.file("full.jsonl.zst"));
  write_raw(dir.file("cut.jsonl.zst"), bytes.substr(0, bytes.size() - 10));
  auto r = read_all(dir.file("cut.jsonl.zst"));
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("truncated"), std::string::npos) << r.status.message();
}

TEST(RecordReader, GarbageInAGzipFileIsAnError) {
  TempDir dir;
  write_raw(dir.file("a.jsonl.gz"), "this is not gzip at all\n");
  auto r = read_all(dir.file("a.jsonl.gz"));
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("not valid gzip"), std::string::npos) << r.status.message();
}

TEST(RecordReader, CsvQuotedFieldsHoldDelimitersQuotesAndNewlines) {
  TempDir dir;
  write_raw(dir.file("a.csv"),
            "id,text,note\r\n1,\"hello, world\",plain\r\n2,\"two\nlines\",\"say \"\"hi\"\"\"\r\n3,,\n");
  auto r = read_all(dir.file("a.csv"));
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[0].dump(), "{\"id\":\"1\",\"text\":\"hello, world\",\"note\":\"plain\"}");
  EXPECT_EQ(r.records[1]["text"], "two\nlines");
  EXPECT_EQ(r.records[1]["note"], "say \"hi\"");
  EXPECT_EQ(r.records[2]["text"], "");
  EXPECT_EQ(r.lines, (std::vector<uint64_t>{2, 3, 5}));
}

TEST(RecordReader, CsvBrokenQuotesAndWrongFieldCountsAreRejected) {
  TempDir dir;
  write_raw(dir.file("a.csv"), "id,text\n1,\"ok\"\n2,\"bad\"x,more\n3\n4,\"fine\"\n5,\"never closed\n6,tail\n");
  auto r = read_all(dir.file("a.csv"));
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[1]["id"], "4");
  ASSERT_EQ(r.rejections.size(), 3u);
  EXPECT_EQ(r.rejections[0].line, 3u);
  EXPECT_NE(r.rejections[0].reason.find("malformed quoted field"), std::string::npos);
  EXPECT_EQ(r.rejections[1].line, 4u);
  EXPECT_NE(r.rejections[1].reason.find("has 1 fields"), std::string::npos);
  EXPECT_EQ(r.rejections[2].line, 6u);
  EXPECT_NE(r.rejections[2].reason.find("unterminated quoted field"), std::string::npos);
}

TEST(RecordReader, TsvAndTextInputs) {
  TempDir dir;
  write_raw(dir.file("a.tsv"), "id\ttext\n1\ta, b\n");
  auto tsv = read_all(dir.file("a.tsv"));
  ASSERT_EQ(tsv.records.size(), 1u);
  EXPECT_EQ(tsv.records[0]["text"], "a, b");
  write_raw(dir.file("a.txt"), "first doc\r\n\nsecond \xFF doc\nthird\n");
  auto txt = read_all(dir.file("a.txt"));
  ASSERT_EQ(txt.records.size(), 2u);
  EXPECT_EQ(txt.records[0].dump(), "{\"text\":\"first doc\"}");
  EXPECT_EQ(txt.records[1]["text"], "third");
  ASSERT_EQ(txt.rejections.size(), 1u);
  EXPECT_EQ(txt.rejections[0].line, 3u);
}

TEST(RecordReader, JsonArrayIsStreamedElementByElement) {
  TempDir dir;
  write_raw(dir.file("a.json"),
            " [\n {\"id\": 1, \"t\": \"a ] , }\"},\n 42,\n {\"id\": {\"n\": [1, {\"x\": 2}]}}\n]\n");
  auto r = read_all(dir.file("a.json"));
  ASSERT_TRUE(r.status.ok()) << r.status.to_string();
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0]["t"], "a ] , }");
  EXPECT_EQ(r.records[1]["id"]["n"][1]["x"], 2);
  ASSERT_EQ(r.rejections.size(), 1u);
  EXPECT_EQ(r.rejections[0].line, 3u);
  write_raw(dir.file("cut.json"), "[{\"id\":1},{\"id\":2");
  auto cut = read_all(dir.file("cut.json"));
  ASSERT_FALSE(cut.status.ok());
  EXPECT_NE(cut.status.message().find("after 1 records read"), std::string::npos) << cut.status.message();
  // A .json file that is not an array is read as JSON lines.
  write_raw(dir.file("lines.json"), "{\"id\":1}\n{\"id\":2}\n");
  EXPECT_EQ(read_all(dir.file("lines.json")).records.size(), 2u);
}

TEST(RecordReader, UnknownExtensionAsksForAFormat) {
  TempDir dir;
  write_raw(dir.file("a.dat"), "{}\n");
  auto r = read_all(dir.file("a.dat"));
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("--format"), std::string::npos);
  ReadOptions options;
  options.format = "jsonl";
  EXPECT_EQ(read_all(dir.file("a.dat"), options).records.size(), 1u);
}

TEST(RecordWriter, EveryFormatRoundTripsThroughItsReader) {
  TempDir dir;
  std::vector<Record> records = {Record::parse(R"({"id":"1","text":"hello, \"world\"\nnext"})"),
                                 Record::parse(R"({"id":"2","text":"plain"})")};
  for (std::string name : {"o.jsonl", "o.json", "o.csv", "o.tsv", "o.jsonl.gz", "o.csv.zst", "o.json.gz"}) {
    auto writer = RecordWriter::open(dir.file(name));
    ASSERT_TRUE(writer.ok()) << name;
    for (const auto& r : records) ASSERT_TRUE((*writer)->write(r).ok()) << name;
    ASSERT_TRUE((*writer)->close().ok()) << name;
    auto back = read_all(dir.file(name));
    ASSERT_TRUE(back.status.ok()) << name << ": " << back.status.to_string();
    ASSERT_EQ(back.records.size(), 2u) << name;
    EXPECT_EQ(back.records[0], records[0]) << name;
    EXPECT_EQ(back.records[1].dump(), records[1].dump()) << name;
  }
  auto text = RecordWriter::open(dir.file("o.txt"));
  ASSERT_TRUE(text.ok());
  ASSERT_TRUE((*text)->write(records[0]).ok());
  ASSERT_TRUE((*text)->close().ok());
  EXPECT_EQ(read_all_bytes(dir.file("o.txt")), "hello, \"world\" next\n");
}

TEST(Utf8, RejectsOverlongsSurrogatesAndTruncation) {
  EXPECT_TRUE(is_valid_utf8("plain ascii text that is long enough"));
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));
  EXPECT_FALSE(is_valid_utf8("abc\xE2\x82"));
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));
}

}  // namespace
}  // namespace keel::data

// The bounded safetensors reader and the sharded weight store: valid files load; every
// kind of truncated or lying file is a clear InvalidArgument naming the file and tensor.

#include "backends/llm/model/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/llm/model/weight_store.h"

namespace sluice::llm {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sluice_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes u64 LE header length, the header text, then `data`.
  fs::path Write(const std::string& name, const std::string& header, const std::string& data,
                 std::optional<uint64_t> header_len = std::nullopt) {
    std::string bytes;
    uint64_t len = header_len.value_or(header.size());
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
    bytes += header + data;
    return WriteRaw(name, bytes);
  }
  fs::path WriteRaw(const std::string& name, const std::string& bytes) {
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

  // A valid two-tensor file: "a" F32 [2, 3] at [0, 24), "b" BF16 [4] at [24, 32).
  static nlohmann::json ValidHeader() {
    return {{"__metadata__", {{"format", "pt"}}},
            {"a", {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 24}}}},
            {"b", {{"dtype", "BF16"}, {"shape", {4}}, {"data_offsets", {24, 32}}}}};
  }

  // Opens `p`, expects InvalidArgument whose message holds every string of `needles` and
  // never the temporary directory's path.
  void ExpectError(const fs::path& p, const std::vector<std::string>& needles) {
    auto r = SafetensorsFile::Open(p);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    for (const auto& n : needles) {
      EXPECT_NE(r.status().message().find(n), std::string::npos)
          << "'" << n << "' not in: " << r.status().message();
    }
    EXPECT_EQ(r.status().message().find(dir_.string()), std::string::npos) << r.status().message();
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, ValidFileLoads) {
  std::string data(32, '\0');
  float vals[6] = {1, 2, 3, 4, 5, 6};
  std::memcpy(data.data(), vals, sizeof vals);
  auto p = Write("ok.safetensors", ValidHeader().dump(), data);
  auto r = SafetensorsFile::Open(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& f = **r;
  ASSERT_EQ(f.tensors().size(), 2u);
  const SafeTensor* a = f.Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, StDType::kF32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->elements, 6u);
  EXPECT_EQ(a->bytes, 24u);
  float got[6];
  std::memcpy(got, a->data, sizeof got);
  EXPECT_EQ(got[5], 6.f);
  EXPECT_EQ(f.Find("b")->dtype, StDType::kBF16);
  EXPECT_EQ(f.Find("missing"), nullptr);
  EXPECT_EQ(f.metadata().at("format"), "pt");
}

TEST_F(SafetensorsTest, AllDTypesKnown) {
  nlohmann::json h = {
      {"f16", {{"dtype", "F16"}, {"shape", {2}}, {"data_offsets", {0, 4}}}},
      {"i32", {{"dtype", "I32"}, {"shape", {1}}, {"data_offsets", {4, 8}}}},
      {"i8", {{"dtype", "I8"}, {"shape", {2}}, {"data_offsets", {8, 10}}}},
      {"u8", {{"dtype", "U8"}, {"shape", {2}}, {"data_offsets", {10, 12}}}},
      {"empty", {{"dtype", "F32"}, {"shape", {0, 5}}, {"data_offsets", {12, 12}}}},
      {"scalar",
       {{"dtype", "F32"}, {"shape", nlohmann::json::array()}, {"data_offsets", {12, 16}}}}};
  auto r = SafetensorsFile::Open(Write("t.safetensors", h.dump(), std::string(16, '\0')));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->Find("scalar")->elements, 1u);
  EXPECT_EQ((*r)->Find("empty")->elements, 0u);
}

TEST_F(SafetensorsTest, TruncatedBeforeHeaderLength) {
  ExpectError(WriteRaw("short.safetensors", "abc"), {"short.safetensors", "truncated"});
  ExpectError(WriteRaw("empty.safetensors", ""), {"empty.safetensors", "truncated"});
}

TEST_F(SafetensorsTest, HeaderLengthPastEndOfFile) {
  ExpectError(Write("h.safetensors", ValidHeader().dump(), std::string(32, '\0'), 100000),
              {"h.safetensors", "header length 100000", "past the end"});
}

TEST_F(SafetensorsTest, HeaderLengthOverCap) {
  ExpectError(Write("big.safetensors", "{}", "", uint64_t{1} << 40), {"big.safetensors", "limit"});
  ExpectError(Write("huge.safetensors", "{}", "", ~uint64_t{0}), {"huge.safetensors", "limit"});
}

TEST_F(SafetensorsTest, TruncatedDataSection) {
  // The header promises 32 bytes of data; the file holds 20.
  ExpectError(Write("cut.safetensors", ValidHeader().dump(), std::string(20, '\0')),
              {"cut.safetensors", "'a'", "outside the data section"});
}

TEST_F(SafetensorsTest, InvalidJsonAndNonObject) {
  ExpectError(Write("j.safetensors", "{\"a\": ", ""), {"j.safetensors", "invalid JSON"});
  ExpectError(Write("arr.safetensors", "[1,2]", ""), {"arr.safetensors", "not a JSON object"});
  std::string deep(200, '[');
  ExpectError(Write("deep.safetensors", "{\"x\":" + deep, ""), {"deep.safetensors", "nested"});
}

TEST_F(SafetensorsTest, OffsetsOutsideData) {
  auto h = ValidHeader();
  h["b"]["data_offsets"] = {24, 40};
  h["b"]["shape"] = {8};
  ExpectError(Write("o.safetensors", h.dump(), std::string(32, '\0')),
              {"o.safetensors", "'b'", "outside the data section"});
  h = ValidHeader();
  h["b"]["data_offsets"] = {30, 24};
  ExpectError(Write("rev.safetensors", h.dump(), std::string(32, '\0')),
              {"rev.safetensors", "'b'"});
  h = ValidHeader();
  h["b"]["data_offsets"] = {-1, 7};
  ExpectError(Write("neg.safetensors", h.dump(), std::string(32, '\0')),
              {"neg.safetensors", "'b'"});
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  auto h = ValidHeader();
  h["b"]["data_offsets"] = {20, 28};
  ExpectError(Write("ov.safetensors", h.dump(), std::string(32, '\0')),
              {"ov.safetensors", "overlaps"});
  // An empty tensor between two overlapping ones must not hide the overlap.
  h["z"] = {{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {22, 22}}};
  ExpectError(Write("ov2.safetensors", h.dump(), std::string(32, '\0')),
              {"ov2.safetensors", "overlaps"});
}

TEST_F(SafetensorsTest, ShapeTimesDTypeMismatch) {
  auto h = ValidHeader();
  h["a"]["shape"] = {2, 2};  // 16 bytes, offsets span 24
  ExpectError(Write("m.safetensors", h.dump(), std::string(32, '\0')),
              {"m.safetensors", "'a'", "span 24", "needs 16"});
}

TEST_F(SafetensorsTest, ShapeOverflow) {
  auto h = ValidHeader();
  h["a"]["shape"] = {uint64_t{1} << 40, uint64_t{1} << 40};
  ExpectError(Write("ovf.safetensors", h.dump(), std::string(32, '\0')),
              {"ovf.safetensors", "'a'", "overflow"});
  h["a"]["shape"] = {uint64_t{1} << 62};  // elements fit, bytes do not
  ExpectError(Write("ovf2.safetensors", h.dump(), std::string(32, '\0')),
              {"ovf2.safetensors", "'a'", "overflow"});
  h["a"]["shape"] = {1, 2, 1, 1, 1, 1, 1, 1, 3};
  ExpectError(Write("rank.safetensors", h.dump(), std::string(32, '\0')),
              {"rank.safetensors", "rank"});
  h["a"]["shape"] = {2, -3};
  ExpectError(Write("negdim.safetensors", h.dump(), std::string(32, '\0')),
              {"negdim.safetensors", "'a'"});
}

TEST_F(SafetensorsTest, UnknownDType) {
  auto h = ValidHeader();
  h["a"]["dtype"] = "F64";
  ExpectError(Write("d.safetensors", h.dump(), std::string(32, '\0')),
              {"d.safetensors", "'a'", "unsupported dtype 'F64'"});
  h["a"]["dtype"] = 5;
  ExpectError(Write("d2.safetensors", h.dump(), std::string(32, '\0')),
              {"d2.safetensors", "'a'", "dtype"});
}

TEST_F(SafetensorsTest, MalformedEntries) {
  auto h = ValidHeader();
  h["a"].erase("data_offsets");
  ExpectError(Write("e1.safetensors", h.dump(), std::string(32, '\0')), {"'a'", "data_offsets"});
  h = ValidHeader();
  h["a"]["data_offsets"] = {0, 24, 30};
  ExpectError(Write("e2.safetensors", h.dump(), std::string(32, '\0')), {"'a'", "data_offsets"});
  h = ValidHeader();
  h["a"] = "nope";
  ExpectError(Write("e3.safetensors", h.dump(), std::string(32, '\0')), {"'a'", "not an object"});
  h = ValidHeader();
  h["__metadata__"] = {{"k", 3}};
  ExpectError(Write("e4.safetensors", h.dump(), std::string(32, '\0')), {"__metadata__"});
}

TEST_F(SafetensorsTest, EveryTruncationOfAValidFileFailsCleanly) {
  std::string data(32, '\x01');
  std::string header = ValidHeader().dump();
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  bytes += header + data;
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = SafetensorsFile::Open(WriteRaw("cut.safetensors", bytes.substr(0, n)));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes loaded";
  }
  EXPECT_TRUE(SafetensorsFile::Open(WriteRaw("cut.safetensors", bytes)).ok());
}

TEST_F(SafetensorsTest, ShardedStore) {
  nlohmann::json h1 = {{"a", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}}};
  nlohmann::json h2 = {{"b", {{"dtype", "F16"}, {"shape", {2}}, {"data_offsets", {0, 4}}}}};
  Write("s1.safetensors", h1.dump(), std::string(8, '\0'));
  Write("s2.safetensors", h2.dump(), std::string(4, '\0'));
  nlohmann::json index = {{"metadata", {{"total_size", 12}}},
                          {"weight_map", {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}}}};
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();
  auto store = WeightStore::Open(dir_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const SafetensorsFile* file = nullptr;
  ASSERT_NE((*store)->Find("b", &file), nullptr);
  EXPECT_EQ(file->name(), "s2.safetensors");
  EXPECT_EQ((*store)->num_tensors(), 2u);

  index["weight_map"]["c"] = "s1.safetensors";  // not in that shard
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();
  auto r = WeightStore::Open(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'c' is not in s1.safetensors"), std::string::npos)
      << r.status().message();

  index["weight_map"]["c"] = "../s1.safetensors";  // escapes the folder
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();
  r = WeightStore::Open(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("invalid shard name"), std::string::npos);

  // A broken shard is reported by its name.
  index["weight_map"]["c"] = "s3.safetensors";
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();
  Write("s3.safetensors",
        "{\"c\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
        std::string(8, '\0'));
  r = WeightStore::Open(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("s3.safetensors"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("'c'"), std::string::npos) << r.status().message();
}

TEST_F(SafetensorsTest, MissingFiles) {
  auto r = WeightStore::Open(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  auto f = SafetensorsFile::Open(dir_ / "nope.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message().find(dir_.string()), std::string::npos);
}

}  // namespace
}  // namespace sluice::llm

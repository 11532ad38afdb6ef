// Pure codec pieces of the HTTP frontend: bounded JSON, base64, FP16/BF16, KServe request
// decoding and response encoding (no socket).

#include <cstring>

#include <gtest/gtest.h>

#include "frontend/http/base64.h"
#include "frontend/http/infer_codec.h"
#include "frontend/http/json_util.h"
#include "frontend/http/tensor_json.h"

namespace sluice::http {
namespace {

TEST(JsonUtil, DepthIsBoundedWithoutRecursion) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(JsonNestingDepth(deep), 100000u);
  auto r = ParseJsonBounded(deep, 64);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("100000"), std::string::npos);
  EXPECT_EQ(JsonNestingDepth(R"({"a":"[[[[{{{\"[["})"), 1u);  // brackets in strings ignored
  EXPECT_TRUE(ParseJsonBounded(R"({"a":[[1]]})", 3).ok());
  EXPECT_FALSE(ParseJsonBounded(R"({"a":[[1]]})", 2).ok());
  EXPECT_FALSE(ParseJsonBounded("{\"a\":", 8).ok());
  EXPECT_EQ(DumpJson(nlohmann::json(std::string("\xff"))), "\"\xEF\xBF\xBD\"");
}

TEST(Base64, RoundTripsAndRefusesGarbage) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto d = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(d.ok()) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(*Base64Decode("aGVsbG8="), "hello");
  EXPECT_EQ(*Base64Decode("aGVsbG8"), "hello");
  EXPECT_FALSE(Base64Decode("aGVs!G8=").ok());
  EXPECT_FALSE(Base64Decode("a").ok());
  EXPECT_FALSE(Base64Decode("aG=sbG8=").ok());
}

TEST(TensorJson, HalfAndBf16Conversions) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);  // overflow -> inf
  EXPECT_EQ(FloatToHalf(5.960464477539063e-08f), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalf(1.0f + 1.0f / 2048), 0x3c00);  // a tie rounds to even
  EXPECT_EQ(FloatToHalf(1.0f + 3.0f / 2048), 0x3c02);  // a tie rounds to even (up)
  for (uint16_t h : {0x0001, 0x03ff, 0x3555, 0x7bff, 0xc000}) EXPECT_EQ(FloatToHalf(HalfToFloat(h)), h) << h;
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(Bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(3.140625f)), 3.140625f);
}

TEST(InferCodec, DecodesNestedJsonAndBinaryInputs) {
  std::string json = R"({"id":"r1","parameters":{"binary_data_output":true,"p":3},
    "inputs":[{"name":"A","datatype":"INT32","shape":[2,2],"data":[[1,2],[3,4]]},
              {"name":"B","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":11}}],
    "outputs":[{"name":"A","parameters":{"binary_data":false}}]})";
  std::string bin;
  AppendBytesElement(bin, "abc");
  AppendBytesElement(bin, "");
  bin += std::string(4, '\0');  // 3 elements worth of prefix: must fail below
  auto bad = DecodeInferRequest(json + bin, std::to_string(json.size()), RequestLimits{});
  EXPECT_FALSE(bad.ok());  // 15 bytes of binary data, 11 declared
  bin.resize(11);
  auto r = DecodeInferRequest(json + bin, std::to_string(json.size()), RequestLimits{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->request.id, "r1");
  ASSERT_EQ(r->request.inputs.size(), 2u);
  int32_t v[4];
  std::memcpy(v, r->request.inputs[0].data.data(), 16);
  EXPECT_EQ(v[3], 4);
  EXPECT_EQ(r->request.parameters.count("binary_data_output"), 0u);
  EXPECT_EQ(std::get<int64_t>(r->request.parameters.at("p")), 3);
  EXPECT_FALSE(r->encoding.IsBinary("A"));
  EXPECT_TRUE(r->encoding.IsBinary("other"));
}

TEST(InferCodec, RefusesBadShapesAndData) {
  RequestLimits limits;
  limits.max_tensor_rank = 4;
  auto decode = [&](const std::string& inputs) {
    return DecodeInferRequest(R"({"inputs":[)" + inputs + "]}", "", limits);
  };
  EXPECT_TRUE(decode(R"({"name":"x","datatype":"FP16","shape":[2],"data":[1.5,-2]})").ok());
  EXPECT_FALSE(decode(R"({"name":"x","datatype":"INT32","shape":[3],"data":[1,2]})").ok());
  EXPECT_FALSE(decode(R"({"name":"x","datatype":"INT32","shape":[-1],"data":[]})").ok());
  EXPECT_FALSE(decode(R"({"name":"x","datatype":"INT32","shape":[4294967296,4294967296],"data":[1]})").ok());
  EXPECT_FALSE(decode(R"({"name":"x","datatype":"INT32","shape":[18446744073709551615],"data":[1]})").ok());
  EXPECT_FALSE(decode(R"({"name":"x","datatype":"INT32","shape":[1,1,1,1,1],"data":[1]})").ok());
  EXPECT_FALSE(decode(R"({"name":"x","datatype":"INT8","shape":[1],"data":[300]})").ok());
  EXPECT_FALSE(decode(R"({"name":"x","datatype":"UINT8","shape":[1],"data":[-1]})").ok());
  EXPECT_FALSE(decode(R"({"name":"x","datatype":"INT32","shape":[1],"data":["1"]})").ok());
  EXPECT_FALSE(decode(R"({"name":"x","datatype":"BOOL","shape":[1],"data":[1]})").ok());
  EXPECT_FALSE(decode(R"({"name":"x","datatype":"FLOAT","shape":[1],"data":[1]})").ok());
  EXPECT_FALSE(DecodeInferRequest("{}", "", limits).ok());
  EXPECT_FALSE(DecodeInferRequest(R"({"inputs":[]})", "99", limits).ok());  // header past the body
  EXPECT_FALSE(DecodeInferRequest(R"({"inputs":[]})", "abc", limits).ok());
}

TEST(InferCodec, EachMalformedFieldIsNamed) {
  const std::string x = R"("name":"x","datatype":"INT32","shape":[1])";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[]", "inference request must be a JSON object"},
      {R"({"id":1,"inputs":[]})", "'id' must be a string"},
      {R"({"parameters":{"binary_data_output":1},"inputs":[]})",
       "parameter 'binary_data_output' must be a bool"},
      {R"({"inputs":{}})", "'inputs' must be an array"},
      {R"({"inputs":[1]})", "each input must be a JSON object"},
      {R"({"inputs":[{"name":2}]})", "input without a 'name' string"},
      {R"({"inputs":[{"name":"x"}]})", "input 'x': missing 'datatype'"},
      {R"({"inputs":[{"name":"x","datatype":"INT33"}]})", "input 'x': unknown datatype 'INT33'"},
      {R"({"inputs":[{"name":"x","datatype":"INT32"}]})", "input 'x': missing 'shape'"},
      {R"({"inputs":[{)" + x + R"(,"parameters":1}]})",
       "input 'x': 'parameters' must be an object"},
      {R"({"inputs":[{)" + x + R"(,"parameters":{"binary_data_size":-1}}]})",
       "input 'x': 'binary_data_size' must be a non-negative integer"},
      {R"({"inputs":[{)" + x + R"(,"data":[1],"parameters":{"binary_data_size":4}}]})",
       "input 'x' has both 'data' and 'binary_data_size'"},
      {R"({"inputs":[{)" + x + R"(,"parameters":{"binary_data_size":4}}]})",
       "input 'x' has 'binary_data_size' but the request has no Inference-Header-Content-Length"},
      {R"({"inputs":[{)" + x + "}]}", "input 'x' has no 'data'"},
      {R"({"inputs":[{)" + x + R"(,"data":[1,2]}]})", "input 'x': shape [1] needs 1 elements, got"},
      {R"({"inputs":[],"outputs":{}})", "'outputs' must be an array"},
      {R"({"inputs":[],"outputs":[1]})", "each output must be a JSON object"},
      {R"({"inputs":[],"outputs":[{}]})", "output without a 'name' string"},
      {R"({"inputs":[],"outputs":[{"name":"o","parameters":1}]})",
       "output 'o': 'parameters' must be an object"},
      {R"({"inputs":[],"outputs":[{"name":"o","parameters":{"binary_data":1}}]})",
       "output 'o': 'binary_data' must be a bool"},
  };
  for (const auto& [body, message] : cases) {
    auto r = DecodeInferRequest(body, "", RequestLimits{});
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_NE(r.status().message().find(message), std::string::npos) << r.status().message();
  }
  // The binary section: an input that runs past its end, bytes that no input takes.
  const std::string json = R"({"inputs":[{)" + x + R"(,"parameters":{"binary_data_size":4}}]})";
  auto past = DecodeInferRequest(json + "abc", std::to_string(json.size()), RequestLimits{});
  ASSERT_FALSE(past.ok());
  EXPECT_NE(
      past.status().message().find("input 'x': binary_data_size 4 runs past the end of the body"),
      std::string::npos)
      << past.status().message();
  auto left = DecodeInferRequest(json + "abcde", std::to_string(json.size()), RequestLimits{});
  ASSERT_FALSE(left.ok());
  EXPECT_NE(left.status().message().find("binary tensor data is 5 bytes but inputs use 4"),
            std::string::npos)
      << left.status().message();
  auto exact = DecodeInferRequest(json + "abcd", std::to_string(json.size()), RequestLimits{});
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  EXPECT_EQ(exact->request.inputs.at(0).data, "abcd");
}

TEST(InferCodec, EncodesBinaryAndJsonOutputs) {
  InferResponse resp;
  resp.model_name = "m";
  resp.model_version = 2;
  Tensor a{"A", DataType::kFp16, {2}, std::string(4, '\0')};
  uint16_t h[2] = {FloatToHalf(1.5f), FloatToHalf(-2.0f)};
  std::memcpy(a.data.data(), h, 4);
  Tensor b{"B", DataType::kBytes, {1}, ""};
  AppendBytesElement(b.data, "hi");
  resp.outputs = {a, b};
  OutputEncoding enc;
  enc.binary["B"] = true;
  auto e = EncodeInferResponse(resp, enc);
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->json_length.has_value());
  auto j = nlohmann::json::parse(e->body.substr(0, *e->json_length));
  EXPECT_EQ(j["model_version"], "2");
  EXPECT_EQ(j["outputs"][0]["data"], nlohmann::json::parse("[1.5,-2.0]"));
  EXPECT_EQ(j["outputs"][1]["parameters"]["binary_data_size"], 6);
  EXPECT_EQ(e->body.substr(*e->json_length), b.data);
  Tensor broken{"C", DataType::kInt32, {2}, "abc"};
  resp.outputs = {broken};
  EXPECT_FALSE(EncodeInferResponse(resp, OutputEncoding{}).ok());
}

}  // namespace
}  // namespace sluice::http

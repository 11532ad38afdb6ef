// ModelInferRequest / ModelInferResponse <-> core InferRequest / InferResponse.

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "frontend/grpc/grpc_status.h"
#include "frontend/grpc/infer_codec.h"

namespace sluice::grpc_frontend {
namespace {

inference::ModelInferRequest::InferInputTensor* AddInput(inference::ModelInferRequest& r,
                                                         const std::string& name,
                                                         const std::string& datatype,
                                                         std::vector<int64_t> shape) {
  auto* in = r.add_inputs();
  in->set_name(name);
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  return in;
}

template <typename T>
std::vector<T> As(const std::string& data) {
  std::vector<T> v(data.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), data.data(), v.size() * sizeof(T));
  return v;
}

TEST(GrpcCodec, TypedContentsOfEveryType) {
  inference::ModelInferRequest r;
  r.set_model_name("m");
  r.set_model_version("3");
  AddInput(r, "b", "BOOL", {2})->mutable_contents()->mutable_bool_contents()->Add(true);
  r.mutable_inputs(0)->mutable_contents()->add_bool_contents(false);
  AddInput(r, "i8", "INT8", {1})->mutable_contents()->add_int_contents(-128);
  AddInput(r, "u16", "UINT16", {1})->mutable_contents()->add_uint_contents(65535);
  AddInput(r, "i64", "INT64", {1})->mutable_contents()->add_int64_contents(-(int64_t{1} << 40));
  AddInput(r, "u64", "UINT64", {1})->mutable_contents()->add_uint64_contents(~uint64_t{0});
  AddInput(r, "f32", "FP32", {1})->mutable_contents()->add_fp32_contents(1.5f);
  AddInput(r, "f64", "FP64", {1})->mutable_contents()->add_fp64_contents(-2.25);
  AddInput(r, "s", "BYTES", {1, 1})->mutable_contents()->add_bytes_contents("abc");
  auto parsed = ParseInferRequest(r);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->model_version, 3);
  const auto& in = parsed->inputs;
  ASSERT_EQ(in.size(), 8u);
  EXPECT_EQ(in[0].data, std::string("\x01\x00", 2));
  EXPECT_EQ(As<int8_t>(in[1].data), std::vector<int8_t>{-128});
  EXPECT_EQ(As<uint16_t>(in[2].data), std::vector<uint16_t>{65535});
  EXPECT_EQ(As<int64_t>(in[3].data), std::vector<int64_t>{-(int64_t{1} << 40)});
  EXPECT_EQ(As<uint64_t>(in[4].data), std::vector<uint64_t>{~uint64_t{0}});
  EXPECT_EQ(As<float>(in[5].data), std::vector<float>{1.5f});
  EXPECT_EQ(As<double>(in[6].data), std::vector<double>{-2.25});
  EXPECT_EQ(in[7].data, std::string("\x03\0\0\0abc", 7));
  EXPECT_EQ(in[7].shape, (Shape{1, 1}));
}

TEST(GrpcCodec, RefusesBadInputs) {
  auto expect_invalid = [](inference::ModelInferRequest r, const std::string& needle) {
    auto parsed = ParseInferRequest(r);
    ASSERT_FALSE(parsed.ok()) << needle;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(needle), std::string::npos)
        << parsed.status().message();
  };
  {  // value out of range for INT8
    inference::ModelInferRequest r;
    AddInput(r, "x", "INT8", {1})->mutable_contents()->add_int_contents(128);
    expect_invalid(r, "out of range");
  }
  {  // count mismatch
    inference::ModelInferRequest r;
    AddInput(r, "x", "INT32", {3})->mutable_contents()->add_int_contents(1);
    expect_invalid(r, "needs 3 elements");
  }
  {  // FP16 must be raw
    inference::ModelInferRequest r;
    AddInput(r, "x", "FP16", {1})->mutable_contents()->add_fp32_contents(1);
    expect_invalid(r, "raw_input_contents");
  }
  {  // raw and typed at once
    inference::ModelInferRequest r;
    AddInput(r, "x", "INT32", {1})->mutable_contents()->add_int_contents(1);
    r.add_raw_input_contents(std::string(4, '\0'));
    expect_invalid(r, "must not be set");
  }
  {  // raw count differs from inputs
    inference::ModelInferRequest r;
    AddInput(r, "x", "INT32", {1});
    AddInput(r, "y", "INT32", {1});
    r.add_raw_input_contents(std::string(4, '\0'));
    expect_invalid(r, "one per input");
  }
  {  // raw size differs from shape
    inference::ModelInferRequest r;
    AddInput(r, "x", "INT32", {2});
    r.add_raw_input_contents(std::string(4, '\0'));
    expect_invalid(r, "'x'");
  }
  {  // BYTES raw with a length prefix past the end
    inference::ModelInferRequest r;
    AddInput(r, "s", "BYTES", {1});
    r.add_raw_input_contents(std::string("\x09\0\0\0ab", 6));
    expect_invalid(r, "'s'");
  }
  {  // shape whose element count overflows
    inference::ModelInferRequest r;
    AddInput(r, "x", "INT32", {int64_t{1} << 40, int64_t{1} << 40});
    r.add_raw_input_contents("");
    expect_invalid(r, "elements");
  }
  {  // negative dimension
    inference::ModelInferRequest r;
    AddInput(r, "x", "INT32", {-1});
    r.add_raw_input_contents("");
    expect_invalid(r, "negative");
  }
  {  // no data at all
    inference::ModelInferRequest r;
    AddInput(r, "x", "INT32", {1});
    expect_invalid(r, "no data");
  }
  {  // unknown datatype
    inference::ModelInferRequest r;
    AddInput(r, "x", "INT128", {1});
    expect_invalid(r, "INT128");
  }
  {  // bad version
    inference::ModelInferRequest r;
    r.set_model_version("1a");
    expect_invalid(r, "version");
  }
  {  // uint64 parameter past INT64_MAX
    inference::ModelInferRequest r;
    (*r.mutable_parameters())["seed"].set_uint64_param(~uint64_t{0});
    expect_invalid(r, "seed");
  }
  {  // parameter without a value
    inference::ModelInferRequest r;
    (*r.mutable_parameters())["p"];
    expect_invalid(r, "'p'");
  }
}

TEST(GrpcCodec, EmptyTensorNeedsNoData) {
  inference::ModelInferRequest r;
  AddInput(r, "x", "FP32", {0, 4});
  auto parsed = ParseInferRequest(r);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->inputs[0].data.empty());
}

TEST(GrpcCodec, ParametersBothWays) {
  inference::ModelInferRequest r;
  auto& p = *r.mutable_parameters();
  p["b"].set_bool_param(true);
  p["i"].set_int64_param(-5);
  p["u"].set_uint64_param(7);
  p["d"].set_double_param(0.25);
  p["s"].set_string_param("x");
  auto parsed = ParseInferRequest(r);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(std::get<bool>(parsed->parameters.at("b")), true);
  EXPECT_EQ(std::get<int64_t>(parsed->parameters.at("i")), -5);
  EXPECT_EQ(std::get<int64_t>(parsed->parameters.at("u")), 7);
  EXPECT_EQ(std::get<double>(parsed->parameters.at("d")), 0.25);
  EXPECT_EQ(std::get<std::string>(parsed->parameters.at("s")), "x");
  EXPECT_EQ(parsed->model_version, -1);

  InferResponse resp;
  resp.model_name = "m";
  resp.model_version = 2;
  resp.id = "7";
  resp.parameters = parsed->parameters;
  resp.outputs.push_back(Tensor{"o", DataType::kFp32, {1}, std::string(4, 'z')});
  inference::ModelInferResponse out;
  RenderInferResponse(resp, &out);
  EXPECT_EQ(out.model_version(), "2");
  EXPECT_EQ(out.parameters().at("d").double_param(), 0.25);
  EXPECT_EQ(out.parameters().at("b").bool_param(), true);
  EXPECT_EQ(out.outputs(0).datatype(), "FP32");
  EXPECT_EQ(out.raw_output_contents(0), std::string(4, 'z'));
}

TEST(GrpcStatus, MapsEveryCode) {
  EXPECT_EQ(ToGrpcCode(StatusCode::kOk), ::grpc::StatusCode::OK);
  EXPECT_EQ(ToGrpcCode(StatusCode::kInvalidArgument), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcCode(StatusCode::kNotFound), ::grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ToGrpcCode(StatusCode::kAlreadyExists), ::grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(ToGrpcCode(StatusCode::kUnavailable), ::grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcCode(StatusCode::kUnsupported), ::grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(ToGrpcCode(StatusCode::kInternal), ::grpc::StatusCode::INTERNAL);
  EXPECT_EQ(ToGrpcCode(StatusCode::kCancelled), ::grpc::StatusCode::CANCELLED);
  EXPECT_EQ(ToGrpcCode(StatusCode::kDeadlineExceeded), ::grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(ToGrpcCode(StatusCode::kResourceExhausted), ::grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcCode(StatusCode::kUnknown), ::grpc::StatusCode::UNKNOWN);
  auto st = ToGrpcStatus(NotFound("model 'x'"));
  EXPECT_EQ(st.error_message(), "model 'x'");
}

}  // namespace
}  // namespace sluice::grpc_frontend

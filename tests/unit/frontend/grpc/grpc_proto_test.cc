// Wire compatibility with Triton: package, service, RPCs and the field numbers of every
// message of proto/grpc_service.proto, checked through the generated descriptors against
// numbers copied by hand from Triton's published protobuf/grpc_service.proto
// (triton-inference-server/common).

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "grpc_service.grpc.pb.h"

namespace sluice::grpc_frontend {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

const google::protobuf::FileDescriptor* File() {
  return inference::ModelInferRequest::descriptor()->file();
}

struct Rpc {
  const char* name;
  const char* input;
  const char* output;
  bool client_streaming;
  bool server_streaming;
};

const std::vector<Rpc> kTritonRpcs = {
    {"ServerLive", "ServerLiveRequest", "ServerLiveResponse", false, false},
    {"ServerReady", "ServerReadyRequest", "ServerReadyResponse", false, false},
    {"ModelReady", "ModelReadyRequest", "ModelReadyResponse", false, false},
    {"ServerMetadata", "ServerMetadataRequest", "ServerMetadataResponse", false, false},
    {"ModelMetadata", "ModelMetadataRequest", "ModelMetadataResponse", false, false},
    {"ModelInfer", "ModelInferRequest", "ModelInferResponse", false, false},
    {"ModelStreamInfer", "ModelInferRequest", "ModelStreamInferResponse", true, true},
    {"ModelConfig", "ModelConfigRequest", "ModelConfigResponse", false, false},
    {"ModelStatistics", "ModelStatisticsRequest", "ModelStatisticsResponse", false, false},
    {"RepositoryIndex", "RepositoryIndexRequest", "RepositoryIndexResponse", false, false},
    {"RepositoryModelLoad", "RepositoryModelLoadRequest", "RepositoryModelLoadResponse", false,
     false},
    {"RepositoryModelUnload", "RepositoryModelUnloadRequest", "RepositoryModelUnloadResponse",
     false, false},
    {"SystemSharedMemoryStatus", "SystemSharedMemoryStatusRequest",
     "SystemSharedMemoryStatusResponse", false, false},
    {"SystemSharedMemoryRegister", "SystemSharedMemoryRegisterRequest",
     "SystemSharedMemoryRegisterResponse", false, false},
    {"SystemSharedMemoryUnregister", "SystemSharedMemoryUnregisterRequest",
     "SystemSharedMemoryUnregisterResponse", false, false},
    {"CudaSharedMemoryStatus", "CudaSharedMemoryStatusRequest", "CudaSharedMemoryStatusResponse",
     false, false},
    {"CudaSharedMemoryRegister", "CudaSharedMemoryRegisterRequest",
     "CudaSharedMemoryRegisterResponse", false, false},
    {"CudaSharedMemoryUnregister", "CudaSharedMemoryUnregisterRequest",
     "CudaSharedMemoryUnregisterResponse", false, false},
    {"TraceSetting", "TraceSettingRequest", "TraceSettingResponse", false, false},
    {"LogSettings", "LogSettingsRequest", "LogSettingsResponse", false, false},
};

struct Field {
  const char* name;
  int number;
  FieldDescriptor::Type type;
  bool repeated;  // map fields count as repeated
};

struct Message {
  const char* name;  // full name without the package
  std::vector<Field> fields;
};

constexpr auto kBool = FieldDescriptor::TYPE_BOOL;
constexpr auto kString = FieldDescriptor::TYPE_STRING;
constexpr auto kBytes = FieldDescriptor::TYPE_BYTES;
constexpr auto kInt32 = FieldDescriptor::TYPE_INT32;
constexpr auto kInt64 = FieldDescriptor::TYPE_INT64;
constexpr auto kUint32 = FieldDescriptor::TYPE_UINT32;
constexpr auto kUint64 = FieldDescriptor::TYPE_UINT64;
constexpr auto kFloat = FieldDescriptor::TYPE_FLOAT;
constexpr auto kDouble = FieldDescriptor::TYPE_DOUBLE;
constexpr auto kMsg = FieldDescriptor::TYPE_MESSAGE;

// Every message of Triton's grpc_service.proto with its fields (name, number, type).
const std::vector<Message> kTritonMessages = {
    {"ServerLiveRequest", {}},
    {"ServerLiveResponse", {{"live", 1, kBool, false}}},
    {"ServerReadyRequest", {}},
    {"ServerReadyResponse", {{"ready", 1, kBool, false}}},
    {"ModelReadyRequest", {{"name", 1, kString, false}, {"version", 2, kString, false}}},
    {"ModelReadyResponse", {{"ready", 1, kBool, false}}},
    {"ServerMetadataRequest", {}},
    {"ServerMetadataResponse",
     {{"name", 1, kString, false},
      {"version", 2, kString, false},
      {"extensions", 3, kString, true}}},
    {"ModelMetadataRequest", {{"name", 1, kString, false}, {"version", 2, kString, false}}},
    {"ModelMetadataResponse.TensorMetadata",
     {{"name", 1, kString, false}, {"datatype", 2, kString, false}, {"shape", 3, kInt64, true}}},
    {"ModelMetadataResponse",
     {{"name", 1, kString, false},
      {"versions", 2, kString, true},
      {"platform", 3, kString, false},
      {"inputs", 4, kMsg, true},
      {"outputs", 5, kMsg, true}}},
    {"InferParameter",
     {{"bool_param", 1, kBool, false},
      {"int64_param", 2, kInt64, false},
      {"string_param", 3, kString, false},
      {"double_param", 4, kDouble, false},
      {"uint64_param", 5, kUint64, false}}},
    {"InferTensorContents",
     {{"bool_contents", 1, kBool, true},
      {"int_contents", 2, kInt32, true},
      {"int64_contents", 3, kInt64, true},
      {"uint_contents", 4, kUint32, true},
      {"uint64_contents", 5, kUint64, true},
      {"fp32_contents", 6, kFloat, true},
      {"fp64_contents", 7, kDouble, true},
      {"bytes_contents", 8, kBytes, true}}},
    {"ModelInferRequest.InferInputTensor",
     {{"name", 1, kString, false},
      {"datatype", 2, kString, false},
      {"shape", 3, kInt64, true},
      {"parameters", 4, kMsg, true},
      {"contents", 5, kMsg, false}}},
    {"ModelInferRequest.InferRequestedOutputTensor",
     {{"name", 1, kString, false}, {"parameters", 2, kMsg, true}}},
    {"ModelInferRequest",
     {{"model_name", 1, kString, false},
      {"model_version", 2, kString, false},
      {"id", 3, kString, false},
      {"parameters", 4, kMsg, true},
      {"inputs", 5, kMsg, true},
      {"outputs", 6, kMsg, true},
      {"raw_input_contents", 7, kBytes, true}}},
    {"ModelInferResponse.InferOutputTensor",
     {{"name", 1, kString, false},
      {"datatype", 2, kString, false},
      {"shape", 3, kInt64, true},
      {"parameters", 4, kMsg, true},
      {"contents", 5, kMsg, false}}},
    {"ModelInferResponse",
     {{"model_name", 1, kString, false},
      {"model_version", 2, kString, false},
      {"id", 3, kString, false},
      {"parameters", 4, kMsg, true},
      {"outputs", 5, kMsg, true},
      {"raw_output_contents", 6, kBytes, true}}},
    {"ModelStreamInferResponse",
     {{"error_message", 1, kString, false}, {"infer_response", 2, kMsg, false}}},
    {"ModelConfigRequest", {{"name", 1, kString, false}, {"version", 2, kString, false}}},
    {"ModelConfigResponse", {{"config", 1, kMsg, false}}},
    {"ModelStatisticsRequest", {{"name", 1, kString, false}, {"version", 2, kString, false}}},
    {"StatisticDuration", {{"count", 1, kUint64, false}, {"ns", 2, kUint64, false}}},
    {"InferStatistics",
     {{"success", 1, kMsg, false},
      {"fail", 2, kMsg, false},
      {"queue", 3, kMsg, false},
      {"compute_input", 4, kMsg, false},
      {"compute_infer", 5, kMsg, false},
      {"compute_output", 6, kMsg, false},
      {"cache_hit", 7, kMsg, false},
      {"cache_miss", 8, kMsg, false}}},
    {"InferResponseStatistics",
     {{"compute_infer", 1, kMsg, false},
      {"compute_output", 2, kMsg, false},
      {"success", 3, kMsg, false},
      {"fail", 4, kMsg, false},
      {"empty_response", 5, kMsg, false},
      {"cancel", 6, kMsg, false}}},
    {"InferBatchStatistics",
     {{"batch_size", 1, kUint64, false},
      {"compute_input", 2, kMsg, false},
      {"compute_infer", 3, kMsg, false},
      {"compute_output", 4, kMsg, false}}},
    {"MemoryUsage",
     {{"type", 1, kString, false}, {"id", 2, kInt64, false}, {"byte_size", 3, kUint64, false}}},
    {"ModelStatistics",
     {{"name", 1, kString, false},
      {"version", 2, kString, false},
      {"last_inference", 3, kUint64, false},
      {"inference_count", 4, kUint64, false},
      {"execution_count", 5, kUint64, false},
      {"inference_stats", 6, kMsg, false},
      {"batch_stats", 7, kMsg, true},
      {"memory_usage", 8, kMsg, true},
      {"response_stats", 9, kMsg, true}}},
    {"ModelStatisticsResponse", {{"model_stats", 1, kMsg, true}}},
    {"ModelRepositoryParameter",
     {{"bool_param", 1, kBool, false},
      {"int64_param", 2, kInt64, false},
      {"string_param", 3, kString, false},
      {"bytes_param", 4, kBytes, false}}},
    {"RepositoryIndexRequest",
     {{"repository_name", 1, kString, false}, {"ready", 2, kBool, false}}},
    {"RepositoryIndexResponse.ModelIndex",
     {{"name", 1, kString, false},
      {"version", 2, kString, false},
      {"state", 3, kString, false},
      {"reason", 4, kString, false}}},
    {"RepositoryIndexResponse", {{"models", 1, kMsg, true}}},
    {"RepositoryModelLoadRequest",
     {{"repository_name", 1, kString, false},
      {"model_name", 2, kString, false},
      {"parameters", 3, kMsg, true}}},
    {"RepositoryModelLoadResponse", {}},
    {"RepositoryModelUnloadRequest",
     {{"repository_name", 1, kString, false},
      {"model_name", 2, kString, false},
      {"parameters", 3, kMsg, true}}},
    {"RepositoryModelUnloadResponse", {}},
    {"SystemSharedMemoryStatusRequest", {{"name", 1, kString, false}}},
    {"SystemSharedMemoryStatusResponse.RegionStatus",
     {{"name", 1, kString, false},
      {"key", 2, kString, false},
      {"offset", 3, kUint64, false},
      {"byte_size", 4, kUint64, false}}},
    {"SystemSharedMemoryStatusResponse", {{"regions", 1, kMsg, true}}},
    {"SystemSharedMemoryRegisterRequest",
     {{"name", 1, kString, false},
      {"key", 2, kString, false},
      {"offset", 3, kUint64, false},
      {"byte_size", 4, kUint64, false}}},
    {"SystemSharedMemoryRegisterResponse", {}},
    {"SystemSharedMemoryUnregisterRequest", {{"name", 1, kString, false}}},
    {"SystemSharedMemoryUnregisterResponse", {}},
    {"CudaSharedMemoryStatusRequest", {{"name", 1, kString, false}}},
    {"CudaSharedMemoryStatusResponse.RegionStatus",
     {{"name", 1, kString, false},
      {"device_id", 2, kUint64, false},
      {"byte_size", 3, kUint64, false}}},
    {"CudaSharedMemoryStatusResponse", {{"regions", 1, kMsg, true}}},
    {"CudaSharedMemoryRegisterRequest",
     {{"name", 1, kString, false},
      {"raw_handle", 2, kBytes, false},
      {"device_id", 3, kInt64, false},
      {"byte_size", 4, kUint64, false}}},
    {"CudaSharedMemoryRegisterResponse", {}},
    {"CudaSharedMemoryUnregisterRequest", {{"name", 1, kString, false}}},
    {"CudaSharedMemoryUnregisterResponse", {}},
    {"TraceSettingRequest.SettingValue", {{"value", 1, kString, true}}},
    {"TraceSettingRequest", {{"settings", 1, kMsg, true}, {"model_name", 2, kString, false}}},
    {"TraceSettingResponse.SettingValue", {{"value", 1, kString, true}}},
    {"TraceSettingResponse", {{"settings", 1, kMsg, true}}},
    {"LogSettingsRequest.SettingValue",
     {{"bool_param", 1, kBool, false},
      {"uint32_param", 2, kUint32, false},
      {"string_param", 3, kString, false}}},
    {"LogSettingsRequest", {{"settings", 1, kMsg, true}}},
    {"LogSettingsResponse.SettingValue",
     {{"bool_param", 1, kBool, false},
      {"uint32_param", 2, kUint32, false},
      {"string_param", 3, kString, false}}},
    {"LogSettingsResponse", {{"settings", 1, kMsg, true}}},
};

TEST(GrpcProto, PackageAndService) {
  EXPECT_EQ(File()->package(), "inference");
  ASSERT_EQ(File()->service_count(), 1);
  EXPECT_EQ(File()->service(0)->full_name(), "inference.GRPCInferenceService");
}

TEST(GrpcProto, RpcsMatchTriton) {
  const auto* service = File()->FindServiceByName("GRPCInferenceService");
  ASSERT_NE(service, nullptr);
  EXPECT_EQ(service->method_count(), static_cast<int>(kTritonRpcs.size()));
  for (const Rpc& rpc : kTritonRpcs) {
    const auto* m = service->FindMethodByName(rpc.name);
    ASSERT_NE(m, nullptr) << rpc.name;
    EXPECT_EQ(m->input_type()->full_name(), std::string("inference.") + rpc.input) << rpc.name;
    EXPECT_EQ(m->output_type()->full_name(), std::string("inference.") + rpc.output) << rpc.name;
    EXPECT_EQ(m->client_streaming(), rpc.client_streaming) << rpc.name;
    EXPECT_EQ(m->server_streaming(), rpc.server_streaming) << rpc.name;
  }
}

TEST(GrpcProto, MessageFieldNumbersMatchTriton) {
  const auto* pool = File()->pool();
  for (const Message& msg : kTritonMessages) {
    const std::string full = std::string("inference.") + msg.name;
    const Descriptor* d = pool->FindMessageTypeByName(full);
    ASSERT_NE(d, nullptr) << full;
    EXPECT_EQ(d->field_count(), static_cast<int>(msg.fields.size())) << full;
    for (const Field& f : msg.fields) {
      const FieldDescriptor* fd = d->FindFieldByName(f.name);
      ASSERT_NE(fd, nullptr) << full << "." << f.name;
      EXPECT_EQ(fd->number(), f.number) << full << "." << f.name;
      EXPECT_EQ(fd->type(), f.type) << full << "." << f.name;
      EXPECT_EQ(fd->is_repeated(), f.repeated) << full << "." << f.name;
    }
  }
}

TEST(GrpcProto, OneofsAndMapsMatchTriton) {
  const auto* pool = File()->pool();
  for (const char* name : {"inference.InferParameter", "inference.ModelRepositoryParameter",
                           "inference.LogSettingsRequest.SettingValue",
                           "inference.LogSettingsResponse.SettingValue"}) {
    const Descriptor* d = pool->FindMessageTypeByName(name);
    ASSERT_NE(d, nullptr) << name;
    ASSERT_EQ(d->oneof_decl_count(), 1) << name;
    EXPECT_EQ(d->oneof_decl(0)->name(), "parameter_choice") << name;
    EXPECT_EQ(d->oneof_decl(0)->field_count(), d->field_count()) << name;
  }
  struct MapField {
    const char* message;
    const char* field;
    const char* value_type;
  };
  for (const MapField& m : std::vector<MapField>{
           {"inference.ModelInferRequest", "parameters", "inference.InferParameter"},
           {"inference.ModelInferRequest.InferInputTensor", "parameters",
            "inference.InferParameter"},
           {"inference.ModelInferResponse", "parameters", "inference.InferParameter"},
           {"inference.ModelStatistics", "response_stats", "inference.InferResponseStatistics"},
           {"inference.RepositoryModelLoadRequest", "parameters",
            "inference.ModelRepositoryParameter"},
           {"inference.LogSettingsRequest", "settings",
            "inference.LogSettingsRequest.SettingValue"},
           {"inference.TraceSettingRequest", "settings",
            "inference.TraceSettingRequest.SettingValue"},
           {"inference.SystemSharedMemoryStatusResponse", "regions",
            "inference.SystemSharedMemoryStatusResponse.RegionStatus"}}) {
    const FieldDescriptor* fd = pool->FindMessageTypeByName(m.message)->FindFieldByName(m.field);
    ASSERT_NE(fd, nullptr) << m.message << "." << m.field;
    ASSERT_TRUE(fd->is_map()) << m.message << "." << m.field;
    EXPECT_EQ(fd->message_type()->map_key()->type(), kString);
    EXPECT_EQ(fd->message_type()->map_value()->message_type()->full_name(), m.value_type);
  }
  // ModelConfigResponse.config is Triton's ModelConfig from model_config.proto.
  EXPECT_EQ(inference::ModelConfigResponse::descriptor()
                ->FindFieldByName("config")
                ->message_type()
                ->full_name(),
            "inference.ModelConfig");
}

TEST(GrpcProto, EveryMessageIsChecked) {
  // A message added to the proto without Triton's numbers in this test fails here.
  int messages = 0;
  std::function<void(const Descriptor*)> count = [&](const Descriptor* d) {
    if (d->options().map_entry()) return;
    ++messages;
    for (int i = 0; i < d->nested_type_count(); ++i) count(d->nested_type(i));
  };
  for (int i = 0; i < File()->message_type_count(); ++i) count(File()->message_type(i));
  EXPECT_EQ(messages, static_cast<int>(kTritonMessages.size()));
}

}  // namespace
}  // namespace sluice::grpc_frontend

// The server <-> stub wire protocol: round-trips of every message, the shared-memory path,
// and rejection of garbage (each case must fail with a clear error, never crash).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <limits>
#include <thread>

#include "common/tensor.h"
#include "ipc/channel.h"
#include "ipc/connection.h"
#include "ipc/instance_spec_codec.h"
#include "ipc/message.h"
#include "ipc/metric_codec.h"
#include "ipc/shm_arena.h"
#include "ipc/wire_buffer.h"

namespace sluice::ipc {
namespace {

using std::chrono::milliseconds;

Tensor Int32Tensor(std::string name, std::vector<int32_t> v) {
  return Tensor{std::move(name),
                DataType::kInt32,
                {static_cast<int64_t>(v.size())},
                std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4)};
}

Tensor BytesTensor(std::string name, std::vector<std::string> v) {
  std::string data;
  for (const auto& s : v) AppendBytesElement(data, s);
  return Tensor{std::move(name), DataType::kBytes, {static_cast<int64_t>(v.size())}, data};
}

// Encodes, then decodes the frame as a receiver would (no shared memory).
Result<Message> RoundTrip(const Message& m) {
  ASSIGN_OR_RETURN(std::string frame, EncodeMessage(m, nullptr));
  ASSIGN_OR_RETURN(FrameHeader h, DecodeFrameHeader(frame));
  std::vector<ShmBlock> release;
  return DecodeMessage(h, std::string_view(frame).substr(kFrameHeaderSize), {}, &release);
}

Result<Message> DecodeFrame(const std::string& frame, std::span<const char> area = {}) {
  ASSIGN_OR_RETURN(FrameHeader h, DecodeFrameHeader(frame));
  std::vector<ShmBlock> release;
  return DecodeMessage(h, std::string_view(frame).substr(kFrameHeaderSize), area, &release);
}

void ExpectTensorEq(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.datatype, b.datatype);
  EXPECT_EQ(a.shape, b.shape);
  EXPECT_EQ(a.data, b.data);
}

InstanceSpec GpuInstance() {
  InstanceSpec spec;
  spec.model_name = "m";
  spec.model_version = 7;
  spec.config.set_name("m");
  spec.config.set_backend("vllm");
  auto* group = spec.config.add_instance_group();
  group->set_kind(inference::ModelInstanceGroup::KIND_GPU);
  group->add_gpus(1);
  (*spec.config.mutable_parameters())["p"].set_string_value("caf\u00e9 \t");
  spec.model_dir = "/r/m";
  spec.version_dir = "/r/m/7";
  spec.instance_index = 3;
  spec.kind = InstanceKind::kGpu;
  spec.gpu_id = 1;
  spec.cpu_threads = 4;
  spec.verbose_log = true;
  return spec;
}

void ExpectSpecEq(const InstanceSpec& got, const InstanceSpec& want) {
  EXPECT_EQ(got.model_name, want.model_name);
  EXPECT_EQ(got.model_version, want.model_version);
  EXPECT_EQ(got.config.SerializeAsString(), want.config.SerializeAsString());
  EXPECT_EQ(got.model_dir, want.model_dir);
  EXPECT_EQ(got.version_dir, want.version_dir);
  EXPECT_EQ(got.instance_index, want.instance_index);
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(got.gpu_id, want.gpu_id);
  EXPECT_EQ(got.cpu_threads, want.cpu_threads);
  EXPECT_EQ(got.verbose_log, want.verbose_log);
}

TEST(InstanceSpecCodec, RoundTripsEveryField) {
  for (const InstanceSpec& spec : {GpuInstance(), InstanceSpec{}}) {
    WireWriter w;
    ASSERT_TRUE(EncodeInstanceSpec(spec, w).ok());
    std::string bytes = w.Take();
    WireReader r(bytes);
    auto got = DecodeInstanceSpec(r);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(r.remaining(), 0u);
    ExpectSpecEq(*got, spec);
  }
}

TEST(InstanceSpecCodec, RefusesAnUnknownKindAConfigThatDoesNotParseAndNegativeCounts) {
  WireWriter w;
  ASSERT_TRUE(EncodeInstanceSpec(GpuInstance(), w).ok());
  const std::string good = w.Take();
  // model name (u32 + 1) + version (8) + config (u32 + n) + two folders + index (4): the kind.
  const std::string config = GpuInstance().config.SerializeAsString();
  const size_t kind_at = 4 + 1 + 8 + 4 + config.size() + 4 + 4 + 4 + 6 + 4;
  std::string bad_kind = good;
  bad_kind[kind_at] = 2;
  WireReader r1(bad_kind);
  EXPECT_EQ(DecodeInstanceSpec(r1).status().message(), "unknown instance kind 2");

  std::string bad_config = good;
  bad_config[4 + 1 + 8 + 4] = '\xff';  // the config's first tag
  WireReader r2(bad_config);
  EXPECT_EQ(DecodeInstanceSpec(r2).status().message(), "the model config does not parse");

  InstanceSpec negative = GpuInstance();
  negative.cpu_threads = -2;
  WireWriter w3;
  ASSERT_TRUE(EncodeInstanceSpec(negative, w3).ok());
  std::string bytes = w3.Take();
  WireReader r3(bytes);
  EXPECT_FALSE(DecodeInstanceSpec(r3).ok());

  InstanceSpec long_name = GpuInstance();
  long_name.model_name.assign(kMaxNameBytes + 1, 'm');
  WireWriter w4;
  EXPECT_EQ(EncodeInstanceSpec(long_name, w4).code(), StatusCode::kInvalidArgument);
}

TEST(IpcMessage, InitCarriesTheInstanceSpec) {
  auto out = RoundTrip(Message{0, InitMessage{GpuInstance()}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->type(), MessageType::kInit);
  ExpectSpecEq(std::get<InitMessage>(out->body).instance, GpuInstance());
}

TEST(IpcMessage, InitResultCarriesTheError) {
  auto out = RoundTrip(Message{0, InitResultMessage{NotFound("unknown backend 'x'")}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(std::get<InitResultMessage>(out->body).status, NotFound("unknown backend 'x'"));
  out = RoundTrip(Message{0, InitResultMessage{Status::Ok()}});
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(std::get<InitResultMessage>(out->body).status.ok());
}

TEST(IpcMessage, RequestRoundTripWithEveryParameterTypeAndBytes) {
  InferRequest r;
  r.model_name = "identity";
  r.model_version = 2;
  r.id = "req-1";
  r.parameters["b"] = true;
  r.parameters["i"] = int64_t{-42};
  r.parameters["d"] = 0.25;
  r.parameters["s"] = std::string("text\0with nul", 13);
  r.inputs.push_back(Int32Tensor("INPUT0", {1, -2, 3}));
  r.inputs.push_back(BytesTensor("INPUT1", {"hello", "", std::string("\0\xff", 2)}));
  r.requested_outputs = {"OUTPUT0"};
  auto out = RoundTrip(Message{99, RequestMessage{r}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->request_id, 99u);
  const InferRequest& g = std::get<RequestMessage>(out->body).request;
  EXPECT_EQ(g.model_name, "identity");
  EXPECT_EQ(g.model_version, 2);
  EXPECT_EQ(g.id, "req-1");
  EXPECT_EQ(g.parameters, r.parameters);
  ASSERT_EQ(g.inputs.size(), 2u);
  ExpectTensorEq(g.inputs[0], r.inputs[0]);
  ExpectTensorEq(g.inputs[1], r.inputs[1]);
  EXPECT_EQ(g.requested_outputs, r.requested_outputs);
}

TEST(IpcMessage, ResponseRoundTrip) {
  ResponseEvent ev;
  ev.final = false;
  ev.has_response = true;
  ev.response.model_name = "repeat";
  ev.response.model_version = 1;
  ev.response.id = "abc";
  ev.response.parameters["triton_final_response"] = false;
  ev.response.outputs.push_back(Int32Tensor("OUT", {5}));
  auto out = RoundTrip(Message{5, ResponseMessage{ev}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const ResponseEvent& g = std::get<ResponseMessage>(out->body).event;
  EXPECT_FALSE(g.final);
  EXPECT_TRUE(g.has_response);
  EXPECT_TRUE(g.status.ok());
  EXPECT_EQ(g.response.id, "abc");
  EXPECT_EQ(g.response.parameters, ev.response.parameters);
  ASSERT_EQ(g.response.outputs.size(), 1u);
  ExpectTensorEq(g.response.outputs[0], ev.response.outputs[0]);

  ResponseEvent err;
  err.final = true;
  err.status = Cancelled("request was cancelled");
  out = RoundTrip(Message{5, ResponseMessage{err}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(std::get<ResponseMessage>(out->body).event.status, Cancelled("request was cancelled"));
  EXPECT_FALSE(std::get<ResponseMessage>(out->body).event.has_response);
}

TEST(IpcMessage, SmallMessagesRoundTrip) {
  auto hb = RoundTrip(Message{0, HeartbeatMessage{17}});
  ASSERT_TRUE(hb.ok());
  EXPECT_EQ(std::get<HeartbeatMessage>(hb->body).sequence, 17u);
  auto ack = RoundTrip(Message{0, HeartbeatAckMessage{17, {}, {}}});
  ASSERT_TRUE(ack.ok());
  EXPECT_TRUE(std::get<HeartbeatAckMessage>(ack->body).metrics.empty());
  auto started = RoundTrip(Message{9, RequestStartedMessage{}});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  EXPECT_EQ(started->type(), MessageType::kRequestStarted);
  EXPECT_EQ(started->request_id, 9u);
  EXPECT_TRUE(SentByStub(MessageType::kRequestStarted));
  EXPECT_FALSE(SentByServer(MessageType::kRequestStarted));
  auto cancel = RoundTrip(Message{8, CancelMessage{}});
  ASSERT_TRUE(cancel.ok());
  EXPECT_EQ(cancel->type(), MessageType::kCancel);
  EXPECT_EQ(cancel->request_id, 8u);
  auto shut = RoundTrip(Message{0, ShutdownMessage{}});
  ASSERT_TRUE(shut.ok());
  EXPECT_EQ(shut->type(), MessageType::kShutdown);
  auto rel = RoundTrip(Message{0, ShmReleaseMessage{{{0, 64}, {128, 70000}}}});
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(std::get<ShmReleaseMessage>(rel->body).blocks,
            (std::vector<ShmBlock>{{0, 64}, {128, 70000}}));
}

std::vector<MetricFamily> SomeFamilies() {
  MetricSample gauge{{{"model_name", "q\"wen"}, {"engine", "0"}}, 2.5, {}};
  MetricSample hist;
  hist.labels = {{"model_name", "qwen"}};
  hist.histogram = {{0.1, 1.0}, {2, 1, 1}, 7.65, 4};
  return {{"vllm:num_requests_running", MetricType::kGauge, "Running.", {gauge}},
          {"vllm:prompt_tokens_total", MetricType::kCounter, "Prompt tokens.", {{{}, 500, {}}}},
          {"vllm:time_to_first_token_seconds", MetricType::kHistogram, "TTFT.", {hist}}};
}

TEST(IpcMessage, MetricFamiliesRoundTrip) {
  auto ack = RoundTrip(Message{0, HeartbeatAckMessage{3, SomeFamilies(), {}}});
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  const auto& got = std::get<HeartbeatAckMessage>(ack->body);
  EXPECT_EQ(got.sequence, 3u);
  EXPECT_TRUE(got.metrics_dropped.empty());
  ASSERT_EQ(got.metrics.size(), 3u);
  const auto want = SomeFamilies();
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got.metrics[i].name, want[i].name);
    EXPECT_EQ(got.metrics[i].type, want[i].type);
    EXPECT_EQ(got.metrics[i].help, want[i].help);
    ASSERT_EQ(got.metrics[i].samples.size(), 1u);
    EXPECT_EQ(got.metrics[i].samples[0].labels, want[i].samples[0].labels);
    EXPECT_EQ(got.metrics[i].samples[0].value, want[i].samples[0].value);
  }
  const MetricHistogram& h = got.metrics[2].samples[0].histogram;
  EXPECT_EQ(h.bounds, (std::vector<double>{0.1, 1.0}));
  EXPECT_EQ(h.bucket_counts, (std::vector<uint64_t>{2, 1, 1}));
  EXPECT_EQ(h.sum, 7.65);
  EXPECT_EQ(h.count, 4u);
}

TEST(IpcMessage, InvalidMetricFamilyIsLeftOutNotFatal) {
  auto families = SomeFamilies();
  families[0].name = "bad name";                          // not a metric name
  families[2].samples[0].histogram.bucket_counts = {1, 1, 1};  // adds up to 3, count 4
  auto ack = RoundTrip(Message{0, HeartbeatAckMessage{1, families, {}}});
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  const auto& got = std::get<HeartbeatAckMessage>(ack->body);
  ASSERT_EQ(got.metrics.size(), 1u);
  EXPECT_EQ(got.metrics[0].name, "vllm:prompt_tokens_total");
  EXPECT_NE(got.metrics_dropped.find("'bad name'"), std::string::npos) << got.metrics_dropped;
}

TEST(IpcMessage, MetricsPastTheByteCapAreLeftOut) {
  // Each family ~1 MB of help-less samples: the encoder keeps the ones that fit.
  MetricFamily big{"big", MetricType::kGauge, "", {}};
  for (int i = 0; i < 60000; ++i) big.samples.push_back({{{"i", std::to_string(i) + std::string(8, 'x')}}, 1, {}});
  std::vector<MetricFamily> families(8, big);
  for (size_t i = 0; i < families.size(); ++i) families[i].name = "big" + std::to_string(i);
  ipc::WireWriter w;
  const size_t left_out = EncodeMetricFamilies(w, families);
  EXPECT_GT(left_out, 0u);
  EXPECT_LE(w.buffer().size(), kMaxMetricsBytes + 4);
  ipc::WireReader r(w.buffer());
  auto decoded = DecodeMetricFamilies(r);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->size(), families.size() - left_out);
}

TEST(IpcMessage, LyingMetricCountsAreRefused) {
  ipc::WireWriter w;
  w.U32(1);  // one family
  w.Str("m");
  w.U8(static_cast<uint8_t>(MetricType::kGauge));
  w.Str("");
  w.U32(65536);  // samples that are not there
  ipc::WireReader r(w.buffer());
  auto decoded = DecodeMetricFamilies(r);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("metric sample count"), std::string::npos);

  ipc::WireWriter t;
  t.U32(1);
  t.Str("m");
  t.U8(7);  // no such type
  ipc::WireReader rt(t.buffer());
  EXPECT_FALSE(DecodeMetricFamilies(rt).ok());

  ipc::WireWriter many;
  many.U32(kMaxMetricFamilies + 1);
  ipc::WireReader rm(many.buffer());
  EXPECT_FALSE(DecodeMetricFamilies(rm).ok());
}

// ---- garbage ----

std::string ValidResponseFrame() {
  ResponseEvent ev;
  ev.final = true;
  ev.has_response = true;
  ev.response.outputs.push_back(Int32Tensor("OUT", {1, 2}));
  return EncodeMessage(Message{1, ResponseMessage{ev}}, nullptr).value();
}

void PutU32(std::string& s, size_t pos, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[pos + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

TEST(IpcGarbage, UnknownTypeIsRejected) {
  std::string frame = ValidResponseFrame();
  frame[4] = 77;
  frame[5] = 0;
  auto h = DecodeFrameHeader(frame);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("unknown message type 77"), std::string::npos)
      << h.status().message();
}

TEST(IpcGarbage, BadMagicAndReservedBitsAreRejected) {
  std::string frame = ValidResponseFrame();
  frame[0] = 'X';
  EXPECT_FALSE(DecodeFrameHeader(frame).ok());
  frame = ValidResponseFrame();
  frame[13] = 1;
  EXPECT_FALSE(DecodeFrameHeader(frame).ok());
}

TEST(IpcGarbage, LengthOverTheCapIsRejectedFromTheHeader) {
  std::string frame = ValidResponseFrame();
  PutU32(frame, 8, kMaxPayloadBytes + 1);
  auto h = DecodeFrameHeader(frame);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("exceeds the limit"), std::string::npos);
}

TEST(IpcGarbage, LyingLengthsAreRejected) {
  const std::string good = ValidResponseFrame();
  // Shorter than the content: the decoder runs out of bytes.
  std::string shorter = good.substr(0, good.size() - 3);
  PutU32(shorter, 8, static_cast<uint32_t>(shorter.size() - kFrameHeaderSize));
  auto m = DecodeFrame(shorter);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("Response message"), std::string::npos)
      << m.status().message();
  // Longer than the content: trailing bytes are refused.
  std::string longer = good + "junk";
  PutU32(longer, 8, static_cast<uint32_t>(longer.size() - kFrameHeaderSize));
  m = DecodeFrame(longer);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("trailing"), std::string::npos) << m.status().message();
  // A tensor data length past the end of the message.
  ResponseEvent ev;
  ev.final = true;
  ev.has_response = true;
  ev.response.outputs.push_back(Int32Tensor("OUT", {1}));
  std::string frame = EncodeMessage(Message{1, ResponseMessage{ev}}, nullptr).value();
  // The blob length (u64) sits just before the last 4 data bytes.
  const size_t len_pos = frame.size() - 4 - 8;
  PutU32(frame, len_pos, 1000);
  m = DecodeFrame(frame);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("runs past the end of the message"), std::string::npos)
      << m.status().message();
}

TEST(IpcGarbage, ShmOffsetOutsideTheRegionIsRejected) {
  auto region = ShmRegion::Create(1 << 20);
  ASSERT_TRUE(region.ok());
  ShmAllocator alloc((*region)->Area(Direction::kToServer).size());
  ShmOut out{(*region)->Area(Direction::kToServer), &alloc};
  ResponseEvent ev;
  ev.final = true;
  ev.has_response = true;
  ev.response.outputs.push_back(
      Tensor{"OUT", DataType::kUint8, {100000}, std::string(100000, 'x')});
  std::string frame = EncodeMessage(Message{1, ResponseMessage{ev}}, &out).value();
  ASSERT_LT(frame.size(), 1000u) << "a 100 kB tensor must travel through shared memory";
  auto area = (*region)->Area(Direction::kToServer);
  std::span<const char> in(area.data(), area.size());
  ASSERT_TRUE(DecodeFrame(frame, in).ok());
  // offset and size are the last 16 bytes of the frame.
  auto patch = [&](uint64_t offset, uint64_t size) {
    std::string f = frame;
    for (int i = 0; i < 8; ++i) {
      f[f.size() - 16 + i] = static_cast<char>((offset >> (8 * i)) & 0xff);
      f[f.size() - 8 + i] = static_cast<char>((size >> (8 * i)) & 0xff);
    }
    return DecodeFrame(f, in);
  };
  for (auto [offset, size] : std::vector<std::pair<uint64_t, uint64_t>>{
           {area.size() - 10, 100000},
           {area.size() + 1, 1},
           {std::numeric_limits<uint64_t>::max() - 5, 100000},
           {0, std::numeric_limits<uint64_t>::max()}}) {
    auto m = patch(offset, size);
    ASSERT_FALSE(m.ok()) << offset << " " << size;
    EXPECT_NE(m.status().message().find("outside the shared memory area"), std::string::npos)
        << m.status().message();
  }
}

TEST(IpcGarbage, BytesPrefixPastTheBufferIsRejected) {
  ResponseEvent ev;
  ev.final = true;
  ev.has_response = true;
  // One BYTES element whose 4-byte prefix says 16 bytes, with 2 present.
  ev.response.outputs.push_back(
      Tensor{"TEXT", DataType::kBytes, {1}, std::string("\x10\0\0\0ab", 6)});
  std::string frame = EncodeMessage(Message{1, ResponseMessage{ev}}, nullptr).value();
  auto m = DecodeFrame(frame);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("TEXT"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("past the end of the buffer"), std::string::npos)
      << m.status().message();
}

TEST(IpcGarbage, DataInconsistentWithShapeIsRejected) {
  ResponseEvent ev;
  ev.final = true;
  ev.has_response = true;
  ev.response.outputs.push_back(Tensor{"OUT", DataType::kInt32, {3}, std::string(8, '\0')});
  std::string frame = EncodeMessage(Message{1, ResponseMessage{ev}}, nullptr).value();
  auto m = DecodeFrame(frame);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("needs 12 bytes"), std::string::npos) << m.status().message();
}

TEST(IpcGarbage, UnknownDatatypeStatusCodeAndBoolAreRejected) {
  ResponseEvent ev;
  ev.final = true;
  ev.has_response = true;
  ev.response.outputs.push_back(Int32Tensor("OUT", {1}));
  std::string frame = EncodeMessage(Message{1, ResponseMessage{ev}}, nullptr).value();
  // Payload: final u8, status code u32, status msg (u32 0), has_response u8, ...
  std::string f = frame;
  f[kFrameHeaderSize] = 2;  // final flag byte is not 0/1
  EXPECT_FALSE(DecodeFrame(f).ok());
  f = frame;
  PutU32(f, kFrameHeaderSize + 1, 200);  // status code
  auto m = DecodeFrame(f);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("unknown status code 200"), std::string::npos);
}

TEST(IpcGarbage, ErrorWithoutFinalIsRejected) {
  ResponseEvent ev;
  ev.final = false;
  ev.status = Internal("x");
  std::string frame = EncodeMessage(Message{1, ResponseMessage{ev}}, nullptr).value();
  EXPECT_FALSE(DecodeFrame(frame).ok());
}

// Mutated frames (bit flips, truncation, random length fields) must decode to a value or
// an error, never crash or read out of bounds (run under ASan to see the latter).
TEST(IpcGarbage, MutatedFramesNeverCrash) {
  auto region = ShmRegion::Create(1 << 20).value();
  auto area = region->Area(Direction::kToServer);
  std::span<const char> in(area.data(), area.size());
  std::vector<std::string> seeds;
  seeds.push_back(ValidResponseFrame());
  InferRequest r;
  r.parameters["k"] = std::string("v");
  r.inputs.push_back(BytesTensor("B", {"ab", "cde"}));
  seeds.push_back(EncodeMessage(Message{3, RequestMessage{r}}, nullptr).value());
  seeds.push_back(EncodeMessage(Message{0, HeartbeatAckMessage{1, SomeFamilies(), {}}}, nullptr).value());
  seeds.push_back(EncodeMessage(Message{0, ShmReleaseMessage{{{0, 64}}}}, nullptr).value());
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int decoded_ok = 0, rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string f = seeds[next() % seeds.size()];
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t pos = kFrameHeaderSize + next() % (f.size() - kFrameHeaderSize);
      f[pos] = static_cast<char>(next());
    }
    if (next() % 4 == 0) f.resize(kFrameHeaderSize + next() % (f.size() - kFrameHeaderSize));
    PutU32(f, 8, static_cast<uint32_t>(f.size() - kFrameHeaderSize));
    auto m = DecodeFrame(f, in);
    (m.ok() ? decoded_ok : rejected)++;
  }
  EXPECT_GT(rejected, 1000);
  EXPECT_EQ(decoded_ok + rejected, 20000);
}

// ---- channel ----

struct SocketPair {
  SocketPair() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a = sv[0];
    b = sv[1];
  }
  int a, b;
};

TEST(IpcChannel, FramesArriveWholeAndInOrder) {
  SocketPair sp;
  Channel tx(sp.a), rx(sp.b);
  for (uint64_t i = 0; i < 3; ++i) {
    auto frame = EncodeMessage(Message{i, CancelMessage{}}, nullptr).value();
    ASSERT_TRUE(tx.SendFrame(frame, milliseconds(1000)).ok());
  }
  for (uint64_t i = 0; i < 3; ++i) {
    auto f = rx.ReadFrame(milliseconds(1000));
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ(f->header.request_id, i);
  }
  auto none = rx.ReadFrame(milliseconds(50));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kDeadlineExceeded);
}

// Issue 19 item 4: a reader thread must be able to queue a control frame while a large
// frame is stuck (the peer not reading), and a data frame that cannot start in time is
// withdrawn whole, so the byte stream stays in sync and the channel usable.
TEST(IpcChannel, Issue19WritesNeverBlockAReaderAndUnstartedSendsAreWithdrawn) {
  SocketPair sp;
  Channel tx(sp.a), rx(sp.b);
  ResponseEvent ev;
  ev.final = true;
  ev.has_response = true;
  ev.response.outputs.push_back(Int32Tensor("OUT", std::vector<int32_t>(4u << 20, 7)));
  std::string big = EncodeMessage(Message{1, ResponseMessage{ev}}, nullptr).value();
  Status big_sent;
  std::thread sender([&] { big_sent = tx.SendFrame(big, milliseconds(1000)); });
  // Until the big frame has started (its first bytes wait in rx's socket; rx reads nothing):
  // a fixed sleep was too short under a sanitizer on a loaded machine, and the frame meant
  // to be withdrawn went out first.
  int readable = 0;
  for (int i = 0; i < 1000 && readable == 0; ++i) {
    ASSERT_EQ(ioctl(sp.b, FIONREAD, &readable), 0);
    if (readable == 0) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_GT(readable, 0) << "the big frame never started";
  auto withdrawn = EncodeMessage(Message{2, CancelMessage{}}, nullptr).value();
  Status late = tx.SendFrame(withdrawn, milliseconds(100));
  EXPECT_EQ(late.code(), StatusCode::kDeadlineExceeded) << late.ToString();
  const auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(tx.PostFrame(EncodeMessage(Message{3, CancelMessage{}}, nullptr).value()).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - before, milliseconds(50));
  auto first = rx.ReadFrame(milliseconds(5000));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->header.request_id, 1u);
  auto second = rx.ReadFrame(milliseconds(5000));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->header.request_id, 3u);  // the withdrawn frame never went out
  sender.join();
  EXPECT_TRUE(big_sent.ok()) << big_sent.ToString();
  EXPECT_EQ(rx.ReadFrame(milliseconds(50)).status().code(), StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(tx.SendFrame(withdrawn, milliseconds(1000)).ok());
  auto again = rx.ReadFrame(milliseconds(1000));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->header.request_id, 2u);
}

TEST(IpcChannel, TruncatedHeaderThenCloseIsAClearError) {
  SocketPair sp;
  Channel rx(sp.b);
  std::string frame = ValidResponseFrame();
  ASSERT_EQ(write(sp.a, frame.data(), 10), 10);
  close(sp.a);
  auto f = rx.ReadFrame(milliseconds(1000));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("middle of a message header (10 of 24 bytes)"),
            std::string::npos)
      << f.status().message();
}

TEST(IpcChannel, LengthLongerThanWhatArrivesIsAClearError) {
  SocketPair sp;
  Channel rx(sp.b);
  std::string frame = ValidResponseFrame();
  PutU32(frame, 8, static_cast<uint32_t>(frame.size()));  // claims more than sent
  ASSERT_EQ(write(sp.a, frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
  auto f = rx.ReadFrame(milliseconds(50));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kDeadlineExceeded);  // waits for the rest...
  close(sp.a);
  f = rx.ReadFrame(milliseconds(1000));  // ...and the peer closing mid-frame is garbage
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("length field lies"), std::string::npos)
      << f.status().message();
}

TEST(IpcChannel, CleanCloseIsUnavailable) {
  SocketPair sp;
  Channel rx(sp.b);
  close(sp.a);
  auto f = rx.ReadFrame(milliseconds(1000));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kUnavailable);
}

TEST(IpcChannel, UnknownTypeOnTheWireIsRejectedBeforeThePayload) {
  SocketPair sp;
  Channel rx(sp.b);
  std::string frame = ValidResponseFrame();
  frame[4] = 0x33;
  ASSERT_EQ(write(sp.a, frame.data(), kFrameHeaderSize), static_cast<ssize_t>(kFrameHeaderSize));
  auto f = rx.ReadFrame(milliseconds(1000));
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("unknown message type 51"), std::string::npos);
  close(sp.a);
}

// ---- shared memory ----

struct LinkedPair {
  explicit LinkedPair(uint64_t area_bytes) {
    SocketPair sp;
    auto region = ShmRegion::Create(area_bytes).value();
    auto peer_region = ShmRegion::Attach(fcntl(region->fd(), F_DUPFD_CLOEXEC, 0)).value();
    server = std::make_unique<Connection>(Side::kServer, std::make_unique<Channel>(sp.a),
                                          std::move(region));
    stub = std::make_unique<Connection>(Side::kStub, std::make_unique<Channel>(sp.b),
                                        std::move(peer_region));
  }
  std::unique_ptr<Connection> server, stub;
};

InferRequest OneMiBRequest() {
  InferRequest r;
  r.model_name = "identity";
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  r.inputs.push_back(Tensor{"INPUT0", DataType::kFp32, {1 << 18}, data});
  return r;
}

TEST(IpcShm, OneMiBTensorTravelsThroughSharedMemoryAndIsReleased) {
  LinkedPair link(8 << 20);
  const InferRequest r = OneMiBRequest();
  ASSERT_TRUE(link.server->Send(Message{4, RequestMessage{r}}, milliseconds(1000)).ok());
  EXPECT_GE(link.server->shm_bytes_in_use(), 1u << 20);
  auto got = link.stub->Receive(milliseconds(1000));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectTensorEq(std::get<RequestMessage>(got->body).request.inputs[0], r.inputs[0]);
  // The stub returned the block: the server's next read consumes the ShmRelease.
  auto none = link.server->Receive(milliseconds(200));
  EXPECT_EQ(none.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(link.server->shm_bytes_in_use(), 0u);

  // And the other direction.
  ResponseEvent ev;
  ev.final = true;
  ev.has_response = true;
  ev.response.outputs = r.inputs;
  ASSERT_TRUE(link.stub->Send(Message{4, ResponseMessage{ev}}, milliseconds(1000)).ok());
  EXPECT_GE(link.stub->shm_bytes_in_use(), 1u << 20);
  auto resp = link.server->Receive(milliseconds(1000));
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  ExpectTensorEq(std::get<ResponseMessage>(resp->body).event.response.outputs[0], r.inputs[0]);
  auto after = link.stub->Receive(milliseconds(200));
  EXPECT_EQ(after.status().code(), StatusCode::kDeadlineExceeded) << after.status().ToString();
  EXPECT_EQ(link.stub->shm_bytes_in_use(), 0u);
}

TEST(IpcShm, FullAreaFallsBackToInline) {
  LinkedPair link(256 << 10);  // too small for 1 MiB
  const InferRequest r = OneMiBRequest();
  // 1 MiB inline is more than the socket buffers hold: send while the peer reads.
  Status sent;
  std::thread sender([&] { sent = link.server->Send(Message{4, RequestMessage{r}}, milliseconds(2000)); });
  auto got = link.stub->Receive(milliseconds(2000));
  sender.join();
  ASSERT_TRUE(sent.ok()) << sent.ToString();
  EXPECT_EQ(link.server->shm_bytes_in_use(), 0u);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectTensorEq(std::get<RequestMessage>(got->body).request.inputs[0], r.inputs[0]);
}

TEST(IpcShm, MessageSentInTheWrongDirectionIsRejected) {
  LinkedPair link(1 << 20);
  // A stub may not send a Request.
  ASSERT_TRUE(link.stub->Send(Message{1, RequestMessage{}}, milliseconds(1000)).ok());
  auto got = link.server->Receive(milliseconds(1000));
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("wrong direction"), std::string::npos);
}

TEST(IpcShm, ReleaseOfABlockNeverHandedOutIsRejected) {
  LinkedPair link(1 << 20);
  ASSERT_TRUE(
      link.stub->Send(Message{0, ShmReleaseMessage{{{4096, 100}}}}, milliseconds(1000)).ok());
  auto got = link.server->Receive(milliseconds(1000));
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("not handed out"), std::string::npos)
      << got.status().message();
}

TEST(IpcShmAllocator, AllocatesFreesAndCoalesces) {
  ShmAllocator a(4096);
  auto x = a.Allocate(1000), y = a.Allocate(1000), z = a.Allocate(1000);
  ASSERT_TRUE(x && y && z);
  EXPECT_FALSE(a.Allocate(2000).has_value());
  ASSERT_TRUE(a.Free({*y, 1000}).ok());
  ASSERT_TRUE(a.Free({*x, 1000}).ok());
  EXPECT_FALSE(a.Free({*x, 1000}).ok()) << "double free must be refused";
  auto big = a.Allocate(2000);  // fits only if x and y coalesced
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(*big, *x);
  ASSERT_TRUE(a.Free({*big, 2000}).ok());
  ASSERT_TRUE(a.Free({*z, 1000}).ok());
  EXPECT_EQ(a.used_bytes(), 0u);
  EXPECT_TRUE(a.Allocate(4096).has_value());
}

}  // namespace
}  // namespace sluice::ipc

// The identity and repeat backends in-process, through a recording ResponseSender, and
// the stub's test-behaviour parameters.

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "backends/backend.h"
#include "backends/identity/identity_backend.h"
#include "backends/repeat/repeat_backend.h"
#include "common/tensor.h"
#include "stub/backend_registry.h"
#include "stub/test_behavior.h"

namespace sluice::stub {
namespace {

using namespace std::chrono_literals;
using backends::BackendRequest;
using backends::ResponseSender;

class RecordingSender : public ResponseSender {
 public:
  Status Send(InferResponse response, bool final) override {
    return Add({Status::Ok(), std::move(response), true, final});
  }
  Status SendFinal() override { return Add({Status::Ok(), {}, false, true}); }
  Status SendError(Status error) override { return Add({std::move(error), {}, false, true}); }
  bool IsCancelled() const override { return false; }

  bool WaitFinal(std::chrono::milliseconds t = 5000ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, t, [&] { return finals_ > 0; });
  }
  std::vector<ResponseEvent> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  int finals() {
    std::lock_guard<std::mutex> lock(mu_);
    return finals_;
  }

 private:
  Status Add(ResponseEvent ev) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finals_ > 0) {
      ++finals_;  // a second final is a bug the test will see
      return InvalidArgument("already final");
    }
    if (ev.final) ++finals_;
    events_.push_back(std::move(ev));
    cv_.notify_all();
    return Status::Ok();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ResponseEvent> events_;
  int finals_ = 0;
};

InstanceSpec Context(const std::string& backend) {
  InstanceSpec ctx;
  ctx.model_name = backend;
  ctx.model_version = 1;
  ctx.config.set_backend(backend);
  return ctx;
}

TEST(CreateBackend, KnowsTheBuiltInsAndRefusesOthers) {
  EXPECT_TRUE(CreateBackend("identity").ok());
  EXPECT_TRUE(CreateBackend("repeat").ok());
  auto bad = CreateBackend("nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  EXPECT_NE(bad.status().message().find("'nope'"), std::string::npos);
}

TEST(IdentityBackend, EchoesBySameNameElseByPositionAllTypes) {
  InstanceSpec ctx = Context("identity");
  ctx.config.add_output()->set_name("OUTPUT0");
  ctx.config.add_output()->set_name("B");
  backends::IdentityBackend b;
  ASSERT_TRUE(b.Initialize(ctx).ok());
  auto sender = std::make_shared<RecordingSender>();
  BackendRequest req;
  req.id = 1;
  req.request.id = "x";
  std::string bytes;
  AppendBytesElement(bytes, "a");
  AppendBytesElement(bytes, "bc");
  req.request.inputs.push_back(Tensor{"INPUT0", DataType::kFp16, {2}, std::string(4, 'z')});
  req.request.inputs.push_back(Tensor{"B", DataType::kBytes, {2}, bytes});
  req.sender = sender;
  b.Execute(std::move(req));
  ASSERT_TRUE(sender->WaitFinal());
  auto ev = sender->events().at(0);
  ASSERT_TRUE(ev.status.ok()) << ev.status.ToString();
  ASSERT_EQ(ev.response.outputs.size(), 2u);
  EXPECT_EQ(ev.response.outputs[0].name, "OUTPUT0");
  EXPECT_EQ(ev.response.outputs[0].datatype, DataType::kFp16);
  EXPECT_EQ(ev.response.outputs[1].name, "B");
  EXPECT_EQ(ev.response.outputs[1].data, bytes);
  EXPECT_EQ(ev.response.id, "x");
}

TEST(IdentityBackend, BatchDimensionIsChecked) {
  InstanceSpec ctx = Context("identity");
  ctx.config.set_max_batch_size(4);
  backends::IdentityBackend b;
  ASSERT_TRUE(b.Initialize(ctx).ok());
  for (int64_t batch : {4, 5}) {
    auto sender = std::make_shared<RecordingSender>();
    BackendRequest req;
    req.request.inputs.push_back(
        Tensor{"IN", DataType::kUint8, {batch, 2}, std::string(batch * 2, 'q')});
    req.sender = sender;
    b.Execute(std::move(req));
    ASSERT_TRUE(sender->WaitFinal());
    EXPECT_EQ(sender->events().at(0).status.ok(), batch == 4) << batch;
  }
}

// A sender whose Send holds its caller until Release (or 2 s), as a slow IPC write would.
class HeldSender : public RecordingSender {
 public:
  Status Send(InferResponse response, bool final) override {
    {
      std::unique_lock<std::mutex> lock(held_mu_);
      thread_ = std::this_thread::get_id();
      held_cv_.wait_for(lock, 2s, [&] { return released_; });
    }
    return RecordingSender::Send(std::move(response), final);
  }
  void Release() {
    std::lock_guard<std::mutex> lock(held_mu_);
    released_ = true;
    held_cv_.notify_all();
  }
  std::thread::id thread() {
    std::lock_guard<std::mutex> lock(held_mu_);
    return thread_;
  }

 private:
  std::mutex held_mu_;
  std::condition_variable held_cv_;
  bool released_ = false;
  std::thread::id thread_;
};

// Issue 19's four large tensors: echoing one must not hold the stub's IPC thread (which
// calls Execute and answers heartbeats), so the answer comes from the backend's own thread,
// and what waits behind it can still be cancelled or ended by Finalize.
TEST(IdentityBackend, AnswersOnItsOwnThreadSoCallersNeverWait) {
  backends::IdentityBackend b;
  ASSERT_TRUE(b.Initialize(Context("identity")).ok());
  auto held = std::make_shared<HeldSender>();
  auto queued = std::make_shared<RecordingSender>();
  auto last = std::make_shared<RecordingSender>();
  const auto request = [](uint64_t id, std::shared_ptr<ResponseSender> sender) {
    BackendRequest r;
    r.id = id;
    r.request.inputs.push_back(Tensor{"IN", DataType::kUint8, {3}, "abc"});
    r.sender = std::move(sender);
    return r;
  };
  b.Execute(request(1, held));
  b.Execute(request(2, queued));  // behind 1, whose answer is held
  b.Execute(request(3, last));
  b.Cancel(2);
  ASSERT_TRUE(queued->WaitFinal());
  EXPECT_EQ(queued->events().at(0).status.code(), StatusCode::kCancelled);
  EXPECT_EQ(held->finals(), 0);
  held->Release();
  ASSERT_TRUE(held->WaitFinal());
  EXPECT_TRUE(held->events().at(0).status.ok());
  EXPECT_NE(held->thread(), std::this_thread::get_id());
  ASSERT_TRUE(last->WaitFinal());
  EXPECT_EQ(last->events().at(0).response.outputs.at(0).data, "abc");
  b.Finalize();
  auto late = std::make_shared<RecordingSender>();
  b.Execute(request(4, late));
  ASSERT_TRUE(late->WaitFinal(0ms));
  EXPECT_EQ(late->events().at(0).status.code(), StatusCode::kUnavailable);
}

TEST(RepeatBackend, FinalizeEndsOpenRequestsAndJoins) {
  backends::RepeatBackend b;
  ASSERT_TRUE(b.Initialize(Context("repeat")).ok());
  auto sender = std::make_shared<RecordingSender>();
  BackendRequest req;
  req.id = 1;
  std::vector<int32_t> v(50, 3);
  std::vector<uint32_t> d(50, 100);
  req.request.inputs.push_back(
      Tensor{"IN", DataType::kInt32, {50}, std::string(reinterpret_cast<char*>(v.data()), 200)});
  req.request.inputs.push_back(Tensor{
      "DELAY", DataType::kUint32, {50}, std::string(reinterpret_cast<char*>(d.data()), 200)});
  req.sender = sender;
  b.Execute(std::move(req));
  std::this_thread::sleep_for(250ms);
  b.Finalize();
  ASSERT_EQ(sender->finals(), 1);
  EXPECT_EQ(sender->events().back().status.code(), StatusCode::kUnavailable);
  EXPECT_GE(sender->events().size(), 2u);
}

TEST(RepeatBackend, BadInputsAreErrors) {
  backends::RepeatBackend b;
  ASSERT_TRUE(b.Initialize(Context("repeat")).ok());
  auto no_in = std::make_shared<RecordingSender>();
  BackendRequest r1;
  r1.sender = no_in;
  b.Execute(std::move(r1));
  ASSERT_TRUE(no_in->WaitFinal());
  EXPECT_EQ(no_in->events().at(0).status.code(), StatusCode::kInvalidArgument);

  auto wrong_type = std::make_shared<RecordingSender>();
  BackendRequest r2;
  r2.request.inputs.push_back(Tensor{"IN", DataType::kFp32, {1}, std::string(4, '\0')});
  r2.sender = wrong_type;
  b.Execute(std::move(r2));
  ASSERT_TRUE(wrong_type->WaitFinal());
  EXPECT_NE(wrong_type->events().at(0).status.message().find("INT32"), std::string::npos);
  b.Finalize();
}

TEST(TestBehavior, ParsesAndRejects) {
  inference::ModelConfig c;
  auto& p = *c.mutable_parameters();
  p["ignore_shutdown"].set_string_value("true");
  p["crash_after_responses"].set_string_value("3");
  p["gpu_hold_mib"].set_string_value("2048");
  auto b = TestBehavior::FromConfig(c);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->ignore_shutdown);
  EXPECT_FALSE(b->hang_in_finalize);
  EXPECT_EQ(b->crash_after_responses, 3u);
  EXPECT_EQ(b->gpu_hold_mib, 2048u);
  p["crash_after_responses"].set_string_value("-1");
  auto bad = TestBehavior::FromConfig(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("crash_after_responses"), std::string::npos);
}

}  // namespace
}  // namespace sluice::stub

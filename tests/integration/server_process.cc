#include "integration/server_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace sluice::testing {

std::string SluiceBinary() { return std::string(SLUICE_BINARY_DIR) + "/src/server/sluice"; }
std::string SourceDir() { return SLUICE_SOURCE_DIR; }

ServerProcess::ServerProcess(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  args.insert(args.begin(), SluiceBinary());
  for (const char* flag : {"--http-port", "--grpc-port", "--metrics-port"}) {
    args.push_back(flag);
    args.push_back("0");
  }
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe failed";
    return;
  }
  pid_ = fork();
  if (pid_ == 0) {
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(pipefd[1]);
  reader_ = std::thread([this, fd = pipefd[0]] { ReadLog(fd); });
  std::unique_lock lock(mu_);
  static const std::regex http_re("Started HTTPService at [^:]+:(\\d+)");
  static const std::regex grpc_re("Started GRPCInferenceService at [^:]+:(\\d+)");
  static const std::regex metrics_re("Started Metrics Service at [^:]+:(\\d+)");
  started_ = cv_.wait_for(lock, timeout, [&] {
    std::smatch m;
    if (!http_port_ && std::regex_search(log_, m, http_re)) http_port_ = std::stoi(m[1]);
    if (!grpc_port_ && std::regex_search(log_, m, grpc_re)) grpc_port_ = std::stoi(m[1]);
    if (!metrics_port_ && std::regex_search(log_, m, metrics_re)) metrics_port_ = std::stoi(m[1]);
    return http_port_ && grpc_port_ && metrics_port_;
  });
  if (!started_) ADD_FAILURE() << "sluice did not start; log:\n" << log_;
}

ServerProcess::~ServerProcess() {
  if (::testing::Test::HasFailure()) {
    std::string log = Log();
    if (log.size() > 6000) log = "..." + log.substr(log.size() - 6000);
    std::fprintf(stderr, "---- sluice log (end) ----\n%s\n---- end of sluice log ----\n", log.c_str());
  }
  if (pid_ > 0 && !reaped_) {
    auto children = Children();
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
    for (pid_t c : children) kill(c, SIGKILL);
  }
  if (reader_.joinable()) reader_.join();
}

void ServerProcess::ReadLog(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    std::lock_guard lock(mu_);
    log_.append(buf, n);
    cv_.notify_all();
  }
  close(fd);
}

void ServerProcess::Signal(int sig) {
  if (pid_ > 0 && !reaped_) kill(pid_, sig);
}

int ServerProcess::WaitExit(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string ServerProcess::Log() const {
  std::lock_guard lock(mu_);
  return log_;
}

bool ServerProcess::WaitForLog(const std::string& text, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return log_.find(text) != std::string::npos; });
}

std::vector<pid_t> ServerProcess::Children() const { return ChildrenOf(pid_); }

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (!isdigit(e->d_name[0])) continue;
    std::ifstream stat(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    std::getline(stat, line);
    auto rparen = line.rfind(')');
    if (rparen == std::string::npos) continue;
    std::istringstream rest(line.substr(rparen + 2));
    char state;
    pid_t ppid;
    rest >> state >> ppid;
    if (ppid == parent && state != 'Z') out.push_back(std::stoi(e->d_name));
  }
  closedir(d);
  return out;
}

bool ProcessAlive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto rparen = line.rfind(')');
  return rparen != std::string::npos && line.size() > rparen + 2 && line[rparen + 2] != 'Z';
}

std::vector<std::string> DevShmEntries() {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

int OpenFdCount(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/sluice-it-XXXXXX";
  path_ = mkdtemp(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace sluice::testing

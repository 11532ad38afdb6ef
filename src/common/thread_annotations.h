#pragma once
// Locks the compiler checks (STYLE.md 14): Clang's thread-safety attributes, and a mutex, a
// scoped lock and a condition variable that carry them, so that `-Wthread-safety` (the clang
// builds, cmake/Sanitizers.cmake) proves that every SLUICE_GUARDED_BY member is touched only
// with its mutex held. Under GCC the macros are empty and the types are thin std:: wrappers.
//
//   class Queue {
//    public:
//     void Push(int v) SLUICE_EXCLUDES(mu_) {
//       MutexLock lock(mu_);
//       items_.push_back(v);
//       cv_.NotifyOne();
//     }
//     int Pop() SLUICE_EXCLUDES(mu_) {
//       MutexLock lock(mu_);
//       cv_.Wait(mu_, [&]() SLUICE_REQUIRES(mu_) { return !items_.empty(); });
//       return PopLocked();
//     }
//
//    private:
//     int PopLocked() SLUICE_REQUIRES(mu_);
//
//     Mutex mu_;
//     CondVar cv_;                                 // items_ became non-empty
//     std::deque<int> items_ SLUICE_GUARDED_BY(mu_);
//   };
//
// A lambda that reads guarded state and runs with the lock held (a wait predicate) says so
// with SLUICE_REQUIRES after its parameter list, as above.
// The attribute names and semantics: https://clang.llvm.org/docs/ThreadSafetyAnalysis.html

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define SLUICE_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define SLUICE_THREAD_ANNOTATION_(x)
#endif

// A class whose instances are capabilities (locks): Mutex below.
#define SLUICE_CAPABILITY(name) SLUICE_THREAD_ANNOTATION_(capability(name))
// An RAII class that acquires a capability in its constructor and releases it in its
// destructor: MutexLock below.
#define SLUICE_SCOPED_CAPABILITY SLUICE_THREAD_ANNOTATION_(scoped_lockable)

// A data member read or written only with `mu` held.
#define SLUICE_GUARDED_BY(mu) SLUICE_THREAD_ANNOTATION_(guarded_by(mu))
// A pointer member whose pointee (not the pointer itself) is guarded by `mu`.
#define SLUICE_PT_GUARDED_BY(mu) SLUICE_THREAD_ANNOTATION_(pt_guarded_by(mu))

// Lock order: this mutex is taken before / after the ones named.
#define SLUICE_ACQUIRED_BEFORE(...) SLUICE_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#define SLUICE_ACQUIRED_AFTER(...) SLUICE_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))

// The caller must hold the capabilities (exclusively / shared) when calling the function.
#define SLUICE_REQUIRES(...) SLUICE_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define SLUICE_REQUIRES_SHARED(...) \
  SLUICE_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
// The caller must not hold them (the function takes them itself; a second take deadlocks).
#define SLUICE_EXCLUDES(...) SLUICE_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))

// The function acquires / releases the capabilities (no argument: `this`).
#define SLUICE_ACQUIRE(...) SLUICE_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define SLUICE_RELEASE(...) SLUICE_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
// The function acquires the capability when it returns `result` (TryLock).
#define SLUICE_TRY_ACQUIRE(...) SLUICE_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
// The function checks at run time that the capability is held (the analysis trusts it).
#define SLUICE_ASSERT_CAPABILITY(x) SLUICE_THREAD_ANNOTATION_(assert_capability(x))
// The function returns a reference to the capability named.
#define SLUICE_RETURN_CAPABILITY(x) SLUICE_THREAD_ANNOTATION_(lock_returned(x))

// Turns the analysis off for one function: for code whose locking it cannot follow (say
// why next to each use), never to silence a finding.
#define SLUICE_NO_THREAD_SAFETY_ANALYSIS SLUICE_THREAD_ANNOTATION_(no_thread_safety_analysis)

namespace sluice {

class CondVar;

// A std::mutex the analysis knows as a capability. Not recursive.
class SLUICE_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() SLUICE_ACQUIRE() { mu_.lock(); }
  void Unlock() SLUICE_RELEASE() { mu_.unlock(); }
  bool TryLock() SLUICE_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis that the caller holds the mutex where it cannot see it (a callback
  // the caller runs under its lock). Not checked at run time: std::mutex has no owner.
  void AssertHeld() const SLUICE_ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope. Unlock() and Lock() release and retake it inside the scope
// (work that must not run under the lock); the destructor releases it only if held.
class SLUICE_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) SLUICE_ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() SLUICE_RELEASE() {
    if (held_) mu_.Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() SLUICE_RELEASE() {
    held_ = false;
    mu_.Unlock();
  }
  void Lock() SLUICE_ACQUIRE() {
    mu_.Lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// A std::condition_variable that waits on a Mutex the caller holds. Every wait returns with
// the mutex held again; the predicate forms (as std::condition_variable's) run `pred` with
// it held and ignore spurious wake-ups.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

  // (The bodies hand the held std::mutex to a unique_lock and take it back: the analysis
  // cannot follow the std:: types, the REQUIRES contract is what callers are checked against.)
  void Wait(Mutex& mu) SLUICE_REQUIRES(mu) SLUICE_NO_THREAD_SAFETY_ANALYSIS {
    Adopted lock(mu);
    cv_.wait(lock.lock);
  }
  template <typename Pred>
  void Wait(Mutex& mu, Pred pred) SLUICE_REQUIRES(mu) SLUICE_NO_THREAD_SAFETY_ANALYSIS {
    Adopted lock(mu);
    cv_.wait(lock.lock, std::move(pred));
  }
  // False when `timeout` passed with `pred` still false.
  template <typename Rep, typename Period, typename Pred>
  bool WaitFor(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout, Pred pred)
      SLUICE_REQUIRES(mu) SLUICE_NO_THREAD_SAFETY_ANALYSIS {
    Adopted lock(mu);
    return cv_.wait_for(lock.lock, timeout, std::move(pred));
  }
  // False when `deadline` passed with `pred` still false.
  template <typename Clock, typename Duration, typename Pred>
  bool WaitUntil(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline, Pred pred)
      SLUICE_REQUIRES(mu) SLUICE_NO_THREAD_SAFETY_ANALYSIS {
    Adopted lock(mu);
    return cv_.wait_until(lock.lock, deadline, std::move(pred));
  }
  // Without a predicate: std::cv_status::timeout when `timeout` passed.
  template <typename Rep, typename Period>
  std::cv_status WaitFor(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout)
      SLUICE_REQUIRES(mu) SLUICE_NO_THREAD_SAFETY_ANALYSIS {
    Adopted lock(mu);
    return cv_.wait_for(lock.lock, timeout);
  }
  template <typename Clock, typename Duration>
  std::cv_status WaitUntil(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline)
      SLUICE_REQUIRES(mu) SLUICE_NO_THREAD_SAFETY_ANALYSIS {
    Adopted lock(mu);
    return cv_.wait_until(lock.lock, deadline);
  }

 private:
  // Lends the caller's held std::mutex to std::condition_variable for one wait, and gives
  // it back still held (release(), not unlock()) whichever way the wait returns.
  struct Adopted {
    explicit Adopted(Mutex& mu) : lock(mu.mu_, std::adopt_lock) {}
    ~Adopted() { lock.release(); }
    std::unique_lock<std::mutex> lock;
  };

  std::condition_variable cv_;
};

}  // namespace sluice

#pragma once
// Request arrival times, as `vllm bench serve` draws them: inter-arrival gaps from a gamma
// distribution with shape = burstiness and scale = 1 / (rate * burstiness), so the mean rate
// is `rate` for any burstiness; burstiness 1 is a Poisson process, < 1 burstier, > 1 more
// uniform. An infinite rate sends everything at once.

#include <cstdint>
#include <limits>
#include <random>

namespace sluice::bench {

class ArrivalProcess {
 public:
  // rate in requests per second (> 0, may be infinity); burstiness > 0.
  ArrivalProcess(double rate, double burstiness, uint64_t seed);

  // Seconds from the previous arrival to the next one (0 for an infinite rate).
  double NextGap();

  bool unlimited() const { return rate_ == std::numeric_limits<double>::infinity(); }

 private:
  double rate_;
  std::mt19937_64 rng_;
  std::gamma_distribution<double> gamma_;
};

}  // namespace sluice::bench

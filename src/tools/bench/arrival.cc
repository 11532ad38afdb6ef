#include "tools/bench/arrival.h"

namespace sluice::bench {

ArrivalProcess::ArrivalProcess(double rate, double burstiness, uint64_t seed)
    : rate_(rate),
      rng_(seed),
      gamma_(burstiness > 0 ? burstiness : 1.0,
             (rate > 0 && burstiness > 0) ? 1.0 / (rate * burstiness) : 1.0) {}

double ArrivalProcess::NextGap() {
  if (unlimited()) return 0;
  return gamma_(rng_);
}

}  // namespace sluice::bench

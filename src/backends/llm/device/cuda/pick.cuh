#pragma once
// a[p] by selects, for small arrays in kernel parameters: indexing a parameter's array with a
// run-time index makes the compiler copy the whole parameter to local memory (a stack
// frame, and a round trip through it wherever it is read).

namespace sluice::llm::cuda {

template <typename T, int N>
__device__ __forceinline__ T Pick(const T (&a)[N], int p) {
  T v = a[0];
#pragma unroll
  for (int i = 1; i < N; ++i) v = p == i ? a[i] : v;
  return v;
}

}  // namespace sluice::llm::cuda

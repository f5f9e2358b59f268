// The bf16 matvec's inner loop (AVX-512 BF16), shared by matvec.cpp and the fused decode
// stack: out = x @ w^T (+ bias) for the few rows of a decode step, each weight row read
// once for all rows of x.
//
// The weight is read in a tiled copy, [ceil(N/4), ceil(K/32), 4, 32], zero padded
// (`tile_matvec_weight`): a block of 4 output rows then streams one contiguous run of
// memory instead of 4 rows K apart, which read ~60 GB/s here against ~45 for the plain
// layout (docs/notes/engine_kernels.md). Each row's sum runs in the same order as a plain
// row-by-row loop; the zero padding adds exact zeros.
#pragma once

#include "common.h"

namespace agentrt_kernels {

constexpr int64_t TILE_ROWS = 4, TILE_K = 32;

#if defined(__AVX512BF16__)
// Internal linkage: each file that includes this compiles its own copy.
namespace {

// out[m, 4b .. 4b + 4) (rows below N) for M input rows of length K; `w`: the tiled weight.
template <int M>
inline void matvec_block(const uint16_t* x, const uint16_t* w, const c10::BFloat16* bias,
                         c10::BFloat16* out, int64_t K, int64_t N, int64_t b) {
  const int64_t chunks = (K + TILE_K - 1) / TILE_K, full = K / TILE_K;
  __m512 acc[M][TILE_ROWS];
  for (int m = 0; m < M; ++m)
    for (int i = 0; i < TILE_ROWS; ++i) acc[m][i] = _mm512_setzero_ps();
  const uint16_t* wb = w + b * chunks * TILE_ROWS * TILE_K;
  for (int64_t c = 0; c < chunks; ++c) {
    __m512bh xv[M];
    if (c < full) {
      for (int m = 0; m < M; ++m) xv[m] = (__m512bh)_mm512_loadu_si512(x + m * K + c * TILE_K);
    } else {  // the last K % 32 inputs
      const __mmask32 tail = static_cast<__mmask32>((1ull << (K - c * TILE_K)) - 1ull);
      for (int m = 0; m < M; ++m) {
        xv[m] = (__m512bh)_mm512_maskz_loadu_epi16(tail, x + m * K + c * TILE_K);
      }
    }
    const uint16_t* wc = wb + c * TILE_ROWS * TILE_K;
    for (int i = 0; i < TILE_ROWS; ++i) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(wc + i * TILE_K);
      for (int m = 0; m < M; ++m) acc[m][i] = _mm512_dpbf16_ps(acc[m][i], xv[m], wv);
    }
  }
  for (int i = 0; i < TILE_ROWS && b * TILE_ROWS + i < N; ++i) {
    const int64_t n = b * TILE_ROWS + i;
    const float bias_n = bias != nullptr ? static_cast<float>(bias[n]) : 0.f;
    for (int m = 0; m < M; ++m) {
      out[m * N + n] = c10::BFloat16(_mm512_reduce_add_ps(acc[m][i]) + bias_n);
    }
  }
}

// Row blocks [b0, b1) of out (rows 4 * b0 .. 4 * b1) for M input rows. Never inlined:
// inside a larger loop the compiler spilled the accumulators (~13% slower, measured).
template <int M>
__attribute__((noinline)) void matvec_blocks(const uint16_t* x, const uint16_t* w,
                                             const c10::BFloat16* bias, c10::BFloat16* out,
                                             int64_t K, int64_t N, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) matvec_block<M>(x, w, bias, out, K, N, b);
}

}  // namespace
#endif

}  // namespace agentrt_kernels

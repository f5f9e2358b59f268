// One row of each row-by-row operation, shared by the tensor-level kernels (rows.cpp)
// and the fused decode stack (decode_stack.cpp), so both round every value the same way.
#pragma once

#include "common.h"

namespace agentrt_kernels {

// x = widen(round_T(a + d)): the residual add rounded like a torch add (x = widen(a)
// without a delta).
template <typename T>
inline void residual_row(const T* a, const T* d, float* x, int64_t n) {
  if (d == nullptr) {
    widen(a, x, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) x[i] = to_float(from_float<T>(to_float(a[i]) + to_float(d[i])));
}

// out = w * round_T(x / sqrt(mean(x^2) + eps)): Hugging Face's RMSNorm, which rounds
// before the weight.
template <typename T>
inline void normalize_row(const float* x, const float* w, T* out, int64_t n, float eps) {
  const float ss = dot(x, x, n);
  const float inv = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = from_float<T>(w[i] * to_float(from_float<T>(x[i] * inv)));
}

// Rotate one head in place (rotate-half) by widened table rows c, s; `row`: dim floats.
template <typename T>
inline void rope_row(T* xr, const float* c, const float* s, int64_t dim, float* row) {
  const int64_t half = dim / 2;
  widen(xr, row, dim);
  for (int64_t i = 0; i < half; ++i) {
    xr[i] = from_float<T>(row[i] * c[i] - row[i + half] * s[i]);
    xr[i + half] = from_float<T>(row[i + half] * c[i + half] + row[i] * s[i + half]);
  }
}

// out[i] = round_T(silu(g[i]) * u[i]) over n values; g is overwritten. Vector lanes
// cover the first n - n % Vec::size() values and a scalar loop the rest, so a span that
// starts at a multiple of Vec::size() within a row gets the same bits as the whole row.
template <typename T>
inline void silu_mul_span(float* g, const float* u, T* out, int64_t n) {
  // bf16/fp16 outputs round away far more than the coarse exp's error (~20 ULP)
  constexpr bool coarse = !std::is_same<T, float>::value;
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) {
    Vec x = Vec::loadu(g + i);
    const Vec e = coarse ? x.neg().fexp_u20() : x.neg().exp_u20();
    (x / (Vec(1.f) + e) * Vec::loadu(u + i)).store(g + i);
  }
  for (; i < n; ++i) g[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
  for (int64_t j = 0; j < n; ++j) out[j] = from_float<T>(g[j]);
}

}  // namespace agentrt_kernels

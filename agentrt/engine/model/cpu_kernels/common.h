// Fused CPU kernels for the decoder step: each replaces a chain of small torch ops whose
// per-op overhead, not arithmetic, dominated a decode step. Plain torch equivalents are
// `PlainKernels` in kernels.py; tests/test_cpu_kernels.py checks that both agree.
//
// Arithmetic runs in float32 and rounds once to the tensor's dtype. Every kernel works
// row by row (a token, or one sequence's KV head in attention), so a row's result does
// not depend on what it is batched with. This header: the shared helpers and the
// operations each .cpp file defines (bindings.cpp exposes them to Python).
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

// float32, bfloat16 and float16: the dtypes the engine runs in.
#define DISPATCH_MODEL_TYPES(TYPE, NAME, ...)                      \
  AT_DISPATCH_SWITCH(TYPE, NAME,                                   \
                     AT_DISPATCH_CASE(at::kFloat, __VA_ARGS__)     \
                     AT_DISPATCH_CASE(at::kBFloat16, __VA_ARGS__)  \
                     AT_DISPATCH_CASE(at::kHalf, __VA_ARGS__))

namespace agentrt_kernels {

using Vec = at::vec::Vectorized<float>;

inline float to_float(float x) { return x; }
inline float to_float(c10::BFloat16 x) { return static_cast<float>(x); }
inline float to_float(c10::Half x) { return static_cast<float>(x); }

template <typename T>
inline T from_float(float x) { return static_cast<T>(x); }

// A row of `n` values widened to float32 (n is small: a head or a hidden vector).
template <typename T>
inline void widen(const T* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = to_float(src[i]);
}

template <>
inline void widen<c10::BFloat16>(const c10::BFloat16* src, float* dst, int64_t n) {
  // bf16 is the top half of a float32: shifting is the exact widening, and vectorizes.
  const uint16_t* bits = reinterpret_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u = static_cast<uint32_t>(bits[i]) << 16;
    std::memcpy(dst + i, &u, sizeof(float));
  }
}

inline float dot(const float* a, const float* b, int64_t n) {
  Vec acc(0.f);
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) {
    acc = at::vec::fmadd(Vec::loadu(a + i), Vec::loadu(b + i), acc);
  }
  float s = acc.reduce_add();
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// max(init, x[0:n]).
inline float row_max(const float* x, int64_t n, float init) {
  Vec top(init);
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) top = at::vec::maximum(top, Vec::loadu(x + i));
  float result = top.reduce_max();
  for (; i < n; ++i) result = x[i] > result ? x[i] : result;
  return result;
}

// x[i] = exp(x[i] - shift); returns the sum. `Coarse`: ATen's faster exp (about 20 ULP),
// for probabilities that are rounded to bf16 next.
template <bool Coarse = false>
inline float exp_shifted(float* x, int64_t n, float shift) {
  Vec total(0.f);
  int64_t i = 0;
  for (; i + Vec::size() <= n; i += Vec::size()) {
    const Vec shifted = Vec::loadu(x + i) - Vec(shift);
    const Vec e = Coarse ? shifted.fexp_u20() : shifted.exp_u20();
    e.store(x + i);
    total = total + e;
  }
  float sum = total.reduce_add();
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}


// decode_attention.cpp
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k_cache,
                            const at::Tensor& v_cache, const at::Tensor& block_tables,
                            const at::Tensor& context_lens, int64_t page_size, double scale);
// prefill_attention.cpp
at::Tensor prefill_attention(const at::Tensor& q, const at::Tensor& k_cache,
                             const at::Tensor& v_cache, const at::Tensor& block_table,
                             int64_t context_start, int64_t page_size, double scale);
// prefill_bf16.cpp: runs the bf16 sweep into `out` and returns true where this CPU and
// head dim have one (AVX-512 BF16; head dim 64 or 128), else returns false.
bool prefill_attention_bf16(const at::Tensor& q, const at::Tensor& k_cache,
                            const at::Tensor& v_cache, const at::Tensor& block_table,
                            int64_t context_start, int64_t page_size, double scale,
                            at::Tensor& out);
// Query positions per work item of a prefill sweep (both sweeps).
constexpr int64_t QUERY_BLOCK = 64;
// matvec.cpp: x [M, K] @ weight [N, K]^T (+ bias) for bf16 and M <= MATVEC_ROWS, from
// the weight's `tile_matvec_weight` copy, where the CPU has AVX-512 BF16
// (`has_bf16_matvec`).
constexpr int64_t MATVEC_ROWS = 4;
bool has_bf16_matvec();
at::Tensor tile_matvec_weight(const at::Tensor& weight);
at::Tensor matvec(const at::Tensor& x, const at::Tensor& tiled,
                  const c10::optional<at::Tensor>& bias, int64_t out_features);
// rows.cpp
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);
at::Tensor add_rms_norm_(at::Tensor& residual, const at::Tensor& delta, const at::Tensor& weight,
                         double eps);
void rope_(at::Tensor& q, at::Tensor& k, const at::Tensor& positions, const at::Tensor& cos,
           const at::Tensor& sin);
void write_kv_(const at::Tensor& k, const at::Tensor& v, at::Tensor& k_cache, at::Tensor& v_cache,
               const at::Tensor& slot_mapping);
at::Tensor silu_mul(const at::Tensor& gate_up);

}  // namespace agentrt_kernels

// A linear layer for the few rows of a decode step: out = x @ w^T (+ bias) in bf16 with
// the bf16 dot-product instruction, streaming each weight row once for all rows of x.
// oneDNN's prepacked GEMM pays ~10 us of fixed cost per call and read the weights ~20%
// slower than this at one row (docs/notes/engine_kernels.md); other cases call at::linear.

#include "common.h"

namespace agentrt_kernels {

#if defined(__AVX512BF16__)
namespace {

// out[m, n .. n + R) for M input rows: R weight rows share each load of x. The last
// K % 32 inputs go through masked loads, outside the main loop.
template <int M, int R>
inline void matvec_block(const uint16_t* x, const uint16_t* w, const c10::BFloat16* bias,
                         c10::BFloat16* out, int64_t K, int64_t N, int64_t n) {
  const int64_t full = K / 32 * 32;
  __m512 acc[M][R];
  for (int m = 0; m < M; ++m)
    for (int i = 0; i < R; ++i) acc[m][i] = _mm512_setzero_ps();
  const uint16_t* wn = w + n * K;
  for (int64_t k = 0; k < full; k += 32) {
    __m512bh xv[M];
    for (int m = 0; m < M; ++m) xv[m] = (__m512bh)_mm512_loadu_si512(x + m * K + k);
    for (int i = 0; i < R; ++i) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(wn + i * K + k);
      for (int m = 0; m < M; ++m) acc[m][i] = _mm512_dpbf16_ps(acc[m][i], xv[m], wv);
    }
  }
  if (full < K) {
    const __mmask32 tail = static_cast<__mmask32>((1ull << (K - full)) - 1ull);
    for (int i = 0; i < R; ++i) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(tail, wn + i * K + full);
      for (int m = 0; m < M; ++m) {
        const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(tail, x + m * K + full);
        acc[m][i] = _mm512_dpbf16_ps(acc[m][i], xv, wv);
      }
    }
  }
  for (int m = 0; m < M; ++m)
    for (int i = 0; i < R; ++i) {
      const float b = bias != nullptr ? static_cast<float>(bias[n + i]) : 0.f;
      out[m * N + n + i] = c10::BFloat16(_mm512_reduce_add_ps(acc[m][i]) + b);
    }
}

// Rows [n0, n1) of out for M input rows.
template <int M>
void matvec_rows(const uint16_t* x, const uint16_t* w, const c10::BFloat16* bias,
                 c10::BFloat16* out, int64_t K, int64_t N, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) matvec_block<M, 4>(x, w, bias, out, K, N, n);
  for (; n < n1; ++n) matvec_block<M, 1>(x, w, bias, out, K, N, n);
}

template <int M>
void matvec_run(const at::Tensor& x, const at::Tensor& w, const c10::BFloat16* bias,
                at::Tensor& out) {
  const int64_t K = x.size(1), N = w.size(0);
  const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<c10::BFloat16>());
  const auto* wp = reinterpret_cast<const uint16_t*>(w.data_ptr<c10::BFloat16>());
  c10::BFloat16* op = out.data_ptr<c10::BFloat16>();
  at::parallel_for(0, (N + 3) / 4, 16, [&](int64_t begin, int64_t end) {
    matvec_rows<M>(xp, wp, bias, op, K, N, begin * 4, std::min(N, end * 4));
  });
}

}  // namespace
#endif

bool has_bf16_matvec() {
#if defined(__AVX512BF16__)
  return true;
#else
  return false;
#endif
}

at::Tensor matvec(const at::Tensor& x, const at::Tensor& weight,
                  const c10::optional<at::Tensor>& bias) {
  TORCH_CHECK(x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1),
              "matvec: x [M, K], weight [N, K]");
#if defined(__AVX512BF16__)
  const bool has_bias = bias.has_value() && bias->defined();
  const bool fits = x.scalar_type() == at::kBFloat16 && weight.scalar_type() == at::kBFloat16 &&
                    x.is_contiguous() && weight.is_contiguous() && x.size(0) >= 1 &&
                    x.size(0) <= MATVEC_ROWS &&
                    (!has_bias || (bias->scalar_type() == at::kBFloat16 && bias->is_contiguous()));
  if (fits) {
    at::Tensor out = at::empty({x.size(0), weight.size(0)}, x.options());
    const c10::BFloat16* b = has_bias ? bias->data_ptr<c10::BFloat16>() : nullptr;
    switch (x.size(0)) {
      case 1: matvec_run<1>(x, weight, b, out); break;
      case 2: matvec_run<2>(x, weight, b, out); break;
      case 3: matvec_run<3>(x, weight, b, out); break;
      default: matvec_run<4>(x, weight, b, out); break;
    }
    return out;
  }
#endif
  return at::linear(x, weight, bias);
}

}  // namespace agentrt_kernels

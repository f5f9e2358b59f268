// A linear layer for the few rows of a decode step (matvec.h): out = x @ w^T (+ bias) in
// bf16 with the bf16 dot-product instruction, from the weight's tiled copy. oneDNN's
// prepacked GEMM pays ~10 us of fixed cost per call and read the weights ~20% slower
// than this at one row (docs/notes/engine_kernels.md).

#include "matvec.h"

namespace agentrt_kernels {

#if defined(__AVX512BF16__)
namespace {

template <int M>
void matvec_run(const at::Tensor& x, const at::Tensor& tiled, const c10::BFloat16* bias,
                at::Tensor& out) {
  const int64_t K = x.size(1), N = out.size(1);
  const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<c10::BFloat16>());
  const auto* wp = reinterpret_cast<const uint16_t*>(tiled.data_ptr<c10::BFloat16>());
  c10::BFloat16* op = out.data_ptr<c10::BFloat16>();
  at::parallel_for(0, tiled.size(0), 4, [&](int64_t begin, int64_t end) {
    matvec_blocks<M>(xp, wp, bias, op, K, N, begin, end);
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

at::Tensor tile_matvec_weight(const at::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2, "weight [N, K]");
  const int64_t N = weight.size(0), K = weight.size(1);
  const int64_t blocks = (N + TILE_ROWS - 1) / TILE_ROWS, chunks = (K + TILE_K - 1) / TILE_K;
  at::Tensor padded = at::zeros({blocks * TILE_ROWS, chunks * TILE_K}, weight.options());
  padded.slice(0, 0, N).slice(1, 0, K).copy_(weight);
  return padded.view({blocks, TILE_ROWS, chunks, TILE_K}).permute({0, 2, 1, 3}).contiguous();
}

at::Tensor matvec(const at::Tensor& x, const at::Tensor& tiled,
                  const c10::optional<at::Tensor>& bias, int64_t out_features) {
  TORCH_CHECK(x.dim() == 2 && x.size(0) >= 1 && x.size(0) <= MATVEC_ROWS && x.is_contiguous() &&
                  x.scalar_type() == at::kBFloat16,
              "matvec: x is contiguous bf16 [M, K], 1 <= M <= ", MATVEC_ROWS);
  const int64_t K = x.size(1);
  TORCH_CHECK(tiled.dim() == 4 && tiled.is_contiguous() && tiled.scalar_type() == at::kBFloat16 &&
                  tiled.size(1) == (K + TILE_K - 1) / TILE_K && tiled.size(2) == TILE_ROWS &&
                  tiled.size(3) == TILE_K &&
                  (out_features + TILE_ROWS - 1) / TILE_ROWS == tiled.size(0),
              "matvec: the weight is tile_matvec_weight's [ceil(N/4), ceil(K/32), 4, 32]");
  const bool has_bias = bias.has_value() && bias->defined();
  TORCH_CHECK(!has_bias || (bias->scalar_type() == at::kBFloat16 && bias->is_contiguous() &&
                            bias->numel() == out_features),
              "matvec: bias is contiguous bf16 [N]");
  TORCH_CHECK(has_bf16_matvec(), "matvec needs AVX-512 BF16");
  at::Tensor out = at::empty({x.size(0), out_features}, x.options());
#if defined(__AVX512BF16__)
  const c10::BFloat16* b = has_bias ? bias->data_ptr<c10::BFloat16>() : nullptr;
  switch (x.size(0)) {
    case 1: matvec_run<1>(x, tiled, b, out); break;
    case 2: matvec_run<2>(x, tiled, b, out); break;
    case 3: matvec_run<3>(x, tiled, b, out); break;
    default: matvec_run<4>(x, tiled, b, out); break;
  }
#endif
  return out;
}

}  // namespace agentrt_kernels

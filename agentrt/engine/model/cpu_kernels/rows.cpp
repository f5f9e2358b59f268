// Row-by-row kernels: RMSNorm (with the residual add), RoPE, the KV write, SwiGLU.

#include "row_ops.h"

namespace agentrt_kernels {

// ---- RMSNorm (Hugging Face's formula), optionally after a residual add ----

template <typename T>
void rms_norm_rows(T* residual, const T* delta, const T* weight, T* out, int64_t rows,
                   int64_t n, float eps) {
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> x(n), w(n);
    widen(weight, w.data(), n);
    for (int64_t r = begin; r < end; ++r) {
      T* hr = residual + r * n;
      residual_row(hr, delta != nullptr ? delta + r * n : nullptr, x.data(), n);
      if (delta != nullptr) {
        for (int64_t i = 0; i < n; ++i) hr[i] = from_float<T>(x[i]);
      }
      normalize_row(x.data(), w.data(), out + r * n, n, eps);
    }
  });
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  TORCH_CHECK(x.is_contiguous() && weight.is_contiguous(), "rms_norm needs contiguous tensors");
  at::Tensor out = at::empty_like(x);
  const int64_t n = weight.numel();
  DISPATCH_MODEL_TYPES(x.scalar_type(), "rms_norm", [&] {
    rms_norm_rows<scalar_t>(const_cast<scalar_t*>(x.data_ptr<scalar_t>()), nullptr,
                            weight.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                            x.numel() / n, n, static_cast<float>(eps));
  });
  return out;
}

// residual += delta (in place); returns rms_norm(residual).
at::Tensor add_rms_norm_(at::Tensor& residual, const at::Tensor& delta, const at::Tensor& weight,
                         double eps) {
  TORCH_CHECK(residual.is_contiguous() && delta.is_contiguous() && weight.is_contiguous(),
              "add_rms_norm_ needs contiguous tensors");
  TORCH_CHECK(residual.sizes() == delta.sizes(), "residual and delta differ in shape");
  at::Tensor out = at::empty_like(residual);
  const int64_t n = weight.numel();
  DISPATCH_MODEL_TYPES(residual.scalar_type(), "add_rms_norm_", [&] {
    rms_norm_rows<scalar_t>(residual.data_ptr<scalar_t>(), delta.data_ptr<scalar_t>(),
                            weight.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                            residual.numel() / n, n, static_cast<float>(eps));
  });
  return out;
}

// ---- rotary embedding, in place on q [T, H, D] and k [T, KVH, D] ----

template <typename T, typename C>
void rope_rows(T* x, int64_t tokens, int64_t heads, int64_t stride_t, int64_t dim,
               const int64_t* positions, const C* cos, const C* sin) {
  at::parallel_for(0, tokens, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> row(dim), c(dim), s(dim);
    for (int64_t t = begin; t < end; ++t) {
      widen(cos + positions[t] * dim, c.data(), dim);
      widen(sin + positions[t] * dim, s.data(), dim);
      for (int64_t h = 0; h < heads; ++h) rope_row(x + t * stride_t + h * dim, c.data(), s.data(), dim, row.data());
    }
  });
}

// Tables in float32 or in the activations' dtype.
void rope_(at::Tensor& q, at::Tensor& k, const at::Tensor& positions, const at::Tensor& cos,
           const at::Tensor& sin) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 3, "q [T, H, D], k [T, KVH, D]");
  TORCH_CHECK(q.stride(2) == 1 && q.stride(1) == q.size(2) && k.stride(2) == 1 &&
                  k.stride(1) == k.size(2),
              "rope_ needs each token's heads contiguous");
  TORCH_CHECK(cos.is_contiguous() && sin.is_contiguous() && cos.scalar_type() == sin.scalar_type(),
              "rope tables are contiguous and of one dtype");
  TORCH_CHECK(cos.scalar_type() == at::kFloat || cos.scalar_type() == q.scalar_type(),
              "rope tables are float32 or the activations' dtype");
  TORCH_CHECK(positions.scalar_type() == at::kLong && positions.is_contiguous(),
              "positions are contiguous int64");
  const int64_t* pos = positions.data_ptr<int64_t>();
  DISPATCH_MODEL_TYPES(q.scalar_type(), "rope_", [&] {
    auto run = [&](auto* c, auto* s) {
      rope_rows(q.data_ptr<scalar_t>(), q.size(0), q.size(1), q.stride(0), q.size(2), pos, c, s);
      rope_rows(k.data_ptr<scalar_t>(), k.size(0), k.size(1), k.stride(0), k.size(2), pos, c, s);
    };
    if (cos.scalar_type() == at::kFloat) {
      run(cos.data_ptr<float>(), sin.data_ptr<float>());
    } else {
      run(cos.data_ptr<scalar_t>(), sin.data_ptr<scalar_t>());
    }
  });
}

// ---- this step's K and V into their cache slots ----

void write_kv_(const at::Tensor& k, const at::Tensor& v, at::Tensor& k_cache, at::Tensor& v_cache,
               const at::Tensor& slot_mapping) {
  TORCH_CHECK(k.dim() == 3 && v.sizes() == k.sizes(), "k, v [T, KVH, D] of one shape");
  TORCH_CHECK(k.stride(2) == 1 && k.stride(1) == k.size(2) && v.stride(2) == 1 &&
                  v.stride(1) == v.size(2),
              "write_kv_ needs each token's heads contiguous");
  TORCH_CHECK(k_cache.is_contiguous() && v_cache.is_contiguous(), "caches must be contiguous");
  TORCH_CHECK(k.scalar_type() == k_cache.scalar_type(), "k and the cache differ in dtype");
  TORCH_CHECK(slot_mapping.scalar_type() == at::kLong && slot_mapping.numel() == k.size(0),
              "one int64 slot per token");
  const int64_t tokens = k.size(0), heads = k.size(1), dim = k.size(2), slots = k_cache.size(1);
  const int64_t bytes = dim * k.element_size();
  const int64_t* slot = slot_mapping.contiguous().data_ptr<int64_t>();
  const char* kp = static_cast<const char*>(k.data_ptr());
  const char* vp = static_cast<const char*>(v.data_ptr());
  char* kc = static_cast<char*>(k_cache.data_ptr());
  char* vc = static_cast<char*>(v_cache.data_ptr());
  const int64_t ks = k.stride(0) * k.element_size(), vs = v.stride(0) * v.element_size();
  at::parallel_for(0, tokens, 64, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      TORCH_CHECK(slot[t] >= 0 && slot[t] < slots, "slot ", slot[t], " is outside the cache");
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t at = (h * slots + slot[t]) * bytes;
        std::memcpy(kc + at, kp + t * ks + h * bytes, bytes);
        std::memcpy(vc + at, vp + t * vs + h * bytes, bytes);
      }
    }
  });
}

// ---- SwiGLU: silu(gate) * up from the fused [T, 2I] projection ----

at::Tensor silu_mul(const at::Tensor& gate_up) {
  TORCH_CHECK(gate_up.is_contiguous(), "silu_mul needs a contiguous tensor");
  const int64_t tokens = gate_up.numel() / gate_up.size(-1), width = gate_up.size(-1) / 2;
  std::vector<int64_t> shape(gate_up.sizes().begin(), gate_up.sizes().end());
  shape.back() = width;
  at::Tensor out = at::empty(shape, gate_up.options());
  DISPATCH_MODEL_TYPES(gate_up.scalar_type(), "silu_mul", [&] {
    const scalar_t* src = gate_up.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    at::parallel_for(0, tokens, 16, [&](int64_t begin, int64_t end) {
      std::vector<float> g(width), u(width);
      for (int64_t t = begin; t < end; ++t) {
        widen(src + t * 2 * width, g.data(), width);
        widen(src + t * 2 * width + width, u.data(), width);
        silu_mul_span(g.data(), u.data(), dst + t * width, width);
      }
    });
  });
  return out;
}

}  // namespace agentrt_kernels

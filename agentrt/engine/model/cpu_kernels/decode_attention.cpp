// Attention of one query token per sequence over its paged context, read in place.

#include "common.h"

namespace agentrt_kernels {

#if defined(__AVX512F__)
#define AGENTRT_AVX512 1

inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const c10::BFloat16* p) {
  const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}
inline __m512 load16(const c10::Half* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// One (sequence, KV head) task with the G query heads of the group and the head dim
// (16 * NV) fixed at compile time, so queries and accumulators stay in registers.
// Writes float32 results to `out` [G, 16 * NV].
template <typename T, int G, int NV>
void attend_registers(const float* qf, const T* kh, const T* vh, const int64_t* table,
                      int64_t len, int64_t page_size, float* scores, float* out) {
  constexpr int64_t dim = 16 * NV;
  __m512 q[G][NV];
  for (int g = 0; g < G; ++g)
    for (int j = 0; j < NV; ++j) q[g][j] = _mm512_loadu_ps(qf + g * dim + 16 * j);
  for (int64_t start = 0; start < len; start += page_size) {
    const T* page = kh + table[start / page_size] * page_size * dim;
    const int64_t stop = std::min(len, start + page_size);
    for (int64_t t = start; t < stop; ++t) {
      const T* row = page + (t - start) * dim;
      __m512 k[NV];
      for (int j = 0; j < NV; ++j) k[j] = load16(row + 16 * j);
      for (int g = 0; g < G; ++g) {
        __m512 p = _mm512_mul_ps(q[g][0], k[0]);
        for (int j = 1; j < NV; ++j) p = _mm512_fmadd_ps(q[g][j], k[j], p);
        scores[g * len + t] = _mm512_reduce_add_ps(p);
      }
    }
  }
  float total[G];
  for (int g = 0; g < G; ++g) {
    float* sg = scores + g * len;
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t t = 0; t < len; ++t) top = sg[t] > top ? sg[t] : top;
    total[g] = exp_shifted(sg, len, top);
  }
  __m512 acc[G][NV];
  for (int g = 0; g < G; ++g)
    for (int j = 0; j < NV; ++j) acc[g][j] = _mm512_setzero_ps();
  for (int64_t start = 0; start < len; start += page_size) {
    const T* page = vh + table[start / page_size] * page_size * dim;
    const int64_t stop = std::min(len, start + page_size);
    for (int64_t t = start; t < stop; ++t) {
      const T* row = page + (t - start) * dim;
      __m512 v[NV];
      for (int j = 0; j < NV; ++j) v[j] = load16(row + 16 * j);
      for (int g = 0; g < G; ++g) {
        const __m512 p = _mm512_set1_ps(scores[g * len + t]);
        for (int j = 0; j < NV; ++j) acc[g][j] = _mm512_fmadd_ps(p, v[j], acc[g][j]);
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    const __m512 inv = _mm512_set1_ps(1.f / total[g]);
    for (int j = 0; j < NV; ++j) _mm512_storeu_ps(out + g * dim + 16 * j, _mm512_mul_ps(acc[g][j], inv));
  }
}

template <typename T>
using AttendFn = void (*)(const float*, const T*, const T*, const int64_t*, int64_t, int64_t,
                          float*, float*);

template <typename T, int NV>
AttendFn<T> pick_group(int64_t group) {
  switch (group) {
    case 1: return attend_registers<T, 1, NV>;
    case 2: return attend_registers<T, 2, NV>;
    case 3: return attend_registers<T, 3, NV>;
    case 4: return attend_registers<T, 4, NV>;
    case 5: return attend_registers<T, 5, NV>;
    case 6: return attend_registers<T, 6, NV>;
    case 7: return attend_registers<T, 7, NV>;
    case 8: return attend_registers<T, 8, NV>;
    default: return nullptr;
  }
}

// The register kernel for this group size and head dim, or nullptr (generic loops).
template <typename T>
AttendFn<T> pick_attend(int64_t group, int64_t dim) {
  if (dim == 64) return pick_group<T, 4>(group);
  if (dim == 128) return pick_group<T, 8>(group);
  return nullptr;
}
#endif


template <typename T>
void decode_attention_impl(const at::Tensor& q, const at::Tensor& k_cache,
                           const at::Tensor& v_cache, const at::Tensor& block_tables,
                           const at::Tensor& context_lens, int64_t page_size, double scale,
                           at::Tensor& out) {
  const int64_t batch = q.size(0), heads = q.size(1), dim = q.size(2);
  const int64_t kv_heads = k_cache.size(0), slots = k_cache.size(1);
  const int64_t group = heads / kv_heads;
  const int64_t pages_per_seq = block_tables.size(1);
  const T* qp = q.data_ptr<T>();
  const int64_t q_stride = q.stride(0);
  const T* kp = k_cache.data_ptr<T>();
  const T* vp = v_cache.data_ptr<T>();
  const int64_t* tables = block_tables.data_ptr<int64_t>();
  const int64_t* lens = context_lens.data_ptr<int64_t>();
  T* op = out.data_ptr<T>();
  const float fscale = static_cast<float>(scale);

#ifdef AGENTRT_AVX512
  const AttendFn<T> fast = pick_attend<T>(group, dim);
#endif
  at::parallel_for(0, batch * kv_heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> qf(group * dim), acc(group * dim), row(dim), scores;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / kv_heads, h = task % kv_heads;
      const int64_t len = lens[b];
      const int64_t* table = tables + b * pages_per_seq;
      const T* kh = kp + h * slots * dim;
      const T* vh = vp + h * slots * dim;
      for (int64_t g = 0; g < group; ++g) {
        widen(qp + b * q_stride + (h * group + g) * dim, qf.data() + g * dim, dim);
        for (int64_t i = 0; i < dim; ++i) qf[g * dim + i] *= fscale;
      }
      scores.assign(group * len, 0.f);
#ifdef AGENTRT_AVX512
      if (fast != nullptr) {
        fast(qf.data(), kh, vh, table, len, page_size, scores.data(), acc.data());
        for (int64_t i = 0; i < group * dim; ++i) {
          op[(b * heads + h * group) * dim + i] = from_float<T>(acc[i]);
        }
        continue;
      }
#endif
      for (int64_t start = 0; start < len; start += page_size) {  // page by page, in place
        const T* page = kh + table[start / page_size] * page_size * dim;
        const int64_t stop = std::min(len, start + page_size);
        for (int64_t t = start; t < stop; ++t) {
          widen(page + (t - start) * dim, row.data(), dim);
          for (int64_t g = 0; g < group; ++g) {
            scores[g * len + t] = dot(qf.data() + g * dim, row.data(), dim);
          }
        }
      }
      std::vector<float> total(group, 0.f);
      for (int64_t g = 0; g < group; ++g) {
        float* sg = scores.data() + g * len;
        const float top = row_max(sg, len, -std::numeric_limits<float>::infinity());
        total[g] = exp_shifted(sg, len, top);
      }
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t start = 0; start < len; start += page_size) {
        const T* page = vh + table[start / page_size] * page_size * dim;
        const int64_t stop = std::min(len, start + page_size);
        for (int64_t t = start; t < stop; ++t) {
          widen(page + (t - start) * dim, row.data(), dim);
          for (int64_t g = 0; g < group; ++g) {
            const float p = scores[g * len + t];
            float* ag = acc.data() + g * dim;
            for (int64_t i = 0; i < dim; ++i) ag[i] += p * row[i];
          }
        }
      }
      for (int64_t g = 0; g < group; ++g) {
        T* dst = op + (b * heads + h * group + g) * dim;
        const float inv = 1.f / total[g];
        for (int64_t i = 0; i < dim; ++i) dst[i] = from_float<T>(acc[g * dim + i] * inv);
      }
    }
  });
}

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k_cache,
                            const at::Tensor& v_cache, const at::Tensor& block_tables,
                            const at::Tensor& context_lens, int64_t page_size, double scale) {
  TORCH_CHECK(q.dim() == 3 && k_cache.dim() == 3, "q [B, H, D], caches [KVH, S, D]");
  TORCH_CHECK(q.stride(2) == 1 && q.stride(1) == q.size(2),
              "decode_attention needs each token's heads contiguous");
  TORCH_CHECK(k_cache.is_contiguous() && v_cache.is_contiguous(), "caches must be contiguous");
  TORCH_CHECK(block_tables.scalar_type() == at::kLong && context_lens.scalar_type() == at::kLong,
              "block tables and context lengths are int64");
  TORCH_CHECK(q.size(1) % k_cache.size(0) == 0, "query heads must be a multiple of KV heads");
  at::Tensor out = at::empty({q.size(0), q.size(1), q.size(2)}, q.options());
  at::Tensor tables = block_tables.contiguous(), lens = context_lens.contiguous();
  DISPATCH_MODEL_TYPES(q.scalar_type(), "decode_attention", [&] {
    decode_attention_impl<scalar_t>(q, k_cache, v_cache, tables, lens, page_size, scale, out);
  });
  return out;
}

}  // namespace agentrt_kernels

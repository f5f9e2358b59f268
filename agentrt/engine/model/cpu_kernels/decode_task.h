// Attention of one query token over its paged context, read in place: one (sequence, KV
// head) task at a time, shared by decode_attention.cpp and the fused decode stack.
#pragma once

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

// The register kernel for (group, dim) where this CPU has one, else nullptr.
template <typename T>
void* fast_attend(int64_t group, int64_t dim) {
#ifdef AGENTRT_AVX512
  return reinterpret_cast<void*>(pick_attend<T>(group, dim));
#else
  return nullptr;
#endif
}

// Scratch of one thread's decode tasks (`group` query heads of `dim`).
struct DecodeScratch {
  std::vector<float> qf, acc, row, scores;
  DecodeScratch(int64_t group, int64_t dim) : qf(group * dim), acc(group * dim), row(dim) {}
};

// One (sequence, KV head) task: the group's query heads `q` (heads contiguous) over the
// sequence's `len` positions, read through `table` from this KV head's cache rows `kh`,
// `vh`; writes the group's outputs to `out`. `fast`: `fast_attend<T>(group, dim)`.
template <typename T>
void decode_task(const T* q, const T* kh, const T* vh, const int64_t* table, int64_t len,
                 int64_t page_size, float scale, int64_t group, int64_t dim, void* fast,
                 DecodeScratch& s, T* out) {
  for (int64_t g = 0; g < group; ++g) {
    widen(q + g * dim, s.qf.data() + g * dim, dim);
    for (int64_t i = 0; i < dim; ++i) s.qf[g * dim + i] *= scale;
  }
  s.scores.assign(group * len, 0.f);
#ifdef AGENTRT_AVX512
  if (fast != nullptr) {
    reinterpret_cast<AttendFn<T>>(fast)(s.qf.data(), kh, vh, table, len, page_size,
                                        s.scores.data(), s.acc.data());
    for (int64_t i = 0; i < group * dim; ++i) out[i] = from_float<T>(s.acc[i]);
    return;
  }
#endif
  for (int64_t start = 0; start < len; start += page_size) {  // page by page, in place
    const T* page = kh + table[start / page_size] * page_size * dim;
    const int64_t stop = std::min(len, start + page_size);
    for (int64_t t = start; t < stop; ++t) {
      widen(page + (t - start) * dim, s.row.data(), dim);
      for (int64_t g = 0; g < group; ++g) {
        s.scores[g * len + t] = dot(s.qf.data() + g * dim, s.row.data(), dim);
      }
    }
  }
  std::vector<float> total(group, 0.f);
  for (int64_t g = 0; g < group; ++g) {
    float* sg = s.scores.data() + g * len;
    const float top = row_max(sg, len, -std::numeric_limits<float>::infinity());
    total[g] = exp_shifted(sg, len, top);
  }
  std::fill(s.acc.begin(), s.acc.end(), 0.f);
  for (int64_t start = 0; start < len; start += page_size) {
    const T* page = vh + table[start / page_size] * page_size * dim;
    const int64_t stop = std::min(len, start + page_size);
    for (int64_t t = start; t < stop; ++t) {
      widen(page + (t - start) * dim, s.row.data(), dim);
      for (int64_t g = 0; g < group; ++g) {
        const float p = s.scores[g * len + t];
        float* ag = s.acc.data() + g * dim;
        for (int64_t i = 0; i < dim; ++i) ag[i] += p * s.row[i];
      }
    }
  }
  for (int64_t g = 0; g < group; ++g) {
    const float inv = 1.f / total[g];
    for (int64_t i = 0; i < dim; ++i) out[g * dim + i] = from_float<T>(s.acc[g * dim + i] * inv);
  }
}

}  // namespace agentrt_kernels

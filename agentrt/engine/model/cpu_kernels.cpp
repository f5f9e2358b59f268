// Fused CPU kernels for the decoder step: each replaces a chain of small torch ops whose
// per-op overhead, not arithmetic, dominated a decode step. Plain torch equivalents are
// `PlainKernels` in kernels.py; tests/test_cpu_kernels.py checks that both agree.
//
// Arithmetic runs in float32 and rounds once to the tensor's dtype. Every kernel works
// row by row (a token, or one sequence's KV head in attention), so a row's result does
// not depend on what it is batched with.

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

// float32, bfloat16 and float16: the dtypes the engine runs in.
#define DISPATCH_MODEL_TYPES(TYPE, NAME, ...)                      \
  AT_DISPATCH_SWITCH(TYPE, NAME,                                   \
                     AT_DISPATCH_CASE(at::kFloat, __VA_ARGS__)     \
                     AT_DISPATCH_CASE(at::kBFloat16, __VA_ARGS__)  \
                     AT_DISPATCH_CASE(at::kHalf, __VA_ARGS__))

namespace {

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

// ---- attention: one query token per sequence over its paged context, read in place ----

#if defined(__AVX512F__)
#include <immintrin.h>
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

// ---- attention: a prefill chunk's queries over their causal context, read in place ----
//
// Flash-style: per (KV head, block of query positions) the rows of the group's query
// heads sweep the context in blocks of KEY_BLOCK keys with an online softmax. Each key
// block is widened to float32 once (K transposed), and scores and outputs are register
// tiles of ROW_TILE rows, so the inner loops are broadcast-FMAs over whole vectors.

constexpr int64_t KEY_BLOCK = 64;
constexpr int64_t QUERY_BLOCK = 64;
constexpr int ROW_TILE = 4;

// acc[r][0:KEY_BLOCK] = q[r] . kt[:, 0:KEY_BLOCK] for `rows` (<= ROW_TILE) rows.
template <int R>
inline void score_tile(const float* q, int64_t dim, const float* kt, float* scores) {
  constexpr int64_t NK = KEY_BLOCK / Vec::size();
  Vec acc[R][NK];
  for (int r = 0; r < R; ++r)
    for (int64_t j = 0; j < NK; ++j) acc[r][j] = Vec(0.f);
  for (int64_t d = 0; d < dim; ++d) {
    Vec k[NK];
    for (int64_t j = 0; j < NK; ++j) k[j] = Vec::loadu(kt + d * KEY_BLOCK + j * Vec::size());
    for (int r = 0; r < R; ++r) {
      const Vec qd(q[r * dim + d]);
      for (int64_t j = 0; j < NK; ++j) acc[r][j] = at::vec::fmadd(qd, k[j], acc[r][j]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int64_t j = 0; j < NK; ++j) acc[r][j].store(scores + r * KEY_BLOCK + j * Vec::size());
}

// out[r][0:dim] += p[r][0:count] . v[0:count][0:dim] for R rows (dim: a multiple of the width).
template <int R>
inline void value_tile(const float* p, const float* v, int64_t count, int64_t dim, float* out) {
  for (int64_t c = 0; c < dim; c += 4 * Vec::size()) {  // four vectors of columns at a time
    const int64_t width = std::min<int64_t>(4, (dim - c) / Vec::size());
    Vec acc[R][4];
    for (int r = 0; r < R; ++r)
      for (int64_t x = 0; x < width; ++x) acc[r][x] = Vec::loadu(out + r * dim + c + x * Vec::size());
    for (int64_t j = 0; j < count; ++j) {
      Vec vj[4];
      for (int64_t x = 0; x < width; ++x) vj[x] = Vec::loadu(v + j * dim + c + x * Vec::size());
      for (int r = 0; r < R; ++r) {
        const Vec pj(p[r * KEY_BLOCK + j]);
        for (int64_t x = 0; x < width; ++x) acc[r][x] = at::vec::fmadd(pj, vj[x], acc[r][x]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int64_t x = 0; x < width; ++x) acc[r][x].store(out + r * dim + c + x * Vec::size());
  }
}

template <typename T>
void prefill_attention_impl(const at::Tensor& q, const at::Tensor& k_cache,
                            const at::Tensor& v_cache, const at::Tensor& block_table,
                            int64_t context_start, int64_t page_size, double scale,
                            at::Tensor& out) {
  const int64_t q_len = q.size(0), heads = q.size(1), dim = q.size(2);
  const int64_t q_stride = q.stride(0);
  const int64_t kv_heads = k_cache.size(0), slots = k_cache.size(1);
  const int64_t group = heads / kv_heads;
  const int64_t blocks = (q_len + QUERY_BLOCK - 1) / QUERY_BLOCK;
  const T* qp = q.data_ptr<T>();
  const T* kp = k_cache.data_ptr<T>();
  const T* vp = v_cache.data_ptr<T>();
  const int64_t* table = block_table.data_ptr<int64_t>();
  T* op = out.data_ptr<T>();
  const float fscale = static_cast<float>(scale);

  // Work items pair a late (long) query block with an early (short) one, so that the
  // even split of the item range between threads gives each the same work.
  at::parallel_for(0, kv_heads * blocks, 1, [&](int64_t begin, int64_t end) {
    const int64_t max_rows = group * QUERY_BLOCK;
    std::vector<float> qf(max_rows * dim), o(max_rows * dim), kt(dim * KEY_BLOCK),
        vf(KEY_BLOCK * dim), s(max_rows * KEY_BLOCK), m(max_rows), l(max_rows), row(dim);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t h = item % kv_heads, rank = item / kv_heads;
      const int64_t qb = rank % 2 == 0 ? rank / 2 : blocks - 1 - rank / 2;
      const int64_t p0 = qb * QUERY_BLOCK, p1 = std::min(q_len, p0 + QUERY_BLOCK);
      const int64_t npos = p1 - p0, rows = group * npos;  // row = g * npos + (pos - p0)
      for (int64_t g = 0; g < group; ++g) {
        for (int64_t i = 0; i < npos; ++i) {
          float* dst = qf.data() + (g * npos + i) * dim;
          widen(qp + (p0 + i) * q_stride + (h * group + g) * dim, dst, dim);
          for (int64_t x = 0; x < dim; ++x) dst[x] *= fscale;
        }
      }
      std::fill(o.begin(), o.begin() + rows * dim, 0.f);
      std::fill(m.begin(), m.begin() + rows, -std::numeric_limits<float>::infinity());
      std::fill(l.begin(), l.begin() + rows, 0.f);
      const int64_t keys = context_start + p1;  // the block's last row sees all of these
      for (int64_t kb = 0; kb < keys; kb += KEY_BLOCK) {
        const int64_t count = std::min(KEY_BLOCK, keys - kb);
        std::fill(kt.begin(), kt.end(), 0.f);
        for (int64_t j = 0; j < count; ++j) {
          const int64_t t = kb + j;
          const int64_t slot = table[t / page_size] * page_size + t % page_size;
          widen(kp + (h * slots + slot) * dim, row.data(), dim);
          for (int64_t d = 0; d < dim; ++d) kt[d * KEY_BLOCK + j] = row[d];
          widen(vp + (h * slots + slot) * dim, vf.data() + j * dim, dim);
        }
        int64_t r = 0;
        for (; r + ROW_TILE <= rows; r += ROW_TILE)
          score_tile<ROW_TILE>(qf.data() + r * dim, dim, kt.data(), s.data() + r * KEY_BLOCK);
        for (; r < rows; ++r)
          score_tile<1>(qf.data() + r * dim, dim, kt.data(), s.data() + r * KEY_BLOCK);
        for (r = 0; r < rows; ++r) {  // online softmax; keys past the row's position masked
          float* sr = s.data() + r * KEY_BLOCK;
          const int64_t visible = std::min(count, context_start + p0 + r % npos - kb + 1);
          const float top = row_max(sr, visible, m[r]);
          const float alpha = std::exp(m[r] - top);  // exp(-inf) = 0 on the first block
          const float sum = visible > 0 ? exp_shifted(sr, visible, top) : 0.f;
          for (int64_t j = std::max<int64_t>(visible, 0); j < KEY_BLOCK; ++j) sr[j] = 0.f;
          l[r] = l[r] * alpha + sum;
          m[r] = top;
          if (alpha != 1.f) {
            float* orow = o.data() + r * dim;
            for (int64_t x = 0; x < dim; ++x) orow[x] *= alpha;
          }
        }
        r = 0;
        for (; r + ROW_TILE <= rows; r += ROW_TILE)
          value_tile<ROW_TILE>(s.data() + r * KEY_BLOCK, vf.data(), count, dim, o.data() + r * dim);
        for (; r < rows; ++r)
          value_tile<1>(s.data() + r * KEY_BLOCK, vf.data(), count, dim, o.data() + r * dim);
      }
      for (int64_t g = 0; g < group; ++g) {
        for (int64_t i = 0; i < npos; ++i) {
          const int64_t r = g * npos + i;
          const float inv = 1.f / l[r];
          T* dst = op + ((p0 + i) * heads + h * group + g) * dim;
          for (int64_t x = 0; x < dim; ++x) dst[x] = from_float<T>(o[r * dim + x] * inv);
        }
      }
    }
  });
}

#if defined(__AVX512BF16__)
// The same sweep for bf16 with the CPU's bf16 dot-product instruction: each
// `_mm512_dpbf16_ps` multiplies 32 bf16 pairs into 16 float32 sums, twice the float32
// FMA rate and no widening. Scores use K as (dim pair, key) 32-bit words, outputs use V
// as (key pair, dim) words; P is rounded to bf16 for the second product, as bf16 SDPA does.
// Keys per block here: twice the float32 path's, which halves the per-block softmax work
// of each row; scores are computed 64 keys (four vectors) at a time.
constexpr int64_t KEYS = 128, SCORE_KEYS = 64;

template <int NVD>  // head dim = 16 * NVD
void prefill_attention_bf16(const at::Tensor& q, const at::Tensor& k_cache,
                            const at::Tensor& v_cache, const at::Tensor& block_table,
                            int64_t context_start, int64_t page_size, double scale,
                            at::Tensor& out) {
  constexpr int64_t dim = 16 * NVD, pairs = dim / 2;
  constexpr int64_t NK = SCORE_KEYS / 16;
  // Row tiles sized so accumulators and operands fit the 32 vector registers.
  constexpr int SCORE_ROWS = 6, VALUE_ROWS = NVD >= 24 ? 1 : 24 / NVD;
  const int64_t q_len = q.size(0), heads = q.size(1);
  const int64_t q_stride = q.stride(0);
  const int64_t kv_heads = k_cache.size(0), slots = k_cache.size(1);
  const int64_t group = heads / kv_heads;
  const int64_t blocks = (q_len + QUERY_BLOCK - 1) / QUERY_BLOCK;
  const uint16_t* qp = reinterpret_cast<const uint16_t*>(q.data_ptr<c10::BFloat16>());
  const uint16_t* kp = reinterpret_cast<const uint16_t*>(k_cache.data_ptr<c10::BFloat16>());
  const uint16_t* vp = reinterpret_cast<const uint16_t*>(v_cache.data_ptr<c10::BFloat16>());
  const int64_t* table = block_table.data_ptr<int64_t>();
  c10::BFloat16* op = out.data_ptr<c10::BFloat16>();
  const __m512 vscale = _mm512_set1_ps(static_cast<float>(scale));

  // Every key block of every head packed once, before the sweeps that share them:
  // K as (dim pair, key) words, V as (key pair, dim) words, zeros past the context.
  const int64_t total_keys = context_start + q_len;
  const int64_t key_blocks = (total_keys + KEYS - 1) / KEYS;
  constexpr int64_t k_words = pairs * KEYS, v_words = KEYS / 2 * dim;
  std::vector<uint32_t> k_packed(kv_heads * key_blocks * k_words, 0u);
  std::vector<uint32_t> v_packed(kv_heads * key_blocks * v_words, 0u);
  at::parallel_for(0, kv_heads * key_blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t h = item / key_blocks, kb = (item % key_blocks) * KEYS;
      uint32_t* kw = k_packed.data() + item * k_words;
      uint16_t* vhalf = reinterpret_cast<uint16_t*>(v_packed.data() + item * v_words);
      const int64_t count = std::min(KEYS, total_keys - kb);
      for (int64_t j = 0; j < count; ++j) {
        const int64_t t = kb + j;
        const int64_t slot = table[t / page_size] * page_size + t % page_size;
        const uint32_t* krow = reinterpret_cast<const uint32_t*>(kp + (h * slots + slot) * dim);
        for (int64_t d = 0; d < pairs; ++d) kw[d * KEYS + j] = krow[d];
        const uint16_t* vrow = vp + (h * slots + slot) * dim;
        uint16_t* dst = vhalf + (j / 2) * dim * 2 + (j % 2);
        for (int64_t d = 0; d < dim; ++d) dst[2 * d] = vrow[d];
      }
    }
  });

  at::parallel_for(0, kv_heads * blocks, 1, [&](int64_t begin, int64_t end) {
    const int64_t max_rows = group * QUERY_BLOCK;
    std::vector<uint32_t> qw(max_rows * pairs), pw(max_rows * KEYS / 2);
    std::vector<float> block_max(max_rows);
    std::vector<float> o(max_rows * dim), s(max_rows * KEYS), m(max_rows), l(max_rows);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t h = item % kv_heads, rank = item / kv_heads;
      const int64_t qb = rank % 2 == 0 ? rank / 2 : blocks - 1 - rank / 2;
      const int64_t p0 = qb * QUERY_BLOCK, p1 = std::min(q_len, p0 + QUERY_BLOCK);
      const int64_t npos = p1 - p0, rows = group * npos;
      for (int64_t g = 0; g < group; ++g)
        for (int64_t i = 0; i < npos; ++i)
          std::memcpy(qw.data() + (g * npos + i) * pairs,
                      qp + (p0 + i) * q_stride + (h * group + g) * dim, dim * sizeof(uint16_t));
      std::fill(o.begin(), o.begin() + rows * dim, 0.f);
      std::fill(m.begin(), m.begin() + rows, -std::numeric_limits<float>::infinity());
      std::fill(l.begin(), l.begin() + rows, 0.f);
      const int64_t keys = context_start + p1;
      for (int64_t kb = 0; kb < keys; kb += KEYS) {
        const int64_t count = std::min(KEYS, keys - kb);
        const uint32_t* kw = k_packed.data() + (h * key_blocks + kb / KEYS) * k_words;
        const uint32_t* vw = v_packed.data() + (h * key_blocks + kb / KEYS) * v_words;
        // Scores, scaled, with the keys a row may not see (past its position or past the
        // context) set to -inf; each row's block maximum is kept on the way.
        std::fill(block_max.begin(), block_max.begin() + rows,
                  -std::numeric_limits<float>::infinity());
        const int64_t scored = std::min(KEYS, (count + SCORE_KEYS - 1) / SCORE_KEYS * SCORE_KEYS);
        for (int64_t half = 0; half < scored; half += SCORE_KEYS) {
          for (int64_t r0 = 0; r0 < rows; r0 += SCORE_ROWS) {
            const int64_t tile = std::min<int64_t>(SCORE_ROWS, rows - r0);
            __m512 acc[SCORE_ROWS][NK];
            for (int r = 0; r < SCORE_ROWS; ++r)
              for (int64_t j = 0; j < NK; ++j) acc[r][j] = _mm512_setzero_ps();
            for (int64_t d = 0; d < pairs; ++d) {
              __m512i kv[NK];
              for (int64_t j = 0; j < NK; ++j)
                kv[j] = _mm512_loadu_si512(kw + d * KEYS + half + 16 * j);
              for (int r = 0; r < SCORE_ROWS; ++r) {
                if (r >= tile) break;
                const __m512bh qd = (__m512bh)_mm512_set1_epi32(qw[(r0 + r) * pairs + d]);
                for (int64_t j = 0; j < NK; ++j)
                  acc[r][j] = _mm512_dpbf16_ps(acc[r][j], qd, (__m512bh)kv[j]);
              }
            }
            for (int r = 0; r < tile; ++r) {
              const int64_t row = r0 + r;
              const int64_t visible = std::min(count, context_start + p0 + row % npos - kb + 1);
              const __m512 none = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
              __m512 top = none;
              for (int64_t j = 0; j < NK; ++j) {
                __m512 v = _mm512_mul_ps(acc[r][j], vscale);
                const int64_t first = half + 16 * j;  // key index of lane 0 in the block
                if (first + 16 > visible) {
                  const int64_t open = std::max<int64_t>(0, std::min<int64_t>(16, visible - first));
                  const __mmask16 keep = open >= 16 ? 0xFFFF : (__mmask16)((1u << open) - 1u);
                  v = _mm512_mask_mov_ps(none, keep, v);
                }
                _mm512_storeu_ps(s.data() + row * KEYS + first, v);
                top = _mm512_max_ps(top, v);
              }
              block_max[row] = std::max(block_max[row], _mm512_reduce_max_ps(top));
            }
          }
        }
        // Online softmax: rescale what came before, probabilities as bf16 pairs.
        for (int64_t r = 0; r < rows; ++r) {
          float* sr = s.data() + r * KEYS;
          const float top = std::max(m[r], block_max[r]);
          const float alpha = top == m[r] ? 1.f : std::exp(m[r] - top);
          const __m512 shift = _mm512_set1_ps(top);
          Vec sum(0.f);
          uint32_t* prow = pw.data() + r * (KEYS / 2);
          for (int64_t j = 0; j < scored; j += 32) {  // 32 probabilities -> 16 bf16 pairs
            const Vec lo = Vec(_mm512_sub_ps(_mm512_loadu_ps(sr + j), shift)).fexp_u20();
            const Vec hi = Vec(_mm512_sub_ps(_mm512_loadu_ps(sr + j + 16), shift)).fexp_u20();
            sum = sum + lo + hi;
            _mm512_storeu_si512(prow + j / 2, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
          }
          l[r] = l[r] * alpha + sum.reduce_add();
          m[r] = top;
          if (alpha != 1.f) {
            float* orow = o.data() + r * dim;
            for (int64_t x = 0; x < dim; ++x) orow[x] *= alpha;
          }
        }
        const int64_t key_pairs = (count + 1) / 2;
        for (int64_t r0 = 0; r0 < rows; r0 += VALUE_ROWS) {
          const int64_t tile = std::min<int64_t>(VALUE_ROWS, rows - r0);
          __m512 acc[VALUE_ROWS][NVD];
          for (int r = 0; r < tile; ++r)
            for (int64_t x = 0; x < NVD; ++x)
              acc[r][x] = _mm512_loadu_ps(o.data() + (r0 + r) * dim + 16 * x);
          for (int64_t jp = 0; jp < key_pairs; ++jp) {
            __m512i vv[NVD];
            for (int64_t x = 0; x < NVD; ++x)
              vv[x] = _mm512_loadu_si512(vw + jp * dim + 16 * x);
            for (int r = 0; r < VALUE_ROWS; ++r) {
              if (r >= tile) break;
              const __m512bh pj =
                  (__m512bh)_mm512_set1_epi32(pw[(r0 + r) * (KEYS / 2) + jp]);
              for (int64_t x = 0; x < NVD; ++x)
                acc[r][x] = _mm512_dpbf16_ps(acc[r][x], pj, (__m512bh)vv[x]);
            }
          }
          for (int r = 0; r < tile; ++r)
            for (int64_t x = 0; x < NVD; ++x)
              _mm512_storeu_ps(o.data() + (r0 + r) * dim + 16 * x, acc[r][x]);
        }
      }
      for (int64_t g = 0; g < group; ++g) {
        for (int64_t i = 0; i < npos; ++i) {
          const int64_t r = g * npos + i;
          const float inv = 1.f / l[r];
          c10::BFloat16* dst = op + ((p0 + i) * heads + h * group + g) * dim;
          for (int64_t x = 0; x < dim; ++x) dst[x] = c10::BFloat16(o[r * dim + x] * inv);
        }
      }
    }
  });
}
#endif

at::Tensor prefill_attention(const at::Tensor& q, const at::Tensor& k_cache,
                             const at::Tensor& v_cache, const at::Tensor& block_table,
                             int64_t context_start, int64_t page_size, double scale) {
  TORCH_CHECK(q.dim() == 3 && k_cache.dim() == 3, "q [Q, H, D], caches [KVH, S, D]");
  TORCH_CHECK(q.stride(2) == 1 && q.stride(1) == q.size(2),
              "prefill_attention needs each token's heads contiguous");
  TORCH_CHECK(k_cache.is_contiguous() && v_cache.is_contiguous(), "caches must be contiguous");
  TORCH_CHECK(block_table.scalar_type() == at::kLong, "the block table is int64");
  TORCH_CHECK(q.size(1) % k_cache.size(0) == 0, "query heads must be a multiple of KV heads");
  TORCH_CHECK(q.size(2) % Vec::size() == 0, "head dim must be a multiple of ", Vec::size());
  TORCH_CHECK(block_table.numel() * page_size >= context_start + q.size(0),
              "the block table is shorter than the context");
  at::Tensor out = at::empty({q.size(0), q.size(1), q.size(2)}, q.options());
  at::Tensor table = block_table.contiguous();
#if defined(__AVX512BF16__)
  if (q.scalar_type() == at::kBFloat16 && (q.size(2) == 64 || q.size(2) == 128)) {
    if (q.size(2) == 64) {
      prefill_attention_bf16<4>(q, k_cache, v_cache, table, context_start, page_size, scale, out);
    } else {
      prefill_attention_bf16<8>(q, k_cache, v_cache, table, context_start, page_size, scale, out);
    }
    return out;
  }
#endif
  DISPATCH_MODEL_TYPES(q.scalar_type(), "prefill_attention", [&] {
    prefill_attention_impl<scalar_t>(q, k_cache, v_cache, table, context_start, page_size, scale,
                                     out);
  });
  return out;
}

// ---- RMSNorm (Hugging Face's formula), optionally after a residual add ----

template <typename T>
void rms_norm_rows(T* residual, const T* delta, const T* weight, T* out, int64_t rows,
                   int64_t n, float eps) {
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> x(n), w(n);
    widen(weight, w.data(), n);
    for (int64_t r = begin; r < end; ++r) {
      T* hr = residual + r * n;
      if (delta != nullptr) {  // residual += delta, rounded to T like a torch add
        const T* dr = delta + r * n;
        for (int64_t i = 0; i < n; ++i) hr[i] = from_float<T>(to_float(hr[i]) + to_float(dr[i]));
      }
      widen(hr, x.data(), n);
      const float ss = dot(x.data(), x.data(), n);
      const float inv = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
      T* orow = out + r * n;
      for (int64_t i = 0; i < n; ++i) {
        const T normed = from_float<T>(x[i] * inv);  // HF rounds before the weight
        orow[i] = from_float<T>(w[i] * to_float(normed));
      }
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
  const int64_t half = dim / 2;
  at::parallel_for(0, tokens, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> row(dim), c(dim), s(dim);
    for (int64_t t = begin; t < end; ++t) {
      widen(cos + positions[t] * dim, c.data(), dim);
      widen(sin + positions[t] * dim, s.data(), dim);
      for (int64_t h = 0; h < heads; ++h) {
        T* xr = x + t * stride_t + h * dim;
        widen(xr, row.data(), dim);
        for (int64_t i = 0; i < half; ++i) {
          xr[i] = from_float<T>(row[i] * c[i] - row[i + half] * s[i]);
          xr[i + half] = from_float<T>(row[i + half] * c[i + half] + row[i] * s[i + half]);
        }
      }
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
    // bf16/fp16 outputs round away far more than the coarse exp's error (~20 ULP)
    const bool coarse = !std::is_same<scalar_t, float>::value;
    const scalar_t* src = gate_up.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    at::parallel_for(0, tokens, 16, [&](int64_t begin, int64_t end) {
      std::vector<float> g(width), u(width);
      for (int64_t t = begin; t < end; ++t) {
        widen(src + t * 2 * width, g.data(), width);
        widen(src + t * 2 * width + width, u.data(), width);
        int64_t i = 0;
        for (; i + Vec::size() <= width; i += Vec::size()) {
          Vec x = Vec::loadu(g.data() + i);
          const Vec e = coarse ? x.neg().fexp_u20() : x.neg().exp_u20();
          (x / (Vec(1.f) + e) * Vec::loadu(u.data() + i)).store(g.data() + i);
        }
        for (; i < width; ++i) g[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
        scalar_t* o = dst + t * width;
        for (int64_t j = 0; j < width; ++j) o[j] = from_float<scalar_t>(g[j]);
      }
    });
  });
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("decode_attention", &decode_attention);
  m.def("prefill_attention", &prefill_attention);
  m.def("rms_norm", &rms_norm);
  m.def("add_rms_norm_", &add_rms_norm_);
  m.def("rope_", &rope_);
  m.def("write_kv_", &write_kv_);
  m.def("silu_mul", &silu_mul);
}

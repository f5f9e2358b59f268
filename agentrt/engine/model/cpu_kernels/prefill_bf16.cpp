// Prefill attention for bf16 with the CPU's bf16 dot-product instruction (AVX-512 BF16).

#include "common.h"

namespace agentrt_kernels {

#if defined(__AVX512BF16__)
// The same sweep for bf16 with the CPU's bf16 dot-product instruction: each
// `_mm512_dpbf16_ps` multiplies 32 bf16 pairs into 16 float32 sums, twice the float32
// FMA rate and no widening. Scores use K as (dim pair, key) 32-bit words, outputs use V
// as (key pair, dim) words; P is rounded to bf16 for the second product, as bf16 SDPA does.
// Keys per block here: twice the float32 path's, which halves the per-block softmax work
// of each row; scores are computed 64 keys (four vectors) at a time.
constexpr int64_t KEYS = 128, SCORE_KEYS = 64;

// out = R query rows (bf16 pairs, `pairs` per row) against 16 * NK keys of a packed block
// (row stride `KEYS`). R and NK are constants so the tile stays in registers: the sums
// are locals, copied out once (vector types may alias the operands, so sums kept in
// `out` itself went through memory on every step: a third of the speed).
template <int R, int NK>
inline void score_rows(const uint32_t* qw, int64_t pairs, const uint32_t* kw,
                       __m512 (&out)[R][NK]) {
  __m512 acc[R][NK];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NK; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t d = 0; d < pairs; ++d) {
    __m512i kv[NK];
    for (int j = 0; j < NK; ++j) kv[j] = _mm512_loadu_si512(kw + d * KEYS + 16 * j);
    for (int r = 0; r < R; ++r) {
      const __m512bh qd = (__m512bh)_mm512_set1_epi32(qw[r * pairs + d]);
      for (int j = 0; j < NK; ++j) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], qd, (__m512bh)kv[j]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NK; ++j) out[r][j] = acc[r][j];
}

// o[r] += P[r] . V for R rows over `key_pairs` packed key pairs (head dim 16 * NVD).
template <int R, int NVD>
inline void value_rows(const uint32_t* pw, const uint32_t* vw, int64_t key_pairs, float* o) {
  constexpr int64_t dim = 16 * NVD;
  __m512 acc[R][NVD];
  for (int r = 0; r < R; ++r)
    for (int x = 0; x < NVD; ++x) acc[r][x] = _mm512_loadu_ps(o + r * dim + 16 * x);
  for (int64_t jp = 0; jp < key_pairs; ++jp) {
    __m512i vv[NVD];
    for (int x = 0; x < NVD; ++x) vv[x] = _mm512_loadu_si512(vw + jp * dim + 16 * x);
    for (int r = 0; r < R; ++r) {
      const __m512bh pj = (__m512bh)_mm512_set1_epi32(pw[r * (KEYS / 2) + jp]);
      for (int x = 0; x < NVD; ++x) acc[r][x] = _mm512_dpbf16_ps(acc[r][x], pj, (__m512bh)vv[x]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int x = 0; x < NVD; ++x) _mm512_storeu_ps(o + r * dim + 16 * x, acc[r][x]);
}

template <int NVD>  // head dim = 16 * NVD
void sweep_bf16(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                const at::Tensor& block_table, int64_t context_start, int64_t page_size,
                double scale, at::Tensor& out) {
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
          // The epilogue of one row's scores: scale, mask, store, keep the maximum.
          auto finish_row = [&](int64_t row, const __m512* acc_row) {
            const int64_t visible = std::min(count, context_start + p0 + row % npos - kb + 1);
            const __m512 none = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
            __m512 top = none;
            for (int64_t j = 0; j < NK; ++j) {
              __m512 v = _mm512_mul_ps(acc_row[j], vscale);
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
          };
          int64_t r0 = 0;
          for (; r0 + SCORE_ROWS <= rows; r0 += SCORE_ROWS) {
            __m512 acc[SCORE_ROWS][NK];
            score_rows<SCORE_ROWS, NK>(qw.data() + r0 * pairs, pairs, kw + half, acc);
            for (int r = 0; r < SCORE_ROWS; ++r) finish_row(r0 + r, acc[r]);
          }
          for (; r0 < rows; ++r0) {
            __m512 acc[1][NK];
            score_rows<1, NK>(qw.data() + r0 * pairs, pairs, kw + half, acc);
            finish_row(r0, acc[0]);
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
        int64_t r0 = 0;
        for (; r0 + VALUE_ROWS <= rows; r0 += VALUE_ROWS)
          value_rows<VALUE_ROWS, NVD>(pw.data() + r0 * (KEYS / 2), vw, key_pairs,
                                      o.data() + r0 * dim);
        for (; r0 < rows; ++r0)
          value_rows<1, NVD>(pw.data() + r0 * (KEYS / 2), vw, key_pairs, o.data() + r0 * dim);
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

bool prefill_attention_bf16(const at::Tensor& q, const at::Tensor& k_cache,
                            const at::Tensor& v_cache, const at::Tensor& block_table,
                            int64_t context_start, int64_t page_size, double scale,
                            at::Tensor& out) {
#if defined(__AVX512BF16__)
  if (q.scalar_type() != at::kBFloat16) return false;
  if (q.size(2) == 64) {
    sweep_bf16<4>(q, k_cache, v_cache, block_table, context_start, page_size, scale, out);
    return true;
  }
  if (q.size(2) == 128) {
    sweep_bf16<8>(q, k_cache, v_cache, block_table, context_start, page_size, scale, out);
    return true;
  }
#endif
  return false;
}

}  // namespace agentrt_kernels

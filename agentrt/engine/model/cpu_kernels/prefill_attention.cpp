// Attention of a prefill chunk's queries over their causal context, read in place.

#include "common.h"

namespace agentrt_kernels {

// Flash-style: per (KV head, block of query positions) the rows of the group's query
// heads sweep the context in blocks of KEY_BLOCK keys with an online softmax. Each key
// block is widened to float32 once (K transposed), and scores and outputs are register
// tiles of ROW_TILE rows, so the inner loops are broadcast-FMAs over whole vectors.

constexpr int64_t KEY_BLOCK = 64;
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
  if (prefill_attention_bf16(q, k_cache, v_cache, table, context_start, page_size, scale, out)) {
    return out;
  }
  DISPATCH_MODEL_TYPES(q.scalar_type(), "prefill_attention", [&] {
    prefill_attention_impl<scalar_t>(q, k_cache, v_cache, table, context_start, page_size, scale,
                                     out);
  });
  return out;
}

}  // namespace agentrt_kernels

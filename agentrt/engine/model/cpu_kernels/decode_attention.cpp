// Attention of one query token per sequence over its paged context, read in place.

#include "decode_task.h"

namespace agentrt_kernels {

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
  const T* kp = k_cache.data_ptr<T>();
  const T* vp = v_cache.data_ptr<T>();
  const int64_t* tables = block_tables.data_ptr<int64_t>();
  const int64_t* lens = context_lens.data_ptr<int64_t>();
  T* op = out.data_ptr<T>();
  void* fast = fast_attend<T>(group, dim);
  at::parallel_for(0, batch * kv_heads, 1, [&](int64_t begin, int64_t end) {
    DecodeScratch scratch(group, dim);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / kv_heads, h = task % kv_heads;
      decode_task(qp + b * q.stride(0) + h * group * dim, kp + h * slots * dim,
                  vp + h * slots * dim, tables + b * pages_per_seq, lens[b], page_size,
                  static_cast<float>(scale), group, dim, fast, scratch,
                  op + (b * heads + h * group) * dim);
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

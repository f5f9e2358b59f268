// Every decoder layer of a decode step of at most MATVEC_ROWS tokens (bf16) in one OpenMP
// parallel region. Called layer by layer from Python, a batch-1 step pays ~10 kernel
// calls per layer, each with its own parallel region: the fork/join and the Python
// between them cost about as much as a third of the weight reads (docs/notes/
// engine_kernels.md). Here the threads stay in one region and meet at a barrier between
// the stages that need each other's results:
//
//   norm + qkv rows | k rope + KV write per (token, KV head) | q rope + attention of
//   each thread's query heads | o rows | norm + gate/up rows + SwiGLU on the same
//   columns | down rows
//
// Every value is computed by the same row functions as the layer-by-layer kernels
// (row_ops.h, matvec.h, decode_task.h) in the same order, so the result has the same
// bits as CausalLM's layer loop (tests/test_fused_decode.py). Each thread normalizes the
// whole residual row for itself (a few hundred values) instead of waiting at a barrier;
// the residual alternates between two buffers so that no thread writes what another
// still reads.

#include <omp.h>
#include <torch/extension.h>

#include "decode_task.h"
#include "matvec.h"
#include "row_ops.h"

namespace agentrt_kernels {

namespace {

using bf16 = c10::BFloat16;

std::vector<float> widened(const c10::optional<at::Tensor>& t) {
  if (!t.has_value() || !t->defined()) return {};
  std::vector<float> out(t->numel());
  widen(t->data_ptr<bf16>(), out.data(), t->numel());
  return out;
}

const uint16_t* bits(const at::Tensor& t) {
  return reinterpret_cast<const uint16_t*>(t.data_ptr<bf16>());
}

// [begin, end) of `count` items split evenly over `parts`, in steps of `step`.
std::pair<int64_t, int64_t> share(int64_t count, int64_t step, int part, int parts) {
  const int64_t steps = (count + step - 1) / step;
  const int64_t begin = steps * part / parts * step, end = steps * (part + 1) / parts * step;
  return {std::min(begin, count), std::min(end, count)};
}

}  // namespace

struct StackLayer {
  at::Tensor qkv, o, gate_up, down;
  c10::optional<at::Tensor> qkv_bias;
  std::vector<float> input_norm, post_norm, q_norm, k_norm;  // q/k norms: Qwen3 only
};

class DecodeStack {
 public:
  // Per layer: input norm, qkv, qkv bias (or None), o, post-attention norm, gate/up, down,
  // q norm and k norm (or None): bf16, contiguous, the linears' weights as
  // `tile_matvec_weight` made them.
  DecodeStack(const std::vector<std::vector<c10::optional<at::Tensor>>>& layers, int64_t heads,
              int64_t kv_heads, int64_t head_dim, int64_t intermediate, double eps)
      : heads_(heads), kv_heads_(kv_heads), dim_(head_dim), inter_(intermediate),
        eps_(static_cast<float>(eps)) {
    TORCH_CHECK(has_bf16_matvec(), "the decode stack needs AVX-512 BF16");
    TORCH_CHECK(heads % kv_heads == 0, "query heads must be a multiple of KV heads");
    TORCH_CHECK(intermediate % TILE_ROWS == 0, "the intermediate size must be a multiple of 4");
    for (const auto& w : layers) {
      TORCH_CHECK(w.size() == 9, "a layer is 9 tensors (see DecodeStack)");
      for (const auto& t : w) {
        TORCH_CHECK(!t.has_value() || (t->scalar_type() == at::kBFloat16 && t->is_contiguous()),
                    "the decode stack's weights are contiguous bf16");
      }
      StackLayer layer{*w[1], *w[3], *w[5], *w[6], w[2], widened(w[0]), widened(w[4]),
                       widened(w[7]), widened(w[8])};
      layers_.push_back(std::move(layer));
    }
    TORCH_CHECK(!layers_.empty(), "no layers");
    hidden_ = layers_[0].input_norm.size();
  }

  // The layer caches [KVH, slots, D] the steps write to and read from.
  void set_caches(const std::vector<at::Tensor>& k, const std::vector<at::Tensor>& v) {
    TORCH_CHECK(k.size() == layers_.size() && v.size() == layers_.size(), "one cache per layer");
    for (size_t i = 0; i < k.size(); ++i) {
      TORCH_CHECK(k[i].is_contiguous() && v[i].is_contiguous() &&
                      k[i].scalar_type() == at::kBFloat16 && k[i].size(0) == kv_heads_ &&
                      k[i].size(2) == dim_ && v[i].sizes() == k[i].sizes(),
                  "caches are contiguous bf16 [KVH, slots, D]");
    }
    k_caches_ = k;
    v_caches_ = v;
  }

  // h [T, hidden]: the embedded tokens, T <= MATVEC_ROWS decodes; becomes the residual
  // stream after the last layer (in place). Returns the last layer's output, which the
  // final norm adds to h. Rope tables [positions, D] in float32 or bf16.
  at::Tensor run(at::Tensor& h, const at::Tensor& positions, const at::Tensor& block_tables,
                 const at::Tensor& context_lens, const at::Tensor& slot_mapping,
                 int64_t page_size, double scale, const at::Tensor& cos, const at::Tensor& sin);

 private:
  template <int M, typename C>
  void run_rows(bf16* h, bf16* spare, bf16* delta_out, const int64_t* positions,
                const int64_t* tables, int64_t pages_per_seq, const int64_t* lens,
                const int64_t* slots, int64_t page_size, float scale, const C* cos,
                const C* sin);

  std::vector<StackLayer> layers_;
  std::vector<at::Tensor> k_caches_, v_caches_;
  int64_t heads_, kv_heads_, dim_, inter_, hidden_ = 0;
  float eps_;
};

#if defined(__AVX512BF16__)
template <int M, typename C>
void DecodeStack::run_rows(bf16* h, bf16* spare, bf16* delta_out, const int64_t* positions,
                           const int64_t* tables, int64_t pages_per_seq, const int64_t* lens,
                           const int64_t* slots, int64_t page_size, float scale, const C* cos,
                           const C* sin) {
  const int64_t hidden = hidden_, dim = dim_, group = heads_ / kv_heads_;
  const int64_t q_size = heads_ * dim, kv_size = kv_heads_ * dim, qkv_n = q_size + 2 * kv_size;
  const int64_t inter = inter_, cache_slots = k_caches_[0].size(1);
  std::vector<bf16> qkv(M * qkv_n), attn(M * q_size), mid(M * hidden), act(M * inter);

#pragma omp parallel num_threads(at::get_num_threads())
  {
    const int t = omp_get_thread_num(), threads = omp_get_num_threads();
    std::vector<float> row(std::max(hidden, 2 * dim)), g(inter), u(inter), c(dim), s(dim);
    std::vector<bf16> x(M * hidden), gate_up(M * 2 * inter);
    DecodeScratch scratch(group, dim);
    bf16* residual = h;  // the stream's current buffer; the other is `next`
    bf16* next = spare;
    const std::pair<int64_t, int64_t> cols = share(hidden, 1, t, threads);

    // x = norm(residual + delta) for every row; this thread's columns of the sum go to `next`.
    auto norm = [&](const bf16* delta, const std::vector<float>& w) {
      for (int m = 0; m < M; ++m) {
        residual_row(residual + m * hidden, delta ? delta + m * hidden : nullptr, row.data(),
                     hidden);
        if (delta) {
          for (int64_t i = cols.first; i < cols.second; ++i) next[m * hidden + i] = from_float<bf16>(row[i]);
        }
        normalize_row(row.data(), w.data(), x.data() + m * hidden, hidden, eps_);
      }
      if (delta) std::swap(residual, next);
    };
    // (q/k norm and) rope of one head in place, at `position`
    auto rope_head = [&](bf16* head, const std::vector<float>& norm_w, int64_t position) {
      if (!norm_w.empty()) {
        widen(head, row.data(), dim);
        normalize_row(row.data(), norm_w.data(), head, dim, eps_);
      }
      widen(cos + position * dim, c.data(), dim);
      widen(sin + position * dim, s.data(), dim);
      rope_row(head, c.data(), s.data(), dim, row.data());
    };
    // out = in @ w^T (+ bias), N outputs from K inputs: this thread's row blocks
    auto rows_of = [&](const at::Tensor& w, int64_t n, int64_t k, const bf16* bias,
                       const bf16* in, bf16* out) {
      const auto [b0, b1] = share(w.size(0), 1, t, threads);
      matvec_blocks<M>(reinterpret_cast<const uint16_t*>(in), bits(w), bias, out, k, n, b0, b1);
    };

    const bf16* delta = nullptr;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const StackLayer& layer = layers_[l];
      norm(delta, layer.input_norm);
      const bf16* bias = layer.qkv_bias ? layer.qkv_bias->data_ptr<bf16>() : nullptr;
      rows_of(layer.qkv, qkv_n, hidden, bias, x.data(), qkv.data());
#pragma omp barrier
      bf16* kc = k_caches_[l].data_ptr<bf16>();
      bf16* vc = v_caches_[l].data_ptr<bf16>();
      for (int64_t task = t; task < M * kv_heads_; task += threads) {  // keys into the cache
        const int64_t b = task / kv_heads_, kvh = task % kv_heads_;
        bf16* k = qkv.data() + b * qkv_n + q_size + kvh * dim;
        rope_head(k, layer.k_norm, positions[b]);
        const int64_t at = (kvh * cache_slots + slots[b]) * dim;
        std::memcpy(kc + at, k, dim * sizeof(bf16));
        std::memcpy(vc + at, k + kv_size, dim * sizeof(bf16));
      }
#pragma omp barrier
      // this thread's query heads (a contiguous run of the step's M * heads), attended a
      // KV head's share at a time
      const auto [h0, h1] = share(M * heads_, 1, t, threads);
      for (int64_t first = h0; first < h1;) {
        const int64_t b = first / heads_, kvh = first % heads_ / group;
        const int64_t last = std::min(h1, b * heads_ + (kvh + 1) * group);
        bf16* q = qkv.data() + b * qkv_n + (first - b * heads_) * dim;
        for (int64_t j = 0; j < last - first; ++j) rope_head(q + j * dim, layer.q_norm, positions[b]);
        decode_task(q, kc + kvh * cache_slots * dim, vc + kvh * cache_slots * dim,
                    tables + b * pages_per_seq, lens[b], page_size, scale, last - first, dim,
                    fast_attend<bf16>(last - first, dim), scratch,
                    attn.data() + b * q_size + (first - b * heads_) * dim);
        first = last;
      }
#pragma omp barrier
      rows_of(layer.o, hidden, q_size, nullptr, attn.data(), mid.data());
#pragma omp barrier
      norm(mid.data(), layer.post_norm);
      // this thread's SwiGLU columns: their gate rows and their up rows
      const auto [a0, a1] = share(inter, Vec::size(), t, threads);
      const auto* xb = reinterpret_cast<const uint16_t*>(x.data());
      const uint16_t* gu = bits(layer.gate_up);
      const int64_t up = inter / TILE_ROWS;  // the up rows' first block
      matvec_blocks<M>(xb, gu, nullptr, gate_up.data(), hidden, 2 * inter, a0 / TILE_ROWS,
                       (a1 + TILE_ROWS - 1) / TILE_ROWS);
      matvec_blocks<M>(xb, gu, nullptr, gate_up.data(), hidden, 2 * inter, up + a0 / TILE_ROWS,
                       up + (a1 + TILE_ROWS - 1) / TILE_ROWS);
      for (int m = 0; m < M; ++m) {
        widen(gate_up.data() + m * 2 * inter + a0, g.data(), a1 - a0);
        widen(gate_up.data() + m * 2 * inter + inter + a0, u.data(), a1 - a0);
        silu_mul_span(g.data(), u.data(), act.data() + m * inter + a0, a1 - a0);
      }
#pragma omp barrier
      rows_of(layer.down, hidden, inter, nullptr, act.data(), delta_out);
#pragma omp barrier
      delta = delta_out;
    }
    if (t == 0 && residual != h) std::memcpy(h, residual, M * hidden * sizeof(bf16));
  }
}
#endif

at::Tensor DecodeStack::run(at::Tensor& h, const at::Tensor& positions,
                            const at::Tensor& block_tables, const at::Tensor& context_lens,
                            const at::Tensor& slot_mapping, int64_t page_size, double scale,
                            const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t rows = h.size(0);
  TORCH_CHECK(h.dim() == 2 && h.size(1) == hidden_ && h.is_contiguous() &&
                  h.scalar_type() == at::kBFloat16,
              "h is contiguous bf16 [T, hidden]");
  TORCH_CHECK(rows >= 1 && rows <= MATVEC_ROWS, "the decode stack runs 1 to ", MATVEC_ROWS,
              " tokens");
  TORCH_CHECK(!k_caches_.empty(), "set_caches first");
  for (const at::Tensor* t : {&positions, &context_lens, &slot_mapping}) {
    TORCH_CHECK(t->scalar_type() == at::kLong && t->is_contiguous() && t->numel() == rows,
                "positions, context lengths and slots: one int64 per token");
  }
  TORCH_CHECK(block_tables.scalar_type() == at::kLong && block_tables.is_contiguous() &&
                  block_tables.dim() == 2 && block_tables.size(0) == rows,
              "block tables: contiguous int64 [T, pages]");
  TORCH_CHECK(cos.is_contiguous() && sin.is_contiguous() && cos.size(1) == dim_ &&
                  cos.scalar_type() == sin.scalar_type() &&
                  (cos.scalar_type() == at::kFloat || cos.scalar_type() == at::kBFloat16),
              "rope tables: contiguous float32 or bf16 [positions, D]");
  const int64_t* slots = slot_mapping.data_ptr<int64_t>();
  const int64_t* pos = positions.data_ptr<int64_t>();
  const int64_t* lens = context_lens.data_ptr<int64_t>();
  const int64_t* tables = block_tables.data_ptr<int64_t>();
  for (int64_t b = 0; b < rows; ++b) {  // nothing may throw inside the parallel region
    TORCH_CHECK(slots[b] >= 0 && slots[b] < k_caches_[0].size(1), "slot ", slots[b],
                " is outside the cache");
    TORCH_CHECK(pos[b] >= 0 && pos[b] < cos.size(0), "position ", pos[b], " beyond the rope table");
    TORCH_CHECK(lens[b] >= 1 && lens[b] <= block_tables.size(1) * page_size,
                "context length ", lens[b], " does not fit the block table");
    for (int64_t p = 0; p < (lens[b] + page_size - 1) / page_size; ++p) {
      const int64_t page = tables[b * block_tables.size(1) + p];
      TORCH_CHECK(page >= 0 && (page + 1) * page_size <= k_caches_[0].size(1), "page ", page,
                  " is outside the cache");
    }
  }
  at::Tensor delta = at::empty_like(h), spare = at::empty_like(h);
#if defined(__AVX512BF16__)
  auto go = [&](auto rows_tag, const auto* c, const auto* s) {
    constexpr int M = decltype(rows_tag)::value;
    run_rows<M>(h.data_ptr<bf16>(), spare.data_ptr<bf16>(), delta.data_ptr<bf16>(), pos, tables,
                block_tables.size(1), lens, slots, page_size, static_cast<float>(scale), c, s);
  };
  auto dispatch = [&](const auto* c, const auto* s) {
    switch (rows) {
      case 1: go(std::integral_constant<int, 1>{}, c, s); break;
      case 2: go(std::integral_constant<int, 2>{}, c, s); break;
      case 3: go(std::integral_constant<int, 3>{}, c, s); break;
      default: go(std::integral_constant<int, 4>{}, c, s); break;
    }
  };
  if (cos.scalar_type() == at::kFloat) {
    dispatch(cos.data_ptr<float>(), sin.data_ptr<float>());
  } else {
    dispatch(cos.data_ptr<bf16>(), sin.data_ptr<bf16>());
  }
#endif
  return delta;
}

void bind_decode_stack(pybind11::module& m) {
  pybind11::class_<DecodeStack>(m, "DecodeStack")
      .def(pybind11::init<const std::vector<std::vector<c10::optional<at::Tensor>>>&, int64_t,
                          int64_t, int64_t, int64_t, double>())
      .def("set_caches", &DecodeStack::set_caches)
      .def("run", &DecodeStack::run, pybind11::call_guard<pybind11::gil_scoped_release>());
}

}  // namespace agentrt_kernels

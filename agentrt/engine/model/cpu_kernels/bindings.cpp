// The kernels as a Python module (torch's extension builder names it).

#include <torch/extension.h>

#include "common.h"

namespace agentrt_kernels {
void bind_decode_stack(pybind11::module& m);  // decode_stack.cpp
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using namespace agentrt_kernels;
  // The long ones let other Python threads (the server's event loop) run meanwhile.
  using no_gil = pybind11::call_guard<pybind11::gil_scoped_release>;
  m.def("decode_attention", &decode_attention, no_gil());
  m.def("prefill_attention", &prefill_attention, no_gil());
  m.def("rms_norm", &rms_norm);
  m.def("add_rms_norm_", &add_rms_norm_);
  m.def("rope_", &rope_);
  m.def("write_kv_", &write_kv_);
  m.def("silu_mul", &silu_mul);
  m.def("matvec", &matvec, no_gil());
  m.def("tile_matvec_weight", &tile_matvec_weight);
  m.def("has_bf16_matvec", &has_bf16_matvec);
  m.attr("MATVEC_ROWS") = MATVEC_ROWS;
  bind_decode_stack(m);
}

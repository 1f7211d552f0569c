// SwiGLU: h = silu(g) * u with silu(g) = g * sigmoid(g); backward
// dg = dh * u * sigmoid(g) * (1 + g * (1 - sigmoid(g))), du = dh * silu(g).
#include "common.cuh"

extern "C" __global__ void silu_mul_fwd(const bf16* g, const bf16* u, bf16* h, size_t n) {
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n;
       e += (size_t)gridDim.x * blockDim.x) {
    const float gv = ld(g + e), sg = 1.f / (1.f + __expf(-gv));
    h[e] = to_bf16(gv * sg * ld(u + e));
  }
}

extern "C" __global__ void silu_mul_bwd(const bf16* dh, const bf16* g, const bf16* u, bf16* dg,
                                        bf16* du, size_t n) {
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n;
       e += (size_t)gridDim.x * blockDim.x) {
    const float gv = ld(g + e), uv = ld(u + e), d = ld(dh + e);
    const float sg = 1.f / (1.f + __expf(-gv));
    dg[e] = to_bf16(d * uv * sg * (1.f + gv * (1.f - sg)));
    du[e] = to_bf16(d * gv * sg);
  }
}

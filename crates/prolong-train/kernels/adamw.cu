// AdamW on f32 master weights and moments (decoupled weight decay, as optim::AdamW):
//   p *= decay (1 - lr*wd, or 1);  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
//   p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps);  and the bf16 compute copy of p.
#include "common.cuh"

extern "C" __global__ void adamw(float* p, float* m, float* v, const float* g, bf16* p_bf16,
                                 size_t n, float decay, float b1, float b2, float inv_sqrt_bc2,
                                 float eps, float step_size) {
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n;
       e += (size_t)gridDim.x * blockDim.x) {
    const float gv = g[e];
    const float mv = b1 * m[e] + (1.f - b1) * gv;
    const float vv = b2 * v[e] + (1.f - b2) * gv * gv;
    const float pv = p[e] * decay - step_size * mv / (sqrtf(vv) * inv_sqrt_bc2 + eps);
    m[e] = mv;
    v[e] = vv;
    p[e] = pv;
    p_bf16[e] = to_bf16(pv);
  }
}

// Rotary embedding, HF rotate_half convention: the pair (x[i], x[i + D/2]) of every head
// is rotated by the token's angle a_i (cos/sin tables [T, D/2], f32). sign = +1 forward,
// -1 backward (the rotation by -a). In place on x [T, heads * D].
#include "common.cuh"

extern "C" __global__ void rope(bf16* x, const float* cos_t, const float* sin_t, int tokens,
                                int heads, int head_dim, float sign) {
  const int half = head_dim / 2;
  const size_t n = (size_t)tokens * heads * half;
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n;
       e += (size_t)gridDim.x * blockDim.x) {
    const int i = e % half;
    const size_t th = e / half;  // token * heads + head
    const size_t t = th / heads;
    const float c = cos_t[t * half + i], s = sign * sin_t[t * half + i];
    bf16* p = x + th * head_dim;
    const float a = ld(p + i), b = ld(p + i + half);
    p[i] = to_bf16(a * c - b * s);
    p[i + half] = to_bf16(b * c + a * s);
  }
}

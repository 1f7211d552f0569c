// RMSNorm (Llama): y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps), one block per row.
#include "common.cuh"

extern "C" __global__ void rmsnorm_fwd(const bf16* x, const bf16* w, bf16* y, float* rstd,
                                       int cols, float eps) {
  const bf16* xr = x + (size_t)blockIdx.x * cols;
  bf16* yr = y + (size_t)blockIdx.x * cols;
  float ss = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = ld(xr + c);
    ss += v * v;
  }
  const float r = rsqrtf(block_sum(ss) / cols + eps);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = to_bf16(ld(xr + c) * r * ld(w + c));
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

// dx = rstd * (w*dy) - x * rstd^3 * mean(w*dy*x); dw += dy * x * rstd (f32, atomically
// over rows: dw must be zeroed by the caller).
extern "C" __global__ void rmsnorm_bwd(const bf16* dy, const bf16* x, const bf16* w,
                                       const float* rstd, bf16* dx, float* dw, int cols) {
  const size_t row = blockIdx.x;
  const bf16 *dyr = dy + row * cols, *xr = x + row * cols;
  bf16* dxr = dx + row * cols;
  const float r = rstd[row];
  float dot = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) dot += ld(w + c) * ld(dyr + c) * ld(xr + c);
  const float m = block_sum(dot) / cols;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float g = ld(dyr + c), xv = ld(xr + c);
    dxr[c] = to_bf16(r * ld(w + c) * g - xv * r * r * r * m);
    atomicAdd(dw + c, g * xv * r);
  }
}

// Helpers shared by the fused kernels: bf16 <-> f32 and warp/block reductions.
// Activations are bf16, every sum is accumulated in f32.
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float ld(const bf16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ bf16 to_bf16(float x) { return __float2bfloat16(x); }

__device__ __forceinline__ float warp_sum(float x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ __forceinline__ float block_sum(float x) {
  __shared__ float part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  x = warp_sum(x);
  __syncthreads();  // part[] may still be read by a previous call
  if (lane == 0) part[warp] = x;
  __syncthreads();
  const int nwarps = blockDim.x >> 5;
  x = lane < nwarps ? part[lane] : 0.f;
  return warp_sum(x);
}

__device__ __forceinline__ float block_max(float x) {
  __shared__ float part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  x = warp_max(x);
  __syncthreads();
  if (lane == 0) part[warp] = x;
  __syncthreads();
  const int nwarps = blockDim.x >> 5;
  x = lane < nwarps ? part[lane] : -INFINITY;
  return warp_max(x);
}

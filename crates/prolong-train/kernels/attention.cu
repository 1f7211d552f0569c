// Document-masked causal attention, varlen, grouped-query heads: the FlashAttention-2
// algorithm (online softmax over key tiles in the forward, log-sum-exp saved for the
// backward, recomputation of probabilities in the backward). Memory is linear in T.
//
// Layout (token rows, heads side by side, as ops::attention):
//   q, o, do [T, H * D] bf16;  k, v [T, KV * D] bf16;  lse, delta [T, H] f32.
// Query head h reads kv head h / (H / KV): K and V are never repeated.
// Documents: cu_seqlens [docs + 1] (u32). Work is listed in tile tables built on the host
// (dist::varlen::CuSeqlens::tiles): pairs (doc, first token of the tile), so no block is
// launched for the empty space of short documents.
#include "common.cuh"

#define FWD_WARPS 4
#define FWD_ROWS 16                 // query rows per warp
#define FWD_BR (FWD_WARPS * FWD_ROWS) // query rows per block
#define KT 32                       // keys per tile (one per lane)

// One block: FWD_BR queries of one document and one query head. Lane j scores key j of
// the current key tile for the warp's 16 query rows; each lane accumulates output
// columns lane, lane + 32, ... of its rows.
template <int D>
__device__ void flash_fwd(const bf16* __restrict__ q, const bf16* __restrict__ k,
                          const bf16* __restrict__ v, bf16* __restrict__ o,
                          float* __restrict__ lse, const uint32_t* __restrict__ cu,
                          const uint32_t* __restrict__ tiles, int n_head, int n_kv, float scale) {
  constexpr int C = D / 32;   // output columns per lane
  constexpr int KS = D + 2;   // padded smem row (conflict-free 32-bit reads)
  __shared__ bf16 qs[FWD_BR][KS];
  __shared__ bf16 ks[KT][KS];
  __shared__ bf16 vs[KT][D];
  __shared__ float ps[FWD_WARPS][FWD_ROWS][KT];

  const int h = blockIdx.y, kvh = h / (n_head / n_kv);
  const uint32_t doc = tiles[2 * blockIdx.x], q0 = tiles[2 * blockIdx.x + 1];
  const uint32_t ds = cu[doc], de = cu[doc + 1];
  const uint32_t q1 = min(q0 + FWD_BR, de);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const size_t qstride = (size_t)n_head * D, kstride = (size_t)n_kv * D;

  for (int e = threadIdx.x; e < FWD_BR * D; e += blockDim.x) {
    const int r = e / D, c = e % D;
    qs[r][c] = q0 + r < q1 ? q[(q0 + r) * qstride + h * D + c] : to_bf16(0.f);
  }
  float acc[FWD_ROWS][C], m[FWD_ROWS], l[FWD_ROWS];
#pragma unroll
  for (int r = 0; r < FWD_ROWS; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int c = 0; c < C; ++c) acc[r][c] = 0.f;
  }
  const uint32_t row0 = q0 + warp * FWD_ROWS;
  for (uint32_t k0 = ds; k0 < q1; k0 += KT) {
    __syncthreads();
    for (int e = threadIdx.x; e < KT * D; e += blockDim.x) {
      const int j = e / D, c = e % D;
      const bool in = k0 + j < de;
      ks[j][c] = in ? k[(k0 + j) * kstride + kvh * D + c] : to_bf16(0.f);
      vs[j][c] = in ? v[(k0 + j) * kstride + kvh * D + c] : to_bf16(0.f);
    }
    __syncthreads();
    const uint32_t key = k0 + lane;
#pragma unroll
    for (int r = 0; r < FWD_ROWS; ++r) {
      const uint32_t row = row0 + r;
      if (row >= q1) break;  // uniform over the warp
      float s = -INFINITY;
      if (key <= row) {
        float dot = 0.f;
#pragma unroll 8
        for (int c = 0; c < D; c += 2) {
          const float2 a = __bfloat1622float2(*(const __nv_bfloat162*)&qs[row - q0][c]);
          const float2 b = __bfloat1622float2(*(const __nv_bfloat162*)&ks[lane][c]);
          dot += a.x * b.x + a.y * b.y;
        }
        s = dot * scale;
      }
      const float mnew = fmaxf(m[r], warp_max(s));
      const float p = key <= row ? __expf(s - mnew) : 0.f;
      const float corr = m[r] == -INFINITY ? 0.f : __expf(m[r] - mnew);
      l[r] = l[r] * corr + warp_sum(p);
      m[r] = mnew;
#pragma unroll
      for (int c = 0; c < C; ++c) acc[r][c] *= corr;
      ps[warp][r][lane] = p;
    }
    __syncwarp();
#pragma unroll
    for (int r = 0; r < FWD_ROWS; ++r) {
      if (row0 + r >= q1) break;
      for (int j = 0; j < KT; ++j) {
        const float p = ps[warp][r][j];
#pragma unroll
        for (int c = 0; c < C; ++c) acc[r][c] += p * __bfloat162float(vs[j][lane + 32 * c]);
      }
    }
    __syncwarp();
  }
#pragma unroll
  for (int r = 0; r < FWD_ROWS; ++r) {
    const uint32_t row = row0 + r;
    if (row >= q1) break;
    const float inv = 1.f / l[r];
#pragma unroll
    for (int c = 0; c < C; ++c) o[row * qstride + h * D + lane + 32 * c] = to_bf16(acc[r][c] * inv);
    if (lane == 0) lse[row * n_head + h] = m[r] + logf(l[r]);
  }
}

#define BWD_WARPS 4

// delta[t, h] = sum_d do[t, h, d] * o[t, h, d]: one warp per (token, head).
extern "C" __global__ void flash_bwd_delta(const bf16* o, const bf16* dout, float* delta,
                                           int tokens, int n_head, int head_dim) {
  const size_t w = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (w >= (size_t)tokens * n_head) return;
  float s = 0.f;
  for (int c = lane; c < head_dim; c += 32) s += ld(o + w * head_dim + c) * ld(dout + w * head_dim + c);
  s = warp_sum(s);
  if (lane == 0) delta[w] = s;
}

// One block: KT keys of one document and one kv head, all query heads of its group.
// Warps take the query rows i >= k0 of the document in turn; lane j owns key j: with
// p = exp(s - lse_i) and ds = p (dp - delta_i) it adds p*do_i to dV_j and ds*q_i*scale to
// dK_j (shared f32), and dq_i += scale * sum_j ds_j k_j goes to the f32 dq atomically.
template <int D>
__device__ void flash_bwd(const bf16* __restrict__ q, const bf16* __restrict__ k,
                          const bf16* __restrict__ v, const bf16* __restrict__ dout,
                          const float* __restrict__ lse, const float* __restrict__ delta,
                          float* __restrict__ dq, bf16* __restrict__ dk, bf16* __restrict__ dv,
                          const uint32_t* __restrict__ cu, const uint32_t* __restrict__ tiles,
                          int n_head, int n_kv, float scale) {
  constexpr int AS = D + 1;  // padded accumulator row
  __shared__ float dks[KT][AS];
  __shared__ float dvs[KT][AS];
  __shared__ float qi[BWD_WARPS][D];
  __shared__ float doi[BWD_WARPS][D];
  __shared__ float dsj[BWD_WARPS][KT];

  const int kvh = blockIdx.y, group = n_head / n_kv;
  const uint32_t doc = tiles[2 * blockIdx.x], k0 = tiles[2 * blockIdx.x + 1];
  const uint32_t de = cu[doc + 1];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const size_t qstride = (size_t)n_head * D, kstride = (size_t)n_kv * D;
  for (int e = threadIdx.x; e < KT * AS; e += blockDim.x) {
    dks[e / AS][e % AS] = 0.f;
    dvs[e / AS][e % AS] = 0.f;
  }
  __syncthreads();
  const uint32_t key = k0 + lane;
  const bool key_in = key < de;
  const bf16* krow = k + (size_t)(key_in ? key : k0) * kstride + kvh * D;
  const bf16* vrow = v + (size_t)(key_in ? key : k0) * kstride + kvh * D;
  for (int g = 0; g < group; ++g) {
    const int h = kvh * group + g;
    for (uint32_t i = k0 + warp; i < de; i += BWD_WARPS) {
      for (int c = lane; c < D; c += 32) {
        qi[warp][c] = ld(q + i * qstride + h * D + c);
        doi[warp][c] = ld(dout + i * qstride + h * D + c);
      }
      __syncwarp();
      float ds = 0.f, p = 0.f;
      if (key_in && key <= i) {
        float s = 0.f, dp = 0.f;
        for (int c = 0; c < D; ++c) {
          s += qi[warp][c] * ld(krow + c);
          dp += doi[warp][c] * ld(vrow + c);
        }
        p = __expf(s * scale - lse[i * n_head + h]);
        ds = p * (dp - delta[i * n_head + h]);
        for (int c = 0; c < D; ++c) {
          atomicAdd(&dvs[lane][c], p * doi[warp][c]);
          atomicAdd(&dks[lane][c], ds * qi[warp][c] * scale);
        }
      }
      dsj[warp][lane] = ds;
      __syncwarp();
      for (int c = lane; c < D; c += 32) {
        float acc = 0.f;
        for (int j = 0; j < KT && k0 + j < de; ++j)
          acc += dsj[warp][j] * ld(k + (size_t)(k0 + j) * kstride + kvh * D + c);
        if (acc != 0.f) atomicAdd(dq + i * qstride + h * D + c, acc * scale);
      }
      __syncwarp();
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < KT * D; e += blockDim.x) {
    const int j = e / D, c = e % D;
    if (k0 + j < de) {
      dk[(k0 + j) * kstride + kvh * D + c] = to_bf16(dks[j][c]);
      dv[(k0 + j) * kstride + kvh * D + c] = to_bf16(dvs[j][c]);
    }
  }
}

// Entry points for head dims 64 and 128 (Llama 3: 128). Forward: grid (q tiles of
// FWD_BR, H), block FWD_WARPS * 32. Backward: grid (k tiles of KT, KV), block BWD_WARPS * 32,
// dq zeroed by the caller.
#define FLASH_ENTRIES(D)                                                                       \
  extern "C" __global__ void __launch_bounds__(FWD_WARPS * 32) flash_fwd_d##D(                 \
      const bf16* q, const bf16* k, const bf16* v, bf16* o, float* lse, const uint32_t* cu,    \
      const uint32_t* tiles, int n_head, int n_kv, float scale) {                             \
    flash_fwd<D>(q, k, v, o, lse, cu, tiles, n_head, n_kv, scale);                            \
  }                                                                                           \
  extern "C" __global__ void __launch_bounds__(BWD_WARPS * 32) flash_bwd_d##D(                 \
      const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* lse,        \
      const float* delta, float* dq, bf16* dk, bf16* dv, const uint32_t* cu,                  \
      const uint32_t* tiles, int n_head, int n_kv, float scale) {                             \
    flash_bwd<D>(q, k, v, dout, lse, delta, dq, dk, dv, cu, tiles, n_head, n_kv, scale);      \
  }
FLASH_ENTRIES(64)
FLASH_ENTRIES(128)

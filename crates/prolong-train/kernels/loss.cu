// Cross-entropy over one block of logits rows [rows, vocab] (bf16), one block per row:
// loss[row] = logsumexp(z) - z[target] (f32), and in the same pass the gradient
// dz = (softmax(z) - onehot(target)) * scale (bf16), scale = 1 / (labels in the batch).
// A row whose target is 0xffffffff (no label) gets loss 0 and gradient 0.
#include "common.cuh"

extern "C" __global__ void cross_entropy(const bf16* logits, const uint32_t* targets,
                                         float* loss, bf16* dlogits, int vocab, float scale) {
  const size_t row = blockIdx.x;
  const bf16* z = logits + row * vocab;
  bf16* dz = dlogits + row * vocab;
  const uint32_t tgt = targets[row];
  if (tgt == 0xffffffffu) {
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) dz[c] = to_bf16(0.f);
    if (threadIdx.x == 0) loss[row] = 0.f;
    return;
  }
  float m = -INFINITY;
  for (int c = threadIdx.x; c < vocab; c += blockDim.x) m = fmaxf(m, ld(z + c));
  m = block_max(m);
  float s = 0.f;
  for (int c = threadIdx.x; c < vocab; c += blockDim.x) s += __expf(ld(z + c) - m);
  s = block_sum(s);
  const float inv = 1.f / s;
  for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
    const float p = __expf(ld(z + c) - m) * inv;
    dz[c] = to_bf16((p - (c == (int)tgt ? 1.f : 0.f)) * scale);
  }
  if (threadIdx.x == 0) loss[row] = m + logf(s) - ld(z + tgt);
}

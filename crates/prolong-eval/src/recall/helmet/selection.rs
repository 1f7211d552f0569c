//! Which items HELMET evaluates from a file: numpy's seeded permutation,
//! reproduced bit for bit.

/// HELMET's `--seed` (its default), with which it shuffles a data file.
pub const HELMET_SEED: u32 = 42;

/// The items HELMET evaluates from a file of `n`: `datasets`' `shuffle(seed=42)` (the
/// permutation numpy's `default_rng(42).permutation(n)` gives) and the first `take`
/// of it, in that order.
pub fn helmet_selection(n: usize, take: usize) -> Vec<usize> {
    let mut rng = NumpyPcg64::new(HELMET_SEED);
    let mut order: Vec<usize> = (0..n).collect();
    // numpy's Generator.shuffle: Fisher–Yates from the end, each index drawn by
    // `random_interval` (masked rejection on 32-bit draws).
    for i in (1..n).rev() {
        let j = rng.interval(i as u64) as usize;
        order.swap(i, j);
    }
    order.truncate(take);
    order
}

/// numpy's PCG64 bit generator seeded from `SeedSequence(seed)`, as much of it as
/// `permutation` uses.
struct NumpyPcg64 {
    state: u128,
    inc: u128,
    /// The high half of a 64-bit draw, kept for the next 32-bit one.
    buffered: Option<u32>,
}

impl NumpyPcg64 {
    const MULT: u128 = (2549297995355413924u128 << 64) | 4865540595714422341;

    fn new(seed: u32) -> NumpyPcg64 {
        let w = seed_sequence_state(seed);
        let word = |i: usize| (w[2 * i] as u64 | ((w[2 * i + 1] as u64) << 32)) as u128;
        let init_state = (word(0) << 64) | word(1);
        let init_seq = (word(2) << 64) | word(3);
        let mut rng = NumpyPcg64 {
            state: 0,
            inc: (init_seq << 1) | 1,
            buffered: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(init_state);
        rng.step();
        rng
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(Self::MULT).wrapping_add(self.inc);
    }

    /// XSL-RR output of the next state.
    fn next_u64(&mut self) -> u64 {
        self.step();
        let x = ((self.state >> 64) as u64) ^ (self.state as u64);
        x.rotate_right((self.state >> 122) as u32)
    }

    fn next_u32(&mut self) -> u32 {
        if let Some(u) = self.buffered.take() {
            return u;
        }
        let n = self.next_u64();
        self.buffered = Some((n >> 32) as u32);
        n as u32
    }

    /// A uniform value in 0..=max (max < 2^32 here: a file's item count).
    fn interval(&mut self, max: u64) -> u64 {
        let mask = u64::MAX >> max.leading_zeros();
        loop {
            let v = if max <= u32::MAX as u64 {
                (self.next_u32() as u64) & mask
            } else {
                self.next_u64() & mask
            };
            if v <= max {
                return v;
            }
        }
    }
}

/// numpy's `SeedSequence(seed).generate_state(8, uint32)` for a seed below 2^32
/// (a pool of 4 words, hash-mixed).
fn seed_sequence_state(seed: u32) -> [u32; 8] {
    const INIT_A: u32 = 0x43b0_d7e5;
    const MULT_A: u32 = 0x931e_8875;
    const INIT_B: u32 = 0x8b51_f9dd;
    const MULT_B: u32 = 0x58f3_8ded;
    const MIX_MULT_L: u32 = 0xca01_f9dd;
    const MIX_MULT_R: u32 = 0x4973_f715;
    let mut hash_const = INIT_A;
    let mut hashmix = |v: u32| {
        let mut v = v ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_A);
        v = v.wrapping_mul(hash_const);
        v ^ (v >> 16)
    };
    let mix = |x: u32, y: u32| {
        let r = MIX_MULT_L
            .wrapping_mul(x)
            .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
        r ^ (r >> 16)
    };
    let mut pool = [0u32; 4];
    for (i, p) in pool.iter_mut().enumerate() {
        *p = hashmix(if i == 0 { seed } else { 0 });
    }
    for src in 0..4 {
        for dst in 0..4 {
            if src != dst {
                let h = hashmix(pool[src]);
                pool[dst] = mix(pool[dst], h);
            }
        }
    }
    let mut hash_const = INIT_B;
    let mut out = [0u32; 8];
    for (i, o) in out.iter_mut().enumerate() {
        let mut v = pool[i % 4] ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_B);
        v = v.wrapping_mul(hash_const);
        *o = v ^ (v >> 16);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_is_numpys_permutation() {
        // numpy 2.1: np.random.default_rng(42).permutation(10), and its state.
        assert_eq!(helmet_selection(10, 10), [5, 6, 0, 7, 3, 2, 4, 9, 1, 8]);
        assert_eq!(
            NumpyPcg64::new(42).state,
            274674114334540486603088602300644985544
        );
        assert_eq!(helmet_selection(10, 3), [5, 6, 0]);
        assert!(helmet_selection(0, 5).is_empty());
    }
}

//! Learning-rate schedule: linear warmup, then cosine decay to a floor.
//!
//! The same function as ProLong's trainer (HF `get_cosine_schedule_with_warmup` with a
//! `min_lr_ratio` floor), evaluated at the 0-based index of the optimizer step:
//!
//! * `s < warmup`: `peak · s / warmup` (so the first step runs at lr 0, as in HF);
//! * otherwise, with `p = (s − warmup) / max(1, total − warmup)`:
//!   `peak · max(r, r + (1 − r) · ½(1 + cos πp))`, `r` = `min_lr_ratio`.
//!
//! `warmup = ceil(warmup_fraction · total)`, HF's `warmup_ratio` rule.

/// Warmup + cosine schedule over `total` optimizer steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineSchedule {
    pub peak_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
    pub min_lr_ratio: f64,
}

impl CosineSchedule {
    pub fn new(peak_lr: f64, warmup_fraction: f64, total_steps: u64, min_lr_ratio: f64) -> Self {
        Self {
            peak_lr,
            warmup_steps: (warmup_fraction * total_steps as f64).ceil() as u64,
            total_steps,
            min_lr_ratio,
        }
    }

    /// The learning rate of the optimizer step with 0-based index `step`.
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak_lr * step as f64 / self.warmup_steps.max(1) as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = (step - self.warmup_steps) as f64 / span as f64;
        let r = self.min_lr_ratio;
        let cos = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.peak_lr * (r + (1.0 - r) * cos).max(r)
    }
}

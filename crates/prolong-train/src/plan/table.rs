//! The table `prolong-train plan` prints.

use std::fmt::Write as _;

use super::{Plan, PlanInput, USABLE};

/// `12.3 GB` (powers of 1000, as GPU memory is sold).
pub fn gb(bytes: f64) -> String {
    format!("{:.1} GB", bytes / 1e9)
}

impl Plan {
    /// The human-readable table `prolong-train plan` prints.
    pub fn table(&self, input: &PlanInput) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} parameters ({} per layer, {} in the largest unit); {} ranks = DP {} x SP {}; shard {:?}, recompute {}",
            self.parameters,
            self.layer_parameters,
            self.largest_unit_parameters,
            input.world,
            self.dp,
            input.sp,
            input.shard,
            if input.recompute { "on" } else { "off" },
        );
        let _ = writeln!(
            s,
            "{} tokens per sequence, {} per rank per micro-batch\n\nmemory per rank:",
            input.seq_len, self.tokens_per_rank
        );
        for p in &self.parts {
            let _ = writeln!(s, "  {:<52} {:>10}", p.name, gb(p.bytes));
        }
        let _ = writeln!(
            s,
            "  {:<52} {:>10}  of {} usable ({:.0}% of {}) -> {}",
            "total",
            gb(self.total_bytes),
            gb(USABLE * self.device_bytes as f64),
            USABLE * 100.0,
            gb(self.device_bytes as f64),
            if self.fits { "fits" } else { "DOES NOT FIT" }
        );
        let _ = writeln!(
            s,
            "\nper optimizer step ({} tokens): {:.3e} model FLOPs, {:.3e} executed; {} sent per rank",
            input.tokens_per_step,
            self.step_model_flops,
            self.step_hardware_flops,
            gb(self.step_bytes_sent_per_rank)
        );
        for hint in &self.suggestions {
            let _ = writeln!(s, "would fit with: {hint}");
        }
        s
    }
}

//! A rank's part of an optimizer step: data-parallel ranks each read only their own
//! sequences of the step and move past the others' without reading them, so N ranks
//! read the step's sequences once between them, and the global batch and data order
//! are one rank's with the same step.

use super::error::DataError;
use super::loader::{LoadedSequence, MixtureLoader};

impl MixtureLoader {
    /// Moves past the next `n` sequences without reading them (at most to the end of the
    /// stage); returns how many it passed. The state afterwards is the one reading them
    /// would leave.
    pub fn skip(&mut self, n: u64) -> u64 {
        let n = n.min(self.total - self.position);
        for p in self.position..self.position + n {
            let j = self.order[p as usize] as usize;
            self.streams[j].cursor += 1;
        }
        self.position += n;
        n
    }

    /// Rank `rank`'s part of the next step of `step` sequences over `ranks` ranks: the
    /// sequences `i` of the step with `i ≡ rank (mod ranks)`, in order, the others
    /// passed unread. `None` when the stage has fewer than `step` sequences left (the
    /// position is then unchanged). `step` must be a multiple of `ranks`, so every rank
    /// trains as many micro-batches as the others.
    pub fn next_part(
        &mut self,
        step: u64,
        rank: usize,
        ranks: usize,
    ) -> Result<Option<Vec<LoadedSequence>>, DataError> {
        let (rank, ranks) = (rank as u64, ranks.max(1) as u64);
        if self.total - self.position < step {
            return Ok(None);
        }
        let start = self.position;
        let mut part = Vec::with_capacity((step / ranks) as usize);
        for i in 0..step {
            if i % ranks != rank {
                self.skip(1);
                continue;
            }
            match self.next_sequence() {
                Ok(Some(s)) => part.push(s),
                other => {
                    // (None cannot come: the stage's total was checked above.)
                    self.rewind_to(start);
                    return other.map(|_| None);
                }
            }
        }
        Ok(Some(part))
    }

    /// Samples this loader has read (decoded) so far: with [`next_part`](Self::next_part)
    /// a rank's own sequences only.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Back to an earlier position (stream cursors included), after a failed read.
    fn rewind_to(&mut self, position: u64) {
        for p in position..self.position {
            let j = self.order[p as usize] as usize;
            self.streams[j].cursor -= 1;
        }
        self.position = position;
    }
}

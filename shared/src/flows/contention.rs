//! The one retry discipline for conditional writes: a write that lost a race (another writer
//! moved the version, or took the ref first) reads again and retries, after a jittered pause
//! that spreads a crowd of writers instead of colliding them again at once; a bounded number of
//! times, then a retryable 503.

use crate::Error;
use std::time::Duration;

/// Attempts of one conditional write, the first included.
pub const ATTEMPTS: u32 = 8;

/// Counts the lost races of one write.
pub struct Contention {
    what: &'static str,
    lost: u32,
}

impl Contention {
    /// `what` names the contended thing in the error (`session`, `user`, `identity`).
    pub fn new(what: &'static str) -> Self {
        Self { what, lost: 0 }
    }

    /// Whether a race was lost already (the next attempt reads again what it skipped).
    pub fn lost_any(&self) -> bool {
        self.lost > 0
    }

    /// One more race lost: pauses before the next attempt, or says that was the last.
    pub async fn lost(&mut self) -> Result<(), Error> {
        self.lost += 1;
        if self.lost >= ATTEMPTS {
            return Err(Error::StoreUnavailable(format!(
                "too much contention on one {}",
                self.what
            )));
        }
        tokio::time::sleep(pause(self.lost)).await;
        Ok(())
    }
}

/// Up to 10 ms doubling per lost race (capped at 320 ms), full jitter.
fn pause(lost: u32) -> Duration {
    use rand::Rng;
    let cap = 10u64 << lost.min(5);
    Duration::from_millis(rand::rng().random_range(0..=cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_gives_up_after_its_attempts_with_a_retryable_error() {
        let mut c = Contention::new("session");
        for _ in 1..ATTEMPTS {
            c.lost().await.unwrap();
        }
        let Err(Error::StoreUnavailable(m)) = c.lost().await else {
            panic!("the last attempt gives up")
        };
        assert_eq!(m, "too much contention on one session");
    }

    #[test]
    fn pauses_are_jittered_within_a_doubling_cap() {
        for lost in 1..20 {
            assert!(pause(lost) <= Duration::from_millis(320));
        }
    }
}

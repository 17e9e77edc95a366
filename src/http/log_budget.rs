//! `LogBudget`: at most a few lines a second for something any client can cause at will.
//!
//! An unauthenticated client can make the service log as often as it sends requests (a
//! rejected signature logs an error line). A budget lets the first lines of each second through
//! and holds back the rest; the next line written says how many were held back, so the log
//! still tells how much happened while staying a few lines a second. The requests themselves
//! are still counted, each one, by the metrics.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines let through per second, then held back.
pub struct LogBudget {
    per_second: u32,
    window: Mutex<Window>,
}

struct Window {
    started: Instant,
    written: u32,
    held_back: u64,
}

impl LogBudget {
    /// A budget of `per_second` lines a second.
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            window: Mutex::new(Window {
                started: Instant::now(),
                written: 0,
                held_back: 0,
            }),
        }
    }

    /// `Some(n)` when a line may be written now, `n` being how many were held back since the
    /// last line written; `None` when this one is held back.
    pub fn admit(&self) -> Option<u64> {
        let Ok(mut window) = self.window.lock() else {
            return Some(0);
        };
        if window.started.elapsed() >= Duration::from_secs(1) {
            window.started = Instant::now();
            window.written = 0;
        }
        if window.written >= self.per_second {
            window.held_back += 1;
            return None;
        }
        window.written += 1;
        Some(std::mem::take(&mut window.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::LogBudget;

    #[test]
    fn the_first_lines_of_a_second_pass_and_the_next_one_written_counts_the_rest() {
        let budget = LogBudget::new(3);
        let admitted: Vec<Option<u64>> = (0..10).map(|_| budget.admit()).collect();
        assert_eq!(admitted[..3], [Some(0), Some(0), Some(0)]);
        assert!(admitted[3..].iter().all(Option::is_none));
        std::thread::sleep(std::time::Duration::from_millis(1_050));
        assert_eq!(budget.admit(), Some(7), "the seven held back are told");
        assert_eq!(budget.admit(), Some(0));
    }
}

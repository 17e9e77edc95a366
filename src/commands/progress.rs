//! Progress for long imports and exports: a bar with rows per second on a terminal, nothing
//! when standard error is not one (pipes, CI logs, cron).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Shows rows done, against `total` when it is known.
pub fn rows(label: &'static str, total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:40}] {human_pos}/{human_len} rows, {per_sec}, eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{prefix} {spinner} {human_pos} rows, {per_sec}")
                .expect("a valid template"),
        ),
    };
    bar.set_prefix(label);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

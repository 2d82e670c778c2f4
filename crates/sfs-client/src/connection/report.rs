//! Where progress bars and one-line notices go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress bars and one-line notices go.
#[derive(Debug, Clone)]
pub struct Reporter {
    bars: Option<MultiProgress>,
    notices: Arc<Mutex<Vec<String>>>,
    /// The total bar of the multi-file transfer under way: files' own bars go
    /// above it, so it stays the last line.
    total: Arc<Mutex<Option<ProgressBar>>>,
}

impl Reporter {
    /// Progress bars on stderr when `visible`; otherwise none. Notices always
    /// print one line on stderr.
    pub fn new(visible: bool) -> Self {
        let bars = visible.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            bars,
            notices: Arc::default(),
            total: Arc::default(),
        }
    }

    /// A reporter that draws nothing (tests, scripts).
    pub fn hidden() -> Self {
        Self::new(false)
    }

    /// Every notice printed so far.
    pub fn notices(&self) -> Vec<String> {
        self.notices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Prints one line for the user, above any progress bars.
    pub fn notice(&self, line: String) {
        match &self.bars {
            Some(bars) => {
                if bars.println(&line).is_err() {
                    eprintln!("{line}");
                }
            }
            None => eprintln!("{line}"),
        }
        self.notices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    pub(super) fn bar(&self, label: &str, length: u64) -> ProgressBar {
        let Some(bars) = &self.bars else {
            return ProgressBar::hidden();
        };
        let total = self.total.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let bar = match total {
            Some(total) => bars.insert_before(&total, ProgressBar::new(length)),
            None => bars.add(ProgressBar::new(length)),
        };
        let style = ProgressStyle::with_template(
            "{msg:24!} {bar:30.cyan/blue} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(label.to_owned());
        bar
    }

    /// Takes `bar` off the screen (a finished file's bar under a total bar).
    pub(super) fn remove(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        if let Some(bars) = &self.bars {
            bars.remove(bar);
        }
    }

    /// A total bar for a transfer of `files` files, the last line under their
    /// own bars; hidden when this reporter draws nothing.
    pub(super) fn total(&self, files: usize) -> TotalProgress {
        let bar = match &self.bars {
            Some(bars) => {
                let bar = bars.add(ProgressBar::new(0));
                let style = ProgressStyle::with_template("{prefix:24!} {bar:30.green/blue} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar.set_prefix("total");
                *self.total.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
                bar
            }
            None => ProgressBar::hidden(),
        };
        TotalProgress {
            bar,
            files: files as u64,
            files_done: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            started: Instant::now(),
            slot: self.total.clone(),
        }
    }
}

/// The total line of a multi-file transfer: files done of all, bytes moved of
/// those expected, the rate since the start, and the time left.
#[derive(Debug)]
pub(super) struct TotalProgress {
    bar: ProgressBar,
    files: u64,
    files_done: AtomicU64,
    /// Bytes of the files that finished (the whole file for those that failed:
    /// what is left of them is not to come).
    bytes_done: AtomicU64,
    started: Instant,
    slot: Arc<Mutex<Option<ProgressBar>>>,
}

impl TotalProgress {
    /// One file finished (or failed); `bar` is its own bar.
    pub(super) fn file_done(&self, bar: &ProgressBar) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        let bytes = bar.length().unwrap_or(0).max(bar.position());
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Redraws the total from the bars of the files in flight (finished ones
    /// are counted by [`Self::file_done`]).
    pub(super) fn update<'a>(&self, in_flight: impl Iterator<Item = &'a ProgressBar>) {
        if self.bar.is_hidden() {
            return;
        }
        let done = self.bytes_done.load(Ordering::Relaxed);
        let (mut moved, mut known, mut open) = (done, done, 0u64);
        for bar in in_flight.filter(|bar| !bar.is_finished()) {
            moved += bar.position();
            known += bar.length().unwrap_or(0);
            open += 1;
        }
        let files_done = self.files_done.load(Ordering::Relaxed);
        // Files not yet started are assumed as large as the average so far.
        let seen = files_done + open;
        let unseen = self.files.saturating_sub(seen);
        let expected = match known.checked_div(seen) {
            Some(average) => known + average * unseen,
            None => known,
        };
        self.bar.set_length(expected.max(1));
        self.bar.set_position(moved);
        self.bar.set_message(total_line(
            files_done,
            self.files,
            moved,
            expected,
            self.started.elapsed(),
        ));
    }

    /// Leaves the total's last state on screen.
    pub(super) fn finish(self) {
        self.update(std::iter::empty());
        self.bar.abandon();
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The words of the total line: `3/200 files  1.50 MiB/8.00 MiB  512.00 KiB/s  ETA 0:13`.
/// The rate is the mean since `elapsed` began; the ETA is what is left at that
/// rate, `-:--` before any byte moved.
pub(super) fn total_line(
    files_done: u64,
    files: u64,
    moved: u64,
    expected: u64,
    elapsed: Duration,
) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        moved as f64 / seconds
    } else {
        0.0
    };
    let eta = if rate > 0.0 {
        let left = (expected.saturating_sub(moved) as f64 / rate).ceil() as u64;
        format!("{}:{:02}", left / 60, left % 60)
    } else {
        "-:--".to_owned()
    };
    format!(
        "{files_done}/{files} files  {}/{}  {}/s  ETA {eta}",
        BinaryBytes(moved),
        BinaryBytes(expected),
        BinaryBytes(rate as u64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_line_shows_files_bytes_rate_and_eta() {
        let line = total_line(3, 200, 3 << 19, 8 << 20, Duration::from_secs(3));
        assert_eq!(
            line,
            "3/200 files  1.50 MiB/8.00 MiB  512.00 KiB/s  ETA 0:13"
        );
        let line = total_line(0, 2, 0, 0, Duration::ZERO);
        assert_eq!(line, "0/2 files  0 B/0 B  0 B/s  ETA -:--");
        let line = total_line(1, 2, 1024, 1024 + 600 * 1024, Duration::from_secs(1));
        assert!(line.ends_with("ETA 10:00"), "{line}");
    }

    #[test]
    fn a_hidden_reporter_draws_no_total() {
        let reporter = Reporter::hidden();
        let total = reporter.total(2);
        let bar = ProgressBar::hidden();
        bar.set_length(10);
        bar.set_position(10);
        total.file_done(&bar);
        total.update(std::iter::empty());
        assert!(total.bar.is_hidden());
        total.finish();
    }
}

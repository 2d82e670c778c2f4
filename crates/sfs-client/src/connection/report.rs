//! Where progress bars and one-line notices go.

use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress bars and one-line notices go.
#[derive(Debug, Clone)]
pub struct Reporter {
    bars: Option<MultiProgress>,
    notices: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Reporter {
    /// Progress bars on stderr when `visible`; otherwise none. Notices always
    /// print one line on stderr.
    pub fn new(visible: bool) -> Self {
        let bars = visible.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            bars,
            notices: Arc::default(),
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
        let bar = bars.add(ProgressBar::new(length));
        let style = ProgressStyle::with_template(
            "{msg:24!} {bar:30.cyan/blue} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(label.to_owned());
        bar
    }
}

//! Where the binary's own messages go. Data goes to stdout only when a command's output
//! is data; everything else — summaries, progress, logs — goes to stderr, and `--quiet`
//! silences the summaries and progress (warnings and errors still print).

use std::sync::OnceLock;

static QUIET: OnceLock<bool> = OnceLock::new();

/// Records `--quiet` once, at start-up.
pub fn set_quiet(quiet: bool) {
    let _ = QUIET.set(quiet);
}

/// Whether summaries and progress are silenced.
pub fn quiet() -> bool {
    QUIET.get().copied().unwrap_or(false)
}

/// A summary line on stderr, unless `--quiet`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        if !$crate::output::quiet() {
            eprintln!($($arg)*);
        }
    };
}

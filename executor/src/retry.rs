//! The one retry loop for transient source errors (a dropped connection, a deadlock, a
//! serialization failure, too many connections): exponential backoff with jitter, a
//! bounded number of attempts, and a hook that journals each retry. Chunk reads and the
//! start-of-apply staleness check both go through it, so they back off the same way.

use std::time::Duration;

use crate::error::ExecError;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one (at most 30 s).
    pub base_backoff_ms: u64,
}

/// One retry about to happen, for the caller's journal and log.
#[derive(Debug)]
pub struct Retry<'e> {
    /// 1 for the first retry.
    pub attempt: u32,
    pub of: u32,
    pub wait: Duration,
    pub error: &'e ExecError,
}

impl Retry<'_> {
    /// The journal detail of this retry (JSON).
    pub fn detail(&self) -> String {
        serde_json::json!({
            "attempt": self.attempt,
            "of": self.of,
            "backoff_ms": self.wait.as_millis() as u64,
            "error": self.error.to_string(),
        })
        .to_string()
    }
}

impl RetryPolicy {
    /// Runs `op(attempt)` (attempt 0 first) until it succeeds, fails permanently, or the
    /// retries are used up. Before each retry `on_retry` is told (an error from it stops
    /// the loop), then the loop sleeps the backoff.
    pub fn run<T>(
        &self,
        mut op: impl FnMut(u32) -> Result<T, ExecError>,
        mut on_retry: impl FnMut(&Retry<'_>) -> Result<(), ExecError>,
    ) -> Result<T, ExecError> {
        let mut attempt = 0;
        loop {
            match op(attempt) {
                Ok(v) => return Ok(v),
                Err(error) if error.is_transient() && attempt < self.max_retries => {
                    attempt += 1;
                    let wait = backoff(self.base_backoff_ms, attempt);
                    on_retry(&Retry {
                        attempt,
                        of: self.max_retries,
                        wait,
                        error: &error,
                    })?;
                    std::thread::sleep(wait);
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// `base * 2^(attempt-1)`, at most 30 s, scaled by a jitter factor in [0.5, 1.5) so
/// that parallel workers do not retry in lockstep.
pub fn backoff(base_ms: u64, attempt: u32) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(30_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.5 + f64::from(nanos % 1_000) / 1_000.0;
    Duration::from_millis((capped as f64 * jitter) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> ExecError {
        ExecError::Chunk {
            export: "e".into(),
            chunk: "e/00001".into(),
            detail: "connection reset".into(),
            transient: true,
        }
    }

    #[test]
    fn transient_errors_are_retried_up_to_the_limit_and_permanent_ones_are_not() {
        let policy = RetryPolicy {
            max_retries: 2,
            base_backoff_ms: 1,
        };
        let mut seen = Vec::new();
        let out: Result<(), _> = policy.run(
            |_| Err(transient()),
            |r| {
                seen.push(r.attempt);
                Ok(())
            },
        );
        assert!(out.is_err());
        assert_eq!(seen, vec![1, 2]);
        let mut calls = 0;
        let out = policy.run(
            |attempt| {
                calls += 1;
                if attempt == 0 {
                    Err(transient())
                } else {
                    Ok(attempt)
                }
            },
            |_| Ok(()),
        );
        assert_eq!(out.unwrap(), 1);
        assert_eq!(calls, 2);
        let mut retried = false;
        let out: Result<(), _> = policy.run(
            |_| Err(ExecError::Internal("permanent".into())),
            |_| {
                retried = true;
                Ok(())
            },
        );
        assert!(out.is_err() && !retried);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 1..6 {
            let base = 100u64 << (attempt - 1);
            let w = backoff(100, attempt).as_millis() as u64;
            assert!(w >= base / 2 && w < base * 3 / 2, "attempt {attempt}: {w}");
        }
        assert!(backoff(100, 40).as_millis() < 45_000);
    }
}

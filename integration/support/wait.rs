//! Waiting for the system to reach a state, without asserting how long it takes.

use std::time::Duration;

use anyhow::{Result, ensure};

/// Polls `check` every 100 ms until it returns `Some`, for at most `seconds` (a generous
/// bound for a stuck system, not a performance claim).
pub async fn eventually<T, F, Fut>(what: &str, seconds: u64, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

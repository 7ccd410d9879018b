//! Waiting for the system to reach a state, without asserting how long it takes.

use std::time::Duration;

use anyhow::{Result, bail, ensure};

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

/// Polls `check` every 250 ms from a synchronous test until it returns `Some`, for at most
/// `seconds`; on time-out the error names `what` and the last error `check` returned.
pub fn wait<T>(
    what: &str,
    seconds: u64,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    let mut last_error = None;
    loop {
        match check() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if std::time::Instant::now() > deadline {
            match last_error {
                Some(error) => {
                    bail!("timed out after {seconds} s waiting for {what}; last error: {error:#}")
                }
                None => bail!("timed out after {seconds} s waiting for {what}"),
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

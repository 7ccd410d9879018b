//! The signals that stop a subcommand.

/// Resolves on SIGINT or SIGTERM (on SIGINT alone if SIGTERM cannot be watched).
pub(super) async fn signal() {
    let interrupt = tokio::signal::ctrl_c();
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = interrupt.await;
        return;
    };
    tokio::select! {
        _ = interrupt => {}
        _ = term.recv() => {}
    }
}

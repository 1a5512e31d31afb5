//! What every long-running command shares: its async runtime and waiting for the signal
//! to stop (SIGTERM or Ctrl-C).

use anyhow::Context;

/// The multi-threaded runtime a command runs on (two workers: the machine this is
/// sized for; blocking work goes to tokio's blocking pool).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Wait for SIGTERM or Ctrl-C.
pub async fn terminated() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

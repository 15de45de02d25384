use web::{Application, Config};

/// The web app runs one worker thread unless `TOKIO_WORKER_THREADS` asks for more. It
/// mostly waits on the API, and each worker thread keeps its own allocator cache: after
/// the 10,000-line statement page, a second worker left the app about 7 MB larger, with
/// the same page times (docs/benchmarks.md).
fn main() -> anyhow::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        runtime.worker_threads(1);
    }
    runtime.enable_all().build()?.block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let (format, listen_addr) = (config.log_format, config.listen_addr);
    platform::lifecycle::run_http_program(format, "web", listen_addr, |shutdown| async move {
        Application::build(config)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
    .await
}

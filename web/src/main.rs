use web::{Application, Config};

/// The web app runs one worker thread unless `TOKIO_WORKER_THREADS` asks for more: it
/// mostly waits on the API (see `platform::lifecycle::one_worker_runtime`).
fn main() -> anyhow::Result<()> {
    platform::lifecycle::one_worker_runtime()?.block_on(serve())
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

/// statement-service runs one worker thread unless `TOKIO_WORKER_THREADS` asks for more: it
/// mostly waits on its database, and a second worker kept memory of its own after the
/// 10,000-line statement (see `platform::lifecycle::one_worker_runtime`).
fn main() -> anyhow::Result<()> {
    platform::service::main_on(
        platform::lifecycle::one_worker_runtime()?,
        statement_service::Config::from_env,
        |config| &config.service,
        statement_service::build,
    )
}

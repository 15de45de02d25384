use web::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    platform::telemetry::init(config.log_format);
    if platform::healthcheck::requested() {
        return platform::healthcheck::http(config.listen_addr, "/healthz").await;
    }
    let shutdown = platform::shutdown::on_signal();
    Application::build(config)
        .await?
        .run_until_stopped(shutdown)
        .await
}

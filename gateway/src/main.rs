use gateway::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env(platform::grpc::InternalToken::from_env()?)?;
    if platform::healthcheck::requested() {
        platform::telemetry::install(config.log_format, None)?;
        return platform::healthcheck::http(config.listen_addr, "/healthz").await;
    }
    platform::lifecycle::run_program(config.log_format, "gateway", |shutdown| async move {
        Application::build(config)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
    .await
}

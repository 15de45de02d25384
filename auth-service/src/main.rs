use auth_service::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env(platform::grpc::InternalToken::from_env()?)?;
    platform::telemetry::init(config.log_format);
    if platform::healthcheck::requested() {
        return platform::healthcheck::grpc(config.grpc_addr, config.internal_token).await;
    }
    let shutdown = platform::shutdown::on_signal();
    Application::build(config)
        .await?
        .run_until_stopped(shutdown)
        .await
}

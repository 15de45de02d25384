use order_service::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = order_service::config_from_env(platform::grpc::InternalToken::from_env()?)?;
    platform::telemetry::init(config.service.log_format);
    if platform::healthcheck::requested() {
        return platform::healthcheck::grpc(
            config.service.grpc_addr,
            config.service.internal_token,
        )
        .await;
    }
    let shutdown = platform::shutdown::on_signal();
    Application::build(config)
        .await?
        .run_until_stopped(shutdown)
        .await
}

use gateway::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env(platform::grpc::InternalToken::from_env()?)?;
    let (format, listen_addr) = (config.log_format, config.listen_addr);
    platform::lifecycle::run_http_program(format, "gateway", listen_addr, |shutdown| async move {
        Application::build(config)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
    .await
}

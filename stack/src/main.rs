//! `cargo run --release -p stack`: all six programs in one process on their standard ports.

use stack::{RunningStack, StackConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = StackConfig::from_env()?;
    // One subscriber for the five programs: spans name their program in `service.name`.
    let telemetry = platform::telemetry::init(config.gateway.log_format, "stack")?;
    let shutdown = platform::shutdown::on_signal();
    let ran = async {
        let stack = RunningStack::start(config, shutdown).await?;
        tracing::info!(
            "the platform is up: the web app at http://{1}, API at http://{0}, Swagger UI at http://{0}/docs",
            platform::grpc::dial_address(stack.gateway_addr),
            platform::grpc::dial_address(stack.web_addr)
        );
        stack.wait().await
    }
    .await;
    telemetry.shutdown().await;
    ran
}

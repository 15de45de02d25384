//! `cargo run --release -p stack`: all six programs in one process on their standard ports.

use stack::{RunningStack, StackConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = StackConfig::from_env()?;
    // One subscriber for the six programs: spans name their program in `service.name`.
    let format = config.gateway.log_format;
    platform::lifecycle::run_program(format, "stack", |shutdown| async move {
        let stack = RunningStack::start(config, shutdown).await?;
        tracing::info!(
            "the platform is up: the web app at http://{1}, API at http://{0}, Swagger UI at http://{0}/docs",
            platform::grpc::dial_address(stack.gateway_addr),
            platform::grpc::dial_address(stack.web_addr)
        );
        stack.wait().await
    })
    .await
}

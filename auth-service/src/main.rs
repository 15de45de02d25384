use auth_service::{Application, Config};

/// Each argon2 hash allocates 19 MiB. With glibc's allocator, every thread that ever hashed
/// kept such a block: 20 sign-ups in a row left auth-service at 217 MB, 40 concurrent ones
/// at 711 MB. mimalloc returns freed blocks to the system: the same runs end at 38 MB, and
/// 25 MB half a minute later (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

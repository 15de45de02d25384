fn main() -> anyhow::Result<()> {
    platform::service::main(
        wallet_service::Config::from_env,
        |config| &config.service,
        wallet_service::build,
    )
}

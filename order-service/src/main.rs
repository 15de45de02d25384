fn main() -> anyhow::Result<()> {
    platform::service::main(
        order_service::Config::from_env,
        |config| &config.service,
        order_service::build,
    )
}

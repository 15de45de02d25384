fn main() -> anyhow::Result<()> {
    platform::service::main(
        auth_service::Config::from_env,
        |config| &config.service,
        auth_service::build,
    )
}

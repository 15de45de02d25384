fn main() -> anyhow::Result<()> {
    platform::service::main(
        statement_service::Config::from_env,
        |config| &config.service,
        statement_service::build,
    )
}

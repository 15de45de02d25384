fn main() -> anyhow::Result<()> {
    // `auth-service rotate-keys`: add a signing key and exit (the service keeps running
    // elsewhere and picks it up). It reads the same environment as the service.
    if std::env::args().nth(1).as_deref() == Some("rotate-keys") {
        return rotate_keys();
    }
    platform::service::main(
        auth_service::Config::from_env,
        |config| &config.service,
        auth_service::build,
    )
}

fn rotate_keys() -> anyhow::Result<()> {
    let config = auth_service::Config::from_env(platform::grpc::InternalToken::from_env()?)?;
    platform::telemetry::install(config.service.log_format, None)?;
    let kid = tokio::runtime::Runtime::new()?.block_on(auth_service::rotate_keys(&config))?;
    println!(
        "added signing key {kid}: new tokens are signed with it after {} s \
         (SIGNING_KEY_ACTIVATION_SECS); tokens signed before stay valid until they expire",
        config.signing_key_activation.as_secs()
    );
    Ok(())
}

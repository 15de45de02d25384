//! The gateway binary refuses the placeholder internal credential of `.env.example`.

#![allow(clippy::unwrap_used)]

#[test]
fn the_placeholder_internal_token_is_refused_at_start() {
    let placeholder = platform::grpc::InternalToken::PLACEHOLDER;
    // A free port, so that a gateway that wrongly started would not take the standard one.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env("INTERNAL_API_TOKEN", placeholder)
        .env("GATEWAY_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("INTERNAL_API_TOKEN"), "{stderr}");
    assert!(stderr.contains("placeholder"), "{stderr}");
    assert!(!stderr.contains(placeholder), "{stderr}");
}

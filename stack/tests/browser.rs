//! The web app in a real browser: `web/tests/browser/journey.js` drives Debian's Chromium
//! (Playwright, never a downloaded browser) through a seller's, a buyer's and an admin's
//! journeys against the whole platform started here, checks every page with html-validate
//! and axe-core, and writes screenshots of each page at desktop and phone widths to
//! `target/screenshots/`.
//!
//! Needs Node.js 20+ and `/usr/bin/chromium` (`.ci/run` installs both and runs `npm ci`).

// A test should panic on anything unexpected.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/tests/browser")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("screenshots")
}

/// Installs the script's locked packages unless `.ci/run` (or an earlier run) did.
fn install_packages() {
    let dir = script_dir();
    if ["playwright-core", "axe-core", "html-validate"]
        .iter()
        .all(|package| dir.join("node_modules").join(package).is_dir())
    {
        return;
    }
    let installed = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        // playwright-core downloads nothing, but make sure no browser ever is.
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .current_dir(&dir)
        .status()
        .unwrap_or_else(|error| panic!("this test needs Node.js 20+ and npm ({error})"));
    assert!(installed.success(), "npm ci in {} failed", dir.display());
}

#[tokio::test]
async fn people_sell_buy_with_a_voucher_ship_and_get_paid_and_read_statements_in_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "this test needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)"
    );
    install_packages();
    // The admin signs up in the journey; the platform knows the email beforehand.
    let admin_email = format!("admin-{}@example.org", uuid::Uuid::new_v4().simple());
    let listed = admin_email.clone();
    let stack = stack::testing::spawn(|config| config.auth.admin_emails = vec![listed])
        .await
        .expect("the platform starts");
    let web_url = stack.web_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("journey.js")
            .arg(&web_url)
            .arg(screenshot_dir())
            .arg(&admin_email)
            .current_dir(script_dir())
            .output()
            .unwrap_or_else(|error| panic!("this test needs Node.js 20+ (`node`) ({error})"))
    })
    .await
    .unwrap();
    stack.stop().await.expect("the platform stops cleanly");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the journey failed:\n{stdout}{stderr}"
    );
    let pages: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("page "))
        .filter_map(|line| {
            line.strip_suffix(": valid HTML, no axe violations, screenshots written")
        })
        .collect();
    assert_eq!(
        pages,
        [
            "sign-in",
            "sign-up",
            "wallet",
            "statements",
            "statement-job",
            "statement-lines",
            "selling",
            "product-edit",
            "shop",
            "product",
            "admin-refused",
            "not-found",
            "order",
            "admin-orders",
            "admin-users",
            "sales",
            "orders",
            "vouchers"
        ],
        "{stdout}"
    );
    assert!(stdout.contains("deposited: balance 25.50 EUR"), "{stdout}");
    assert!(
        stdout.contains(": CSV downloaded with 1 line\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("product listed: Concert ticket at 60.00 EUR, 5 units\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bought 2 tickets: 120.00 EUR, paid\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(": 55.00 EUR, paid; buyer's balance 25.00 EUR\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("seller paid: 55.00 EUR + 120.00 EUR, balance 200.50 EUR\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("signed out\njourney ok\n"), "{stdout}");
    for page in pages {
        for width in ["desktop", "phone"] {
            let shot = screenshot_dir().join(format!("{page}-{width}.png"));
            assert!(shot.is_file(), "no screenshot {}", shot.display());
        }
    }
}

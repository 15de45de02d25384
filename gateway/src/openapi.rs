//! The OpenAPI 3.1 document (served at `/openapi.json`) and Swagger UI (at `/docs`, from the
//! binary: no internet needed).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Wallet and orders platform",
        description = "Wallets with a ledger, statements, and orders paid from the wallet.\n\n\
Money is an integer count of minor units plus an ISO 4217 code (`{\"amount\": 1250, \"currency\": \"EUR\"}` is 12.50 EUR). \
Every error is `application/problem+json` (RFC 9457). Authenticated routes take `Authorization: Bearer <access token>`: \
sign up or sign in, then press **Authorize** and paste the `access_token`.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    tags(
        (name = "auth", description = "Accounts and access tokens"),
        (name = "wallet", description = "The caller's EUR wallet: balance and ledger. Amounts are minor units (cents)."),
        (name = "statements", description = "Statements built from the wallet's transactions; long periods as background jobs with a CSV"),
        (name = "products", description = "The catalogue: products sellers put up for sale at prices the server keeps, with stock that orders reserve; edits carry the version (`ETag` / `If-Match`)"),
        (name = "orders", description = "Orders of catalogue products paid from the wallet through events (`pending_payment` → `paid` | `payment_failed`; `cancelled`, `expired`; `sent` → `delivered` by admins), and the 5.00 EUR vouchers orders over 100.00 EUR earn"),
        (name = "admin", description = "For admins (the `admin` role): every user's orders and accounts"),
        (name = "operations", description = "Health, readiness and metrics"),
    ),
    modifiers(&BearerSecurity),
)]
pub struct ApiDoc;

struct BearerSecurity;

impl Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The `access_token` from sign-up or sign-in"))
                    .build(),
            ),
        );
    }
}

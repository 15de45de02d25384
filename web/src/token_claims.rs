//! What the access token says about its holder (its id and roles), read without checking
//! the signature. Only for what a page shows, such as the admin link or which products are
//! the person's own: the API checks the token on every call and refuses whatever its holder
//! may not do, so a forged token gains nothing here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proto::Role;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Default, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Option<Uuid>,
    #[serde(default)]
    pub roles: Vec<Role>,
}

impl Claims {
    /// The claims of a JWT (`header.payload.signature`); none when it does not read as one.
    pub fn read(token: &str) -> Self {
        token
            .split('.')
            .nth(1)
            .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
            .and_then(|json| serde_json::from_slice(&json).ok())
            .unwrap_or_default()
    }

    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_and_roles_are_read_from_the_token_s_payload() {
        let payload = URL_SAFE_NO_PAD.encode(
            br#"{"sub":"0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21","roles":["customer","admin"]}"#,
        );
        let claims = Claims::read(&format!("e30.{payload}.c2ln"));
        assert_eq!(
            claims.sub.map(|id| id.to_string()).as_deref(),
            Some("0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21")
        );
        assert!(claims.is_admin());
        let customer = URL_SAFE_NO_PAD.encode(br#"{"roles":["customer"]}"#);
        assert!(!Claims::read(&format!("e30.{customer}.c2ln")).is_admin());
        assert!(Claims::read("not a token").sub.is_none());
    }
}

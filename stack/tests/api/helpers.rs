//! Test helpers named after the API calls they make.

use ed25519_dalek::pkcs8::EncodePrivateKey;
use platform::shutdown::CancellationToken;
use reqwest::{Response, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::Connection;
use stack::StackConfig;
use stack::testing::TestStack;

pub const PASSWORD: &str = "correct horse battery";

/// The longest a test waits for one HTTP exchange with the platform, body included.
const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct TestApp {
    pub stack: TestStack,
    pub client: reqwest::Client,
    /// A user who sells the products tests order, signed up at the first need.
    seller: tokio::sync::OnceCell<User>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(customize: impl FnOnce(&mut StackConfig)) -> Self {
        let stack = stack::testing::spawn(customize)
            .await
            .expect("the platform starts");
        Self {
            stack,
            client: reqwest::Client::builder()
                // The gateway answers within its own 10 s limit; a request still open after
                // this fails the test naming its URL, rather than hanging it.
                .timeout(CLIENT_TIMEOUT)
                .build()
                .expect("a test HTTP client"),
            seller: tokio::sync::OnceCell::new(),
        }
    }

    pub async fn stop(self) {
        self.stack.stop().await.expect("the platform stops cleanly");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.base_url)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the gateway answers")
    }

    /// The JSON body of `GET path`, whatever its status.
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        self.get(path, token)
            .await
            .json()
            .await
            .expect("a JSON body")
    }

    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the gateway answers")
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/auth/sign-up",
            &json!({"email": email, "password": password}),
            None,
        )
        .await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/auth/sign-in",
            &json!({"email": email, "password": password}),
            None,
        )
        .await
    }

    pub async fn sign_out(&self, token: &str) -> Response {
        self.client
            .post(self.url("/auth/sign-out"))
            .bearer_auth(token)
            .send()
            .await
            .expect("the gateway answers")
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/auth/refresh",
            &json!({"refresh_token": refresh_token}),
            None,
        )
        .await
    }

    pub async fn me(&self, token: &str) -> Response {
        self.get("/auth/me", Some(token)).await
    }

    /// Signs up a fresh user and returns (email, access token).
    pub async fn signed_up_user(&self) -> (String, String) {
        let user = self.user().await;
        (user.email, user.token)
    }

    /// Signs up a fresh user.
    pub async fn user(&self) -> User {
        self.user_with_email(unique_email()).await
    }

    /// Signs up a user with this email.
    pub async fn user_with_email(&self, email: String) -> User {
        let response = self.sign_up(&email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("JSON");
        User {
            id: body["user"]["id"]
                .as_str()
                .expect("an id")
                .parse()
                .expect("a UUID"),
            email,
            token: body["access_token"].as_str().expect("a token").to_owned(),
        }
    }

    /// The test's seller, who puts up the products [`TestApp::product`] creates.
    pub async fn seller(&self) -> &User {
        self.seller.get_or_init(|| self.user()).await
    }

    /// `POST /products` by `seller`, whatever the answer.
    pub async fn create_product(&self, seller: &User, body: &Value) -> Response {
        self.post_json("/products", body, Some(&seller.token)).await
    }

    /// A product of the test's seller, `stock` units at `price`, that must be created;
    /// returns its body.
    pub async fn product(&self, price: i64, stock: i64) -> Value {
        let seller = self.seller().await;
        self.product_of(seller, price, stock).await
    }

    /// A product of `seller` that must be created; returns its body.
    pub async fn product_of(&self, seller: &User, price: i64, stock: i64) -> Value {
        let body = json!({"name": "A good book", "price": price, "stock": stock});
        let response = self.create_product(seller, &body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{body}");
        response.json().await.expect("JSON")
    }

    /// `POST /wallet/transactions` with an optional `Idempotency-Key`.
    pub async fn transact(
        &self,
        token: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url("/wallet/transactions"))
            .bearer_auth(token)
            .json(body);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.expect("the gateway answers")
    }

    /// A transaction that must succeed; returns its body.
    pub async fn transacted(&self, token: &str, body: &Value) -> Value {
        let response = self.transact(token, body, None).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{body}");
        response.json().await.expect("JSON")
    }

    pub async fn balance(&self, token: &str) -> i64 {
        let body: Value = self
            .get("/wallet/balance", Some(token))
            .await
            .json()
            .await
            .expect("JSON");
        body["balance"].as_i64().expect("a balance")
    }

    /// The wallet's balance and ledger sum, straight from its database.
    pub async fn wallet_audit(&self, user: uuid::Uuid) -> wallet_service::ledger::Audit {
        let url = self
            .stack
            .config
            .wallet
            .service
            .database_url
            .expose_secret()
            .to_owned();
        let pool = sqlx::PgPool::connect(&url).await.expect("wallet database");
        let audit = wallet_service::ledger::audit(&pool, user)
            .await
            .expect("audit");
        pool.close().await;
        audit
    }

    /// Signs a token with the auth service's own key, read from its database, so tests can
    /// craft claims the service would never issue (expired, other audience, ...).
    pub async fn mint_token(&self, claims: &Value) -> String {
        let url = self
            .stack
            .config
            .auth
            .service
            .database_url
            .expose_secret()
            .to_owned();
        let mut db = sqlx::PgConnection::connect(&url)
            .await
            .expect("auth database");
        let (kid, seed): (String, Vec<u8>) =
            sqlx::query_as("select kid, seed from signing_keys limit 1")
                .fetch_one(&mut db)
                .await
                .expect("a signing key");
        let seed: [u8; 32] = seed.try_into().expect("32-byte seed");
        let der = ed25519_dalek::SigningKey::from_bytes(&seed)
            .to_pkcs8_der()
            .expect("DER");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(kid);
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .expect("a signed token")
    }
}

impl TestApp {
    /// A connection to the auth service's database.
    pub async fn auth_db(&self) -> sqlx::PgConnection {
        let url = self.stack.config.auth.service.database_url.expose_secret();
        sqlx::PgConnection::connect(url)
            .await
            .expect("auth database")
    }

    /// Builds another auth-service instance on this platform's auth database, with the
    /// platform's settings changed by `customize`, and runs it. Fails as its start fails.
    pub async fn start_auth_service(
        &self,
        customize: impl FnOnce(&mut auth_service::Config),
    ) -> anyhow::Result<Program> {
        let mut config = self.stack.config.auth.clone();
        config.service.grpc_addr = ([127, 0, 0, 1], 0).into();
        customize(&mut config);
        let listener = tokio::net::TcpListener::bind(config.service.grpc_addr).await?;
        let addr = listener.local_addr()?;
        let service = auth_service::build(config, listener).await?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(service.run_until_stopped(stop.clone()));
        Ok(Program { addr, stop, task })
    }

    /// Another gateway in front of this platform's services (`customize` may point it at
    /// another auth-service), running.
    pub async fn start_gateway(&self, customize: impl FnOnce(&mut gateway::Config)) -> Program {
        let mut config = self.stack.config.gateway.clone();
        config.listen_addr = ([127, 0, 0, 1], 0).into();
        config.auth_addr = self.stack.stack.auth_addr.to_string();
        config.wallet_addr = self.stack.stack.wallet_addr.to_string();
        config.statement_addr = self.stack.stack.statement_addr.to_string();
        config.order_addr = self.stack.stack.order_addr.to_string();
        customize(&mut config);
        let gateway = gateway::Application::build(config)
            .await
            .expect("the gateway starts");
        let addr = gateway.local_addr().expect("an address");
        let stop = CancellationToken::new();
        let task = tokio::spawn(gateway.run_until_stopped(stop.clone()));
        Program { addr, stop, task }
    }
}

/// A program a test started beside the platform.
pub struct Program {
    pub addr: std::net::SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Program {
    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("the program does not panic")
            .expect("the program stops cleanly");
    }
}

/// The claims of a JWT, read without checking it.
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The `kid` a JWT names.
pub fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT header")
        .kid
        .expect("a kid")
}

pub struct User {
    pub id: uuid::Uuid,
    pub email: String,
    pub token: String,
}

pub fn unique_email() -> String {
    format!("user-{}@example.org", uuid::Uuid::new_v4().simple())
}

/// Asserts `response` is a problem with `status`, and returns its body.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok()),
        Some("application/problem+json"),
    );
    let body: Value = response.json().await.expect("a JSON problem");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}

pub use platform::testing::eventually;

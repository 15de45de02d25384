//! The web app, driven like a browser without a script: forms posted with their cookies.

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode, redirect};

use crate::helpers::{PASSWORD, TestApp, unique_email};

/// A browser's cookie jar, by hand: the tests look at each cookie's attributes too.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            // Redirects are what the tests look at.
            client: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.stack.web_url.clone(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            let (pair, _) = value.split_once(';').unwrap_or((value, ""));
            let (name, cookie) = pair.split_once('=').unwrap();
            if cookie.is_empty() || value.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), cookie.to_owned());
            }
        }
    }

    async fn get(&mut self, path: &str) -> Response {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("the web app answers");
        self.keep_cookies(&response);
        response
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("the web app answers");
        self.keep_cookies(&response);
        response
    }

    /// The CSRF token of the forms on the page at `path`.
    async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await.text().await.unwrap();
        let marker = r#"name="csrf" value=""#;
        let start = page.find(marker).expect("a form with a CSRF field") + marker.len();
        page[start..][..page[start..].find('"').unwrap()].to_owned()
    }

    async fn sign_up(&mut self, email: &str) -> Response {
        let csrf = self.csrf("/sign-up").await;
        self.post(
            "/sign-up",
            &[
                ("csrf", csrf.as_str()),
                ("email", email),
                ("password", PASSWORD),
                ("next", "/wallet"),
            ],
        )
        .await
    }
}

fn location(response: &Response) -> &str {
    response.headers()[LOCATION].to_str().unwrap()
}

#[tokio::test]
async fn a_person_signs_up_deposits_and_sees_the_balance_and_the_chart() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);

    let signed_up = browser.sign_up(&unique_email()).await;
    assert_eq!(signed_up.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_up), "/wallet");
    let set_cookies: Vec<&str> = signed_up
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert_eq!(set_cookies.len(), 2, "{set_cookies:?}");
    assert!(set_cookies[0].starts_with("wp_access="));
    assert!(set_cookies[0].ends_with("; Path=/; Max-Age=870; HttpOnly; SameSite=Lax"));
    assert!(set_cookies[1].starts_with("wp_refresh="));
    assert!(set_cookies[1].ends_with("; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax"));

    let csrf = browser.csrf("/wallet").await;
    let deposited = browser
        .post(
            "/wallet/deposit",
            &[
                ("csrf", &csrf),
                ("key", "first-deposit"),
                ("amount", "12,50"),
                ("description", "Top-up"),
            ],
        )
        .await;
    assert_eq!(deposited.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&deposited), "/wallet?done=deposit");

    let wallet = browser.get("/wallet?done=deposit").await;
    assert_eq!(wallet.status(), StatusCode::OK);
    let headers = wallet.headers().clone();
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    let page = wallet.text().await.unwrap();
    assert!(
        page.contains(r#"<p class="notice" role="status">Deposit made.</p>"#),
        "{page}"
    );
    assert!(page.contains(r#"<p class="balance" data-testid="balance">12.50 EUR</p>"#));
    assert!(page.contains("<svg "), "the chart is drawn on the server");
    assert!(
        page.contains(": 0.00 EUR to 12.50 EUR</title>")
            || page.contains(": 12.50 EUR to 12.50 EUR</title>")
    );
    assert!(page.contains("<td>Top-up</td><td class=\"num\">+12.50 EUR</td>"));
    assert!(!page.contains("<script"));

    // The same form posted twice (same key) moves the money once.
    let again = browser
        .post(
            "/wallet/deposit",
            &[
                ("csrf", &csrf),
                ("key", "first-deposit"),
                ("amount", "12,50"),
                ("description", "Top-up"),
            ],
        )
        .await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    let page = browser.get("/wallet").await.text().await.unwrap();
    assert!(page.contains(r#"<p class="balance" data-testid="balance">12.50 EUR</p>"#));
    app.stop().await;
}

#[tokio::test]
async fn a_form_problem_is_shown_next_to_the_form_that_caused_it() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_up(&unique_email()).await;
    let csrf = browser.csrf("/wallet").await;

    let typo = browser
        .post(
            "/wallet/deposit",
            &[("csrf", &csrf), ("key", "k1"), ("amount", "12.345")],
        )
        .await;
    assert_eq!(typo.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = typo.text().await.unwrap();
    assert!(page.contains(r#"<p class="error" role="alert">Enter an amount like 12.50.</p><button type="submit">Deposit</button>"#), "{page}");

    let too_much = browser
        .post(
            "/wallet/withdraw",
            &[("csrf", &csrf), ("key", "k2"), ("amount", "5")],
        )
        .await;
    assert_eq!(too_much.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = too_much.text().await.unwrap();
    assert!(
        page.contains(r#"role="alert">"#)
            && page.contains(r#"</p><button type="submit">Withdraw</button>"#),
        "{page}"
    );

    // A wrong password at sign-in: the form again, with the email kept.
    let mut stranger = Browser::new(&app);
    let csrf = stranger.csrf("/sign-in").await;
    let refused = stranger
        .post(
            "/sign-in",
            &[
                ("csrf", &csrf),
                ("email", "nobody@example.com"),
                ("password", "wrong password"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let page = refused.text().await.unwrap();
    assert!(page.contains(r#"value="nobody@example.com""#));
    assert!(page.contains(r#"<p class="error" role="alert">"#));
    app.stop().await;
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_up(&unique_email()).await;
    let csrf = browser.csrf("/wallet").await;

    let without = browser
        .post("/wallet/deposit", &[("key", "k"), ("amount", "10")])
        .await;
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    let wrong = browser
        .post(
            "/wallet/deposit",
            &[("csrf", "forged"), ("key", "k"), ("amount", "10")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("This form has expired or did not come from this site.")
    );
    // Nothing moved; the real token still works.
    let page = browser.get("/wallet").await.text().await.unwrap();
    assert!(page.contains(r#"data-testid="balance">0.00 EUR</p>"#));
    let with = browser
        .post(
            "/wallet/deposit",
            &[("csrf", &csrf), ("key", "k"), ("amount", "10")],
        )
        .await;
    assert_eq!(with.status(), StatusCode::SEE_OTHER);

    // Sign-out is a form too.
    let sign_out = browser.post("/sign-out", &[]).await;
    assert_eq!(sign_out.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn a_page_behind_sign_in_redirects_to_sign_in_and_back() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    for path in ["/wallet", "/statements", "/orders", "/vouchers"] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            location(&response),
            format!("/sign-in?next=%2F{}", &path[1..])
        );
    }
    assert_eq!(location(&browser.get("/").await), "/sign-in");
    let email = unique_email();
    app.user_with_email(email.clone()).await;
    let csrf = browser.csrf("/sign-in?next=%2Fstatements").await;
    let signed_in = browser
        .post(
            "/sign-in",
            &[
                ("csrf", &csrf),
                ("email", &email),
                ("password", PASSWORD),
                ("next", "/statements"),
            ],
        )
        .await;
    assert_eq!(location(&signed_in), "/statements");
    assert_eq!(browser.get("/statements").await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn an_expired_access_cookie_is_renewed_with_the_refresh_cookie_until_sign_out() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_up(&unique_email()).await;
    let first_refresh = browser.cookies["wp_refresh"].clone();

    // The browser dropped the access cookie (it expires before its token does).
    browser.cookies.remove("wp_access");
    let wallet = browser.get("/wallet").await;
    assert_eq!(wallet.status(), StatusCode::OK);
    assert!(browser.cookies.contains_key("wp_access"));
    assert_ne!(browser.cookies["wp_refresh"], first_refresh, "rotated");

    let csrf = browser.csrf("/wallet").await;
    let latest_refresh = browser.cookies["wp_refresh"].clone();
    let signed_out = browser.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(location(&signed_out), "/sign-in?signed_out=1");
    assert!(!browser.cookies.contains_key("wp_access"));
    assert!(!browser.cookies.contains_key("wp_refresh"));

    // The refresh token went with the sign-out: bringing it back does not sign in again.
    browser
        .cookies
        .insert("wp_refresh".to_owned(), latest_refresh);
    let wallet = browser.get("/wallet").await;
    assert_eq!(wallet.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&wallet), "/sign-in?next=%2Fwallet");
    app.stop().await;
}

/// Asks for `path` until its page contains `text` (within 10 s); returns the page.
async fn page_until(browser: &mut Browser, path: &str, text: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = browser.get(path).await.text().await.unwrap();
        if page.contains(text) {
            return page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} did not show {text:?} within 10 s: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_long_statement_is_prepared_with_progress_and_downloaded_as_csv() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_up(&unique_email()).await;
    let csrf = browser.csrf("/wallet").await;
    browser
        .post(
            "/wallet/deposit",
            &[
                ("csrf", &csrf),
                ("key", "k"),
                ("amount", "20"),
                ("description", "tea, \"milk\""),
            ],
        )
        .await;
    let today = chrono::Utc::now().date_naive();

    // A short period: the lines at once (once the statement has heard of the deposit).
    let short = format!(
        "/statements?from={}&to={today}",
        today - chrono::Days::new(3)
    );
    let page = page_until(&mut browser, &short, "<td>tea, &quot;milk&quot;</td>").await;
    assert!(
        page.contains(r#"<dd data-testid="closing">20.00 EUR</dd>"#),
        "{page}"
    );

    // A bad period: the reason next to the picker.
    let bad = browser
        .get(&format!(
            "/statements?from={today}&to={}",
            today - chrono::Days::new(1)
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(bad.contains(r#"<p class="error" role="alert">"#), "{bad}");

    // A long one: a job, with its own page that reloads itself until the file is ready.
    let long = browser
        .get(&format!(
            "/statements?from={}&to={today}",
            today - chrono::Days::new(400)
        ))
        .await;
    assert_eq!(long.status(), StatusCode::SEE_OTHER);
    let job_page = location(&long).to_owned();
    assert!(job_page.starts_with("/statements/jobs/"), "{job_page}");
    let page = page_until(&mut browser, &job_page, "Download CSV").await;
    assert!(
        page.contains(r#"<p data-testid="job-status">Ready: 1 line.</p>"#),
        "{page}"
    );

    let csv = browser.get(&format!("{job_page}/download")).await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let job_id = job_page.trim_start_matches("/statements/jobs/");
    assert_eq!(
        csv.headers()["content-disposition"],
        format!("attachment; filename=\"statement-{job_id}.csv\"")
    );
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "transaction_id,occurred_at,type,amount,balance_after,description"
    );
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].ends_with(",deposit,20.00,20.00,\"tea, \"\"milk\"\"\""),
        "{csv}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_order_that_could_not_be_paid_is_paid_again_and_cancelled_from_its_page() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_up(&unique_email()).await;
    // The shop's pages are elsewhere: the order is placed through the API, as the person.
    let token = browser.cookies["wp_access"].clone();
    let pen = app.product(1200, 5).await;
    let body = serde_json::json!({"items": [{"product_id": pen["id"], "quantity": 1}]});
    let placed = app.post_json("/orders", &body, Some(&token)).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: serde_json::Value = placed.json().await.unwrap();
    let order_page = format!("/orders/{}", order["id"].as_str().unwrap());

    let page = page_until(&mut browser, &order_page, "payment failed</span>").await;
    assert!(page.contains(">Pay again</button>"));
    let list = browser.get("/orders").await.text().await.unwrap();
    assert!(
        list.contains(&format!(r#"<a href="{order_page}">"#)),
        "{list}"
    );
    assert!(list.contains("12.00 EUR"));

    // A deposit, then "Pay again".
    let csrf = browser.csrf("/wallet").await;
    browser
        .post(
            "/wallet/deposit",
            &[("csrf", &csrf), ("key", "k"), ("amount", "15")],
        )
        .await;
    let paid = browser
        .post(&format!("{order_page}/pay"), &[("csrf", &csrf)])
        .await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&paid), format!("{order_page}?done=pay"));
    let page = page_until(
        &mut browser,
        &order_page,
        "data-testid=\"order-status\">paid</span>",
    )
    .await;
    assert!(!page.contains(">Pay again</button>"));

    let cancelled = browser
        .post(&format!("{order_page}/cancel"), &[("csrf", &csrf)])
        .await;
    assert_eq!(location(&cancelled), format!("{order_page}?done=cancel"));
    let page = browser
        .get(&format!("{order_page}?done=cancel"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<p class="notice" role="status">Order cancelled.</p>"#));
    assert!(page.contains("data-testid=\"order-status\">cancelled</span>"));
    let timeline: Vec<&str> = page
        .split("</time> ")
        .skip(1)
        .map(|rest| &rest[..rest.find("</li>").unwrap()])
        .collect();
    assert_eq!(
        timeline,
        [
            "pending payment",
            "payment failed",
            "pending payment",
            "paid",
            "cancelled"
        ]
    );

    // A second cancel: the refusal next to the buttons, not an error page.
    let again = browser
        .post(&format!("{order_page}/cancel"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let page = again.text().await.unwrap();
    assert!(page.contains(r#"<p class="error" role="alert">"#), "{page}");
    assert!(page.contains("data-testid=\"order-status\">cancelled</span>"));
    app.stop().await;
}

#[tokio::test]
async fn sign_ups_through_the_web_app_are_limited_per_browser_address_not_for_the_app() {
    let app = TestApp::spawn_with(|config| {
        config.gateway.sign_up_limits.per_address = 1;
        // The web app (and the test, its "proxy") connect from loopback.
        config.gateway.trusted_proxies =
            gateway::client_address::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    let sign_up_from = |client: &'static str| {
        let app = &app;
        async move {
            let mut browser = Browser::new(app);
            let csrf = browser.csrf("/sign-up").await;
            browser
                .client
                .post(format!("{}/sign-up", browser.base))
                .header(COOKIE, browser.cookie_header())
                .header("x-forwarded-for", client)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", &unique_email()),
                    ("password", PASSWORD),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        sign_up_from("203.0.113.1").await.status(),
        StatusCode::SEE_OTHER
    );
    // Another person through the same web app is not held back by the first.
    assert_eq!(
        sign_up_from("203.0.113.2").await.status(),
        StatusCode::SEE_OTHER
    );
    // The first again: the gateway's limit, as a sentence on the form.
    let refused = sign_up_from("203.0.113.1").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let page = refused.text().await.unwrap();
    assert!(page.contains(r#"<p class="error" role="alert">"#), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn the_shop_selling_and_admin_pages_redirect_to_sign_in_without_a_session() {
    let app = TestApp::spawn().await;
    let product = app.product(1200, 5).await;
    let product_page = format!("/shop/{}", product["id"].as_str().unwrap());
    let edit_page = format!("/selling/products/{}", product["id"].as_str().unwrap());
    let mut browser = Browser::new(&app);
    for path in [
        "/shop",
        &product_page,
        "/selling",
        &edit_page,
        "/sales",
        "/admin",
        "/admin/users",
    ] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        let next = path.replace('/', "%2F");
        assert_eq!(
            location(&response),
            format!("/sign-in?next={next}"),
            "{path}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_shop_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_up(&unique_email()).await;
    let product = app.product(1200, 5).await;
    let id = product["id"].as_str().unwrap();
    let csrf = browser.csrf("/shop").await;

    let buy = format!("/shop/{id}/buy");
    let without = browser.post(&buy, &[("key", "k"), ("quantity", "1")]).await;
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    let forged = browser
        .post(&buy, &[("csrf", "forged"), ("key", "k"), ("quantity", "1")])
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let new_product = [("name", "Pen"), ("price", "1"), ("stock", "1")];
    let create = browser.post("/selling/products", &new_product).await;
    assert_eq!(create.status(), StatusCode::FORBIDDEN);
    let withdraw = browser
        .post(&format!("/selling/products/{id}/withdraw"), &[])
        .await;
    assert_eq!(withdraw.status(), StatusCode::FORBIDDEN);
    let ship = browser.post(&format!("/admin/orders/{id}/ship"), &[]).await;
    assert_eq!(ship.status(), StatusCode::FORBIDDEN);

    // Nothing was ordered, listed or withdrawn.
    let orders = browser.get("/orders").await.text().await.unwrap();
    assert!(orders.contains("<p>No orders.</p>"), "{orders}");
    let selling = browser.get("/selling").await.text().await.unwrap();
    assert!(
        selling.contains("<p>No products here yet.</p>"),
        "{selling}"
    );
    let still = app.get_json(&format!("/products/{id}"), None).await;
    assert_eq!(still["status"], "active");
    assert_eq!(still["reserved"], 0);

    // With the token the same buy form places the order.
    let placed = browser
        .post(&buy, &[("csrf", &csrf), ("key", "k"), ("quantity", "2")])
        .await;
    assert_eq!(placed.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&placed).ends_with("?done=placed"),
        "{}",
        location(&placed)
    );
    app.stop().await;
}

#[tokio::test]
async fn buying_explains_a_refusal_next_to_the_buy_form_and_places_one_order_per_form() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_up(&unique_email()).await;
    let product = app.product(1200, 5).await;
    let page = format!("/shop/{}", product["id"].as_str().unwrap());
    let buy = format!("{page}/buy");
    let csrf = browser.csrf(&page).await;

    let unknown_voucher = browser
        .post(
            &buy,
            &[
                ("csrf", &csrf),
                ("key", "k1"),
                ("quantity", "1"),
                ("voucher_code", "NOSUCHCODE42"),
            ],
        )
        .await;
    assert_eq!(unknown_voucher.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let shown = unknown_voucher.text().await.unwrap();
    assert!(
        shown.contains(r#"<p class="error" role="alert">"#)
            && shown.contains(r#"</p><button type="submit">Buy</button>"#),
        "{shown}"
    );
    let too_many = browser
        .post(&buy, &[("csrf", &csrf), ("key", "k2"), ("quantity", "6")])
        .await;
    assert_eq!(too_many.status(), StatusCode::CONFLICT);
    let typo = browser
        .post(&buy, &[("csrf", &csrf), ("key", "k3"), ("quantity", "two")])
        .await;
    assert_eq!(typo.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(typo.text().await.unwrap().contains(
        r#"<p class="error" role="alert">Enter the quantity as a whole number, like 2.</p>"#
    ));

    // The same form posted twice places one order.
    let form = [("csrf", csrf.as_str()), ("key", "k4"), ("quantity", "2")];
    let first = browser.post(&buy, &form).await;
    let again = browser.post(&buy, &form).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&first), location(&again));
    let order = browser.get(location(&first)).await.text().await.unwrap();
    assert!(
        order.contains(r#"<dd data-testid="total">24.00 EUR</dd>"#),
        "{order}"
    );
    let still = app
        .get_json(
            &format!("/products/{}", product["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        still["stock"].as_i64().unwrap() - still["available"].as_i64().unwrap(),
        2
    );
    app.stop().await;
}

#[tokio::test]
async fn a_seller_lists_edits_with_the_version_and_withdraws_a_product() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_up(&unique_email()).await;
    let csrf = browser.csrf("/selling").await;
    let product = [
        ("csrf", csrf.as_str()),
        ("name", "Pen"),
        ("description", ""),
        ("price", "3,50"),
        ("stock", "4"),
        ("sku", "PEN-1"),
    ];
    let created = browser.post("/selling/products", &product).await;
    assert_eq!(location(&created), "/selling?done=created");
    let listed = browser
        .get("/selling?done=created")
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.contains(r#"<span class="hint">(PEN-1)</span></td><td class="num">3.50 EUR</td><td class="num">4</td>"#), "{listed}");
    let marker = r#"<a href="/selling/products/"#;
    let start = listed.find(marker).unwrap() + marker.len() - "/selling/products/".len();
    let edit = listed[start..][..listed[start..].find('"').unwrap()].to_owned();

    let change = |version: &'static str, price: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("version", version.to_owned()),
            ("name", "Pen".to_owned()),
            ("description", "Blue ink".to_owned()),
            ("price", price.to_owned()),
            ("stock", "4".to_owned()),
        ]
    };
    let form = change("1", "4.00");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = browser.post(&edit, &form).await;
    assert_eq!(location(&saved), format!("{edit}?done=saved"));
    // A form showing version 1 again: refused, with the product as it now is.
    let stale = change("1", "5.00");
    let stale: Vec<(&str, &str)> = stale.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = browser.post(&edit, &stale).await;
    assert_eq!(refused.status(), StatusCode::PRECONDITION_FAILED);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("Someone changed this product since you opened it."),
        "{page}"
    );
    assert!(page.contains(r#"name="version" value="2""#), "{page}");
    assert!(page.contains(r#"value="4.00""#), "{page}");

    let withdrawn = browser
        .post(&format!("{edit}/withdraw"), &[("csrf", &csrf)])
        .await;
    assert_eq!(location(&withdrawn), format!("{edit}?done=withdrawn"));
    let page = browser
        .get(&format!("{edit}?done=withdrawn"))
        .await
        .text()
        .await
        .unwrap();
    // Withdrawing is a change of its own: a new version.
    assert!(page.contains("Version 3 · withdrawn"), "{page}");
    assert!(!page.contains(">Withdraw</button>"));
    app.stop().await;
}

#[tokio::test]
async fn a_customer_is_shown_the_api_s_refusal_on_the_admin_pages() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_up(&unique_email()).await;
    let wallet = browser.get("/wallet").await.text().await.unwrap();
    assert!(
        !wallet.contains(r#"href="/admin""#),
        "no admin link for a customer"
    );

    for path in ["/admin", "/admin/users"] {
        let page = browser.get(path).await;
        assert_eq!(page.status(), StatusCode::FORBIDDEN, "{path}");
        let page = page.text().await.unwrap();
        assert!(
            page.contains(r#"<p class="error" role="alert" data-testid="refused">Only an admin can see every user's orders and accounts.</p>"#),
            "{page}"
        );
    }
    let csrf = browser.csrf("/wallet").await;
    let order = uuid::Uuid::new_v4();
    let ship = browser
        .post(&format!("/admin/orders/{order}/ship"), &[("csrf", &csrf)])
        .await;
    assert_eq!(ship.status(), StatusCode::FORBIDDEN);
    let page = ship.text().await.unwrap();
    assert!(
        page.contains(r#"data-testid="refused">Only an admin can ship or deliver orders.</p>"#),
        "{page}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_filter_outside_its_vocabulary_is_refused_naming_the_values_allowed() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_up(&unique_email()).await;

    let orders = browser.get("/orders?status=shipped").await;
    assert_eq!(orders.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = orders.text().await.unwrap();
    assert!(
        page.contains(r#"<p class="error" role="alert">Status: must be one of pending_payment, paid, payment_failed, cancelled, expired, sent, delivered (got &quot;shipped&quot;).</p>"#),
        "{page}"
    );
    let selling = browser.get("/selling?status=sold").await;
    assert_eq!(selling.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = selling.text().await.unwrap();
    assert!(
        page.contains("Status: must be one of active, withdrawn (got &quot;sold&quot;)."),
        "{page}"
    );
    // The wallet's type filter is the filter form's problem: the page is shown, the filter
    // refused next to it, as the API's own refusal of a bad date is.
    let wallet = browser.get("/wallet?type=gift").await;
    assert_eq!(wallet.status(), StatusCode::OK);
    let page = wallet.text().await.unwrap();
    assert!(
        page.contains("Type: must be one of deposit, withdraw, purchase, cancellation, reversal (got &quot;gift&quot;)."),
        "{page}"
    );
    // An empty filter is none: every order.
    assert_eq!(
        browser.get("/orders?status=").await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

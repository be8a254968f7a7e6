//! The Okta stand-in's org authorization server and Bearer checks, over
//! real HTTPS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use ward_standins::{OktaConfig, OktaStandIn, TestCa};

const REDIRECT: &str = "https://ward.example/cb";
const SCOPES: &str = "okta.logs.read okta.users.read offline_access";

struct Org {
    okta: OktaStandIn,
    http: reqwest::Client,
    _ca: TestCa,
}

async fn start() -> Org {
    let ca = TestCa::generate().unwrap();
    let okta = OktaStandIn::start(
        OktaConfig {
            events: 20,
            ..OktaConfig::default()
        },
        &ca,
    )
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap()])
        .resolve(&okta.host(), okta.addr())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Org {
        okta,
        http,
        _ca: ca,
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

impl Org {
    async fn authorize(
        &self,
        client_id: &str,
        response_type: &str,
        scope: &str,
    ) -> reqwest::Response {
        let q = query(&[
            ("client_id", client_id),
            ("response_type", response_type),
            ("scope", scope),
            ("redirect_uri", REDIRECT),
            ("state", "s1"),
        ]);
        self.http
            .get(format!(
                "https://{}/oauth2/v1/authorize?{q}",
                self.okta.host()
            ))
            .send()
            .await
            .unwrap()
    }

    fn callback(response: &reqwest::Response) -> BTreeMap<String, String> {
        let location = response.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }

    async fn code(&self) -> String {
        let (id, _) = self.okta.oauth_client();
        let r = self.authorize(&id, "code", SCOPES).await;
        assert_eq!(r.status(), 302);
        Org::callback(&r)["code"].clone()
    }

    async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("https://{}/oauth2/v1/token", self.okta.host()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(query(form))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn api(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("https://{}{path}", self.okta.host()))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn authorize_validates_and_redirects() {
    let org = start().await;
    let (id, _) = org.okta.oauth_client();
    // Unknown client: an error page, never a redirect.
    assert_eq!(
        org.authorize("0oa-unknown", "code", SCOPES).await.status(),
        400
    );
    let r = org.authorize(&id, "token", SCOPES).await;
    assert_eq!(Org::callback(&r)["error"], "unsupported_response_type");
    let r = org.authorize(&id, "code", "").await;
    assert_eq!(Org::callback(&r)["error"], "invalid_scope");
    org.okta.set_oauth_decline(true);
    let r = org.authorize(&id, "code", SCOPES).await;
    let cb = Org::callback(&r);
    assert_eq!(cb["error"], "access_denied");
    assert_eq!(cb["state"], "s1");
    org.okta.set_oauth_decline(false);
    org.okta
        .set_oauth_redirect_uris(vec!["https://elsewhere.example/cb".into()]);
    assert_eq!(org.authorize(&id, "code", SCOPES).await.status(), 400);
}

#[tokio::test]
async fn token_grants_refresh_rotation_and_bearer_checks() {
    let org = start().await;
    let (id, secret) = org.okta.oauth_client();
    let code = org.code().await;
    let exchange = |code: String, secret: String| {
        let id = id.clone();
        let org = &org;
        async move {
            org.token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", &id),
                ("client_secret", &secret),
            ])
            .await
        }
    };
    let (status, body) = exchange(code.clone(), "wrong".into()).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    // The failed client authentication did not burn the code.
    let (status, body) = exchange(code.clone(), secret.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let access = body["access_token"].as_str().unwrap().to_string();
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    // Single use.
    let (status, body) = exchange(code, secret.clone()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");

    assert_eq!(org.api("/api/v1/logs?limit=1", &access).await.status(), 200);
    assert_eq!(org.api("/api/v1/users/me", &access).await.status(), 200);
    let no_scope = org.api("/api/v1/org", &access).await;
    assert_eq!(no_scope.status(), 403);
    assert!(
        no_scope.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    assert_eq!(org.api("/api/v1/logs", "made-up").await.status(), 401);

    let (status, body) = org
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["refresh_token"].as_str().unwrap(), refresh);
    assert_eq!(org.okta.oauth_refreshes(), 1);
    assert_eq!(org.okta.oauth_tokens_issued(), 2);
    let (status, body) = org
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(status, 400, "rotated refresh token is spent");
    assert_eq!(body["error"], "invalid_grant");

    // Expired access tokens get 401 with Okta's Bearer challenge.
    org.okta.set_access_token_lifetime(Duration::ZERO);
    let code = org.code().await;
    let (_, body) = exchange(code, secret.clone()).await;
    let expired = body["access_token"].as_str().unwrap().to_string();
    let r = org.api("/api/v1/logs", &expired).await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    let (status, body) = org.token(&[("grant_type", "password")]).await;
    assert_eq!(status, 401, "{body}");
}

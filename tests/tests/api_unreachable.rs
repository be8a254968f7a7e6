//! A provider that refuses connections: what the operator reads names the
//! host and port that refused, and the egress log records the attempt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use ward_standins::okta::OktaConfig;
use ward_standins::tls::TestCa;
use ward_tests::api::ApiHarness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_name_the_host_that_refused() {
    // A loopback port nobody listens on, under the provider's real name.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let ca = TestCa::generate().unwrap();
    let api = ApiHarness::start(ca, vec![("ward-demo.okta.com".into(), closed)], |_| {}).await;

    let (status, body) = api
        .create_with_token(
            "okta",
            &OktaConfig::default().api_token,
            json!({"domain": "ward-demo"}),
        )
        .await;
    let said = body.to_string();
    assert!(
        said.contains("connection refused by ward-demo.okta.com:443"),
        "{status}: {said}"
    );
    assert!(!said.contains("ErrorCode::"), "{said}");
    assert!(!said.contains("ConnectionRefused"), "{said}");
}

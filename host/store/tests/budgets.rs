//! Rate budgets held in the store (shared by the daemons of one
//! PostgreSQL database): a token bucket per (plugin, tenant).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use ward_store::RateTake;

const T0: i64 = 1_700_000_000_000;

async fn a_bucket_starts_full_refills_and_blocks(backend: Backend) {
    let db = open(backend).await;
    let s = &db.store;
    // 60 a minute: a full minute's burst, then one a second.
    for _ in 0..60 {
        assert_eq!(
            s.take_rate_token("okta", "acme", 60, T0).await.unwrap(),
            RateTake::Taken
        );
    }
    assert_eq!(
        s.take_rate_token("okta", "acme", 60, T0).await.unwrap(),
        RateTake::Wait(Duration::from_secs(1)),
        "the 61st token within the same instant"
    );
    // Another tenant has its own bucket.
    assert_eq!(
        s.take_rate_token("okta", "globex", 60, T0).await.unwrap(),
        RateTake::Taken
    );
    assert_eq!(
        s.take_rate_token("okta", "acme", 60, T0 + 1_000)
            .await
            .unwrap(),
        RateTake::Taken
    );

    // Extra requests are charged: 2 more, so the next token is 3 s away.
    s.charge_rate_budget("okta", "acme", 2.0).await.unwrap();
    assert_eq!(
        s.take_rate_token("okta", "acme", 60, T0 + 1_000)
            .await
            .unwrap(),
        RateTake::Wait(Duration::from_secs(3))
    );

    // A Retry-After blocks everyone until it passes, whatever the balance;
    // an earlier block does not shorten it.
    s.limit_rate_budget("okta", "acme", 60, T0 + 60_000, 60.0, T0 + 90_000)
        .await
        .unwrap();
    s.limit_rate_budget("okta", "acme", 60, T0 + 60_000, 60.0, T0 + 70_000)
        .await
        .unwrap();
    assert_eq!(
        s.take_rate_token("okta", "acme", 60, T0 + 80_000)
            .await
            .unwrap(),
        RateTake::Wait(Duration::from_secs(10))
    );
    assert_eq!(
        s.take_rate_token("okta", "acme", 60, T0 + 90_000)
            .await
            .unwrap(),
        RateTake::Taken
    );

    // What the provider says is left caps the balance.
    s.limit_rate_budget("okta", "acme", 60, T0 + 200_000, 1.0, 0)
        .await
        .unwrap();
    assert_eq!(
        s.take_rate_token("okta", "acme", 60, T0 + 200_000)
            .await
            .unwrap(),
        RateTake::Taken
    );
    assert!(matches!(
        s.take_rate_token("okta", "acme", 60, T0 + 200_000)
            .await
            .unwrap(),
        RateTake::Wait(_)
    ));
}

both_backends!(a_bucket_starts_full_refills_and_blocks);

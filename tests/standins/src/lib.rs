//! Stand-ins for the SaaS APIs Ward's connectors talk to.
//!
//! Each stand-in is a real HTTPS server on loopback that answers under the
//! provider's real hostname with a certificate from a run-time [`TestCa`], so
//! a connector runs unmodified: the client only needs a DNS override to the
//! stand-in's address and the CA as a trusted root. They serve both the
//! integration tests and `ward demo`, and never read anything from outside
//! this crate: all data is generated from a seed. The one exception is
//! [`replay`], which serves the recorded exchanges of a fixture folder the
//! caller names.
//!
//! - [`tls`]: the run-time certificate authority.
//! - [`server`]: the HTTPS listener and the request log, fault plan and
//!   rate-limit windows every stand-in uses.
//! - [`okta`]: the Okta org stand-in.
//! - [`egnyte`]: the Egnyte domain stand-in.
//! - [`zendesk`]: the Zendesk Support account stand-in.
//! - [`replay`]: serves recorded request → response fixtures.
//! - [`hec`]: a Splunk HEC receiver for HTTP sinks (plain HTTP).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod authz;
pub mod egnyte;
pub mod hec;
pub mod okta;
pub mod replay;
mod seal;
pub mod server;
mod synth;
pub mod tls;
pub mod zendesk;

pub use egnyte::{EgnyteConfig, EgnyteStandIn};
pub use okta::{OktaConfig, OktaStandIn};
pub use server::{Fault, RecordedRequest};
pub use tls::{IssuedCert, TestCa};
pub use zendesk::{ZendeskConfig, ZendeskStandIn};

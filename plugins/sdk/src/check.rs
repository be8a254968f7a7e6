//! The names of the checks `test` reports ("Test now"), shared by every
//! connector so that operators and tooling see the same words.

/// The stored credentials are accepted by the provider.
pub const CREDENTIALS_VALID: &str = "credentials-valid";
/// The identity behind the credentials holds the role audit data needs.
pub const ADMIN_ROLE: &str = "admin-role";
/// The account's plan includes audit logs.
pub const PLAN_INCLUDES_AUDIT: &str = "plan-includes-audit";
/// The OAuth token carries every scope the connector asks for.
pub const SCOPE_PRESENT: &str = "scope-present";
/// Okta's System Log can be read with the credentials.
pub const SYSTEM_LOG_READABLE: &str = "system-log-readable";

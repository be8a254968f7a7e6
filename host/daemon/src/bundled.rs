//! Connectors shipped inside the `ward` binary, built from `plugins/` by
//! this crate's build script.

/// (key, component bytes) of every bundled connector.
pub const PLUGINS: &[(&str, &[u8])] = &[
    ("okta", include_bytes!(env!("WARD_BUNDLED_WARD_OKTA"))),
    ("egnyte", include_bytes!(env!("WARD_BUNDLED_WARD_EGNYTE"))),
    ("zendesk", include_bytes!(env!("WARD_BUNDLED_WARD_ZENDESK"))),
];

/// The component bytes of a bundled connector.
pub fn get(key: &str) -> Option<&'static [u8]> {
    PLUGINS.iter().find(|(k, _)| *k == key).map(|(_, b)| *b)
}

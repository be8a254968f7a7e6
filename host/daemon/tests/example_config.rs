//! `ward.example.toml` parses, and what it sets is exactly the defaults
//! (so the documented values cannot drift from the code's).

use ward_daemon::Config;

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../ward.example.toml"
));

#[test]
fn the_example_configuration_parses_to_the_defaults() -> Result<(), String> {
    let parsed = Config::parse(EXAMPLE)?;
    assert_eq!(format!("{parsed:?}"), format!("{:?}", Config::default()));
    // The commented policy example is valid too once uncommented.
    let policy: String = EXAMPLE
        .lines()
        .skip_while(|l| !l.starts_with("# [policy.okta]"))
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let with_policy = Config::parse(&policy)?;
    assert!(with_policy.policy.contains_key("okta"));
    Ok(())
}

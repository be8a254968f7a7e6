# Contributor recipes. Nothing here is needed for the quick start.

# Run the demo (bundled connectors against local stand-ins), polling.
demo:
    cargo run -p ward -- demo

# The whole test suite (what CI runs).
test:
    cargo xtask test

# Everything CI checks.
ci:
    bash .ci/run

# Lints for the host and for the plugins' real target.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --target wasm32-wasip2 -p ward-sdk -p ward-okta -p ward-egnyte -p ward-zendesk -p ward-hostile -p ward-undeclared -p ward-probe-v02 -p ward-compat-v01 -- -D warnings

# Build the connectors as components into target/plugins.
plugins:
    cargo build --target wasm32-wasip2 --profile plugin --target-dir target/plugins -p ward-okta -p ward-egnyte -p ward-zendesk

# Print a built plugin's manifest, digest and imports.
inspect plugin="ward_okta":
    cargo run -p ward -- plugin inspect target/plugins/wasm32-wasip2/plugin/{{plugin}}.wasm

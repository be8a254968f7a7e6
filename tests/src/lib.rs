//! Shared helpers for Ward end-to-end tests.

//! The contract versions the host binds: one `bindgen!` module per released
//! `ward:connector` version (`wit/v0.1`, `wit/v0.2`), and [`adapt`], the one
//! place where an older version's values are turned into the current
//! internal model (the 0.2 types) and back.

pub(crate) mod adapt;
pub mod v0_1;
pub mod v0_2;

/// A contract version a component can export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ContractVersion {
    /// `ward:connector@0.1.0`: `exchange` required, auth kind in the
    /// reserved `ward.auth` config entry.
    V0_1,
    /// `ward:connector@0.2.0`: typed auth kind, optional `exchange`.
    V0_2,
}

impl ContractVersion {
    /// The package version, as in the WIT (`0.1.0`, `0.2.0`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V0_1 => "0.1.0",
            ContractVersion::V0_2 => "0.2.0",
        }
    }

    /// The version whose `connector` interface `export` names, if any
    /// (`ward:connector/connector@0.2.0` → 0.2).
    pub(crate) fn of_connector_export(export: &str) -> Option<ContractVersion> {
        match export {
            "ward:connector/connector@0.1.0" => Some(ContractVersion::V0_1),
            CONNECTOR_V0_2 => Some(ContractVersion::V0_2),
            _ => None,
        }
    }
}

/// The optional `exchange` export of 0.2.
pub(crate) const EXCHANGE_V0_2: &str = "ward:connector/exchange@0.2.0";
/// The 0.2 `connector` interface's export name.
pub const CONNECTOR_V0_2: &str = "ward:connector/connector@0.2.0";

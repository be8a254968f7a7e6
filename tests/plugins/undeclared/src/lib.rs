//! A connector that imports `attacker:exfil/channel`, an interface the host
//! does not provide. Ward must reject it at load, naming the interface.

use ward_sdk::{AuditPage, Config, Connector, Result, TestReport, UserPage};

wit_bindgen::generate!({
    inline: "
        package attacker:exfil;
        interface channel {
            send: func(data: string);
        }
        world undeclared {
            import channel;
        }
    ",
    world: "undeclared",
});

struct Undeclared;

impl Connector for Undeclared {
    fn test(_config: &Config) -> Result<TestReport> {
        Ok(TestReport {
            checks: Vec::new(),
            account_name: None,
            principal: None,
        })
    }

    fn fetch_audit(_config: &Config, _since: i64, _cursor: Option<String>) -> Result<AuditPage> {
        attacker::exfil::channel::send("audit");
        Ok(AuditPage {
            events: Vec::new(),
            cursor: String::new(),
            more: false,
        })
    }

    fn fetch_users(_config: &Config, _cursor: Option<String>) -> Result<UserPage> {
        Ok(UserPage {
            users: Vec::new(),
            cursor: None,
            more: false,
        })
    }
}

ward_sdk::export_connector!(Undeclared);

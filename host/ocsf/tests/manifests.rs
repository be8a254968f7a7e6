//! The bundled connectors' `[ocsf]` tables: each parses, names only
//! classes and activities Ward maps to, and sends the actions the
//! connectors produce where the design says.

use std::path::Path;

use anyhow::Context;
use ward_manifest::Manifest;
use ward_ocsf::Exporter;
use ward_store::StoredEvent;

fn manifest(plugin: &str) -> anyhow::Result<Manifest> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins")
        .join(plugin)
        .join("ward.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    Ok(Manifest::parse(&text)?)
}

fn event(action: &str) -> StoredEvent {
    StoredEvent {
        instance_id: "i1".into(),
        event_id: "e1".into(),
        time_ms: 1_700_000_000_000,
        action: action.into(),
        actor_id: Some("u1".into()),
        actor_kind: "user".into(),
        actor_name: Some("Ada".into()),
        actor_email: Some("ada@acme.example".into()),
        targets_json: r#"[{"id":"g1","kind":"UserGroup","name":"Staff"},{"id":null,"kind":"file","name":"/Shared/a.txt"}]"#.into(),
        ip: Some("192.0.2.1".into()),
        user_agent: None,
        outcome: "success".into(),
        raw_json: "{}".into(),
        ingested_ms: 1_700_000_000_500,
    }
}

/// (class_uid, activity_id) the plugin's table gives `action`.
fn class_of(exporter: &Exporter, action: &str) -> anyhow::Result<(u64, u64)> {
    let e = exporter.map(&event(action));
    Ok((
        e["class_uid"].as_u64().context("class_uid")?,
        e["activity_id"].as_u64().context("activity_id")?,
    ))
}

#[test]
fn bundled_tables_name_only_known_classes_and_activities() -> anyhow::Result<()> {
    for plugin in ["okta", "egnyte", "zendesk"] {
        let m = manifest(plugin)?;
        assert!(m.ocsf.is_some(), "{plugin} has no [ocsf] table");
        ward_ocsf::check(&m)?;
    }
    Ok(())
}

#[test]
fn bundled_tables_map_the_connectors_actions() -> anyhow::Result<()> {
    let okta = Exporter::new(&manifest("okta")?);
    for (action, want) in [
        ("user.session.start", (3002, 1)),
        ("user.session.end", (3002, 2)),
        ("user.authentication.sso", (3002, 1)),
        ("user.account.update_password", (3001, 3)),
        ("user.lifecycle.activate", (3001, 2)),
        ("user.lifecycle.deactivate", (3001, 5)),
        ("user.lifecycle.delete.initiated", (3001, 6)),
        ("user.mfa.factor.activate", (3001, 10)),
        ("user.mfa.factor.deactivate", (3001, 11)),
        ("group.user_membership.add", (3006, 3)),
        ("application.user_membership.add", (3005, 1)),
        ("system.api_token.create", (6003, 1)),
        ("policy.evaluate_sign_on", (0, 99)),
        ("security.threat.detected", (0, 99)),
    ] {
        assert_eq!(class_of(&okta, action)?, want, "okta {action}");
    }
    let egnyte = Exporter::new(&manifest("egnyte")?);
    for (action, want) in [
        ("file.Download", (6006, 2)),
        ("file.Create Folder", (6006, 99)),
        ("login.Login", (3002, 1)),
        ("login.Failed Login", (3002, 1)),
        ("login.Logout", (3002, 2)),
        ("user.Disable", (3001, 5)),
        ("group.Add Member", (3006, 3)),
        ("permission.Change", (0, 99)),
    ] {
        assert_eq!(class_of(&egnyte, action)?, want, "egnyte {action}");
    }
    let zendesk = Exporter::new(&manifest("zendesk")?);
    for (action, want) in [
        ("user.login", (3002, 1)),
        ("user.update", (3001, 99)),
        ("user_setting.create", (3001, 99)),
        ("api_token.create", (6003, 1)),
        ("account.exported", (6003, 2)),
        ("account_setting.update", (6003, 3)),
        ("zendesk/app_market/app.destroy", (6003, 4)),
        ("ticket.merge", (6003, 99)),
    ] {
        assert_eq!(class_of(&zendesk, action)?, want, "zendesk {action}");
    }
    Ok(())
}

#[test]
fn an_unknown_class_or_activity_is_refused_by_check() -> anyhow::Result<()> {
    let mut m = manifest("okta")?;
    let decl = m.ocsf.as_mut().context("okta [ocsf]")?;
    decl.map[0].class = 4001;
    let err = ward_ocsf::check(&m).err().context("class 4001 accepted")?;
    assert!(err.to_string().contains("4001"), "{err}");
    let decl = m.ocsf.as_mut().context("okta [ocsf]")?;
    decl.map[0].class = 3002;
    decl.map[0].activity = 42;
    let err = ward_ocsf::check(&m).err().context("activity 42 accepted")?;
    assert!(err.to_string().contains("activity 42"), "{err}");
    Ok(())
}

#[test]
fn a_rule_whose_class_object_cannot_be_filled_falls_back_to_base_event() -> anyhow::Result<()> {
    let egnyte = Exporter::new(&manifest("egnyte")?);
    let mut e = event("file.Upload");
    e.targets_json = "[]".into();
    let out = egnyte.map(&e);
    assert_eq!(out["class_uid"], 0);
    assert_eq!(out["type_uid"], 99);
    assert_eq!(out["metadata"]["event_code"], "file.Upload");
    let reason = out["unmapped"]["ward"]["fallback"]
        .as_str()
        .context("no reason")?;
    assert!(reason.contains("file or folder path"), "{reason}");
    Ok(())
}

//! The harness report as JUnit XML (one `<testsuite>` per plugin, one
//! `<testcase>` per check, `classname` the scenario), the format CI systems
//! read. [`write`] is the entry point.

use crate::conformance::Report;

/// Renders `report` as a JUnit XML document.
pub fn write(report: &Report) -> String {
    let failures = report.failures().count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites tests=\"{}\" failures=\"{failures}\">\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">\n",
        report.checks.len(),
        escape(&format!("{} {}", report.plugin, report.version)),
        report.checks.len(),
    ));
    for c in &report.checks {
        let head = format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            escape(&c.scenario),
            escape(&c.name)
        );
        if c.passed {
            out.push_str(&format!("{head}/>\n"));
        } else {
            out.push_str(&format!(
                "{head}>\n      <failure message=\"{}\"/>\n    </testcase>\n",
                escape(&c.message)
            ));
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// XML attribute escaping.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            c if (c as u32) < 0x20 && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{Check, REPORT_SCHEMA};

    #[test]
    fn failures_carry_escaped_messages() {
        let report = Report {
            schema: REPORT_SCHEMA,
            plugin: "acme".into(),
            version: "1.0.0".into(),
            digest: String::new(),
            checks: vec![
                Check {
                    scenario: "ok".into(),
                    name: "event-ids".into(),
                    passed: true,
                    message: String::new(),
                },
                Check {
                    scenario: "ok".into(),
                    name: "raw-json".into(),
                    passed: false,
                    message: "event \"a\" <raw> & more".into(),
                },
            ],
        };
        let xml = write(&report);
        assert!(xml.contains("<testsuites tests=\"2\" failures=\"1\">"));
        assert!(xml.contains("<testcase classname=\"ok\" name=\"event-ids\"/>"));
        assert!(xml.contains("<failure message=\"event &quot;a&quot; &lt;raw&gt; &amp; more\"/>"));
    }
}

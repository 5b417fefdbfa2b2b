//! The verdict as people and CI read it: an aligned table for the terminal, JSON results, and
//! JUnit XML (one testsuite per scenario, one testcase per expectation), written atomically.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::Path;
use std::time::Duration;

use super::evaluate::Judgement;

/// How one scenario ended: its judgements, or the error that kept it from being judged.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioResult {
    pub scenario: String,
    /// The scenario file, as given on the command line.
    pub file: String,
    pub runtime: String,
    pub duration: Duration,
    pub judgements: Vec<Judgement>,
    /// Invalid input or an infrastructure failure: reported as one erroring testcase.
    pub error: Option<String>,
    /// Cut short (Ctrl-C): the judgements cover what ran.
    pub interrupted: bool,
}

impl ScenarioResult {
    pub fn failed(&self) -> usize {
        self.judgements.iter().filter(|j| !j.passed).count()
    }

    pub fn passed(&self) -> bool {
        self.error.is_none() && !self.interrupted && self.failed() == 0
    }
}

/// The one-line failure message: measured, threshold, window, faults.
pub fn failure_message(j: &Judgement) -> String {
    let faults = if j.faults_active.is_empty() {
        "none".to_string()
    } else {
        j.faults_active.join("; ")
    };
    format!(
        "measured {}, threshold {}, window {}, faults active: {faults}",
        j.measured, j.threshold, j.window
    )
}

/// The terminal table: ✓/✗, expectation, measured, threshold, window; under a failure its
/// faults and detail; then a summary line.
pub fn table(scenario: &str, judgements: &[Judgement]) -> String {
    let header = ["", "expectation", "measured", "threshold", "window"];
    let rows: Vec<[String; 5]> = judgements
        .iter()
        .map(|j| {
            [
                if j.passed { "✓" } else { "✗" }.to_string(),
                j.expectation.text.clone(),
                j.measured.clone(),
                j.threshold.clone(),
                j.window.clone(),
            ]
        })
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..5).map(width).collect();
    let render = |cells: [&str; 5]| {
        let mut line = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            line.push_str(cell);
            if i < 4 {
                let pad = widths[i] - cell.chars().count() + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        line.trim_end().to_string()
    };
    let mut out = format!("{scenario}\n{}\n", render(header));
    for (row, j) in rows.iter().zip(judgements) {
        let cells = [
            row[0].as_str(),
            row[1].as_str(),
            row[2].as_str(),
            row[3].as_str(),
            row[4].as_str(),
        ];
        out.push_str(&render(cells));
        out.push('\n');
        if !j.passed {
            let indent = " ".repeat(2 + widths[0] + 2);
            if !j.faults_active.is_empty() {
                let _ = writeln!(out, "{indent}faults active: {}", j.faults_active.join("; "));
            }
            for line in j.detail.iter().flat_map(|d| d.lines()) {
                let _ = writeln!(out, "{indent}{line}");
            }
        }
    }
    let failed = judgements.iter().filter(|j| !j.passed).count();
    let _ = writeln!(out, "{} passed, {failed} failed", judgements.len() - failed);
    out
}

/// JSON results of every scenario, with totals.
pub fn json(results: &[ScenarioResult]) -> String {
    use serde_json::json;
    let scenarios: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            json!({
                "scenario": r.scenario,
                "file": r.file,
                "runtime": r.runtime,
                "duration_s": round_ms(r.duration),
                "passed": r.passed(),
                "interrupted": r.interrupted,
                "error": r.error,
                "expectations": r.judgements.iter().map(|j| json!({
                    "expectation": j.expectation.text,
                    "line": j.expectation.span.line,
                    "passed": j.passed,
                    "measured": j.measured,
                    "threshold": j.threshold,
                    "window": j.window,
                    "faults_active": j.faults_active,
                    "detail": j.detail,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let expectations: usize = results.iter().map(|r| r.judgements.len()).sum();
    let failed: usize = results.iter().map(ScenarioResult::failed).sum();
    let doc = json!({
        "passed": results.iter().all(ScenarioResult::passed),
        "interrupted": results.iter().any(|r| r.interrupted),
        "summary": {
            "scenarios": results.len(),
            "expectations": expectations,
            "passed": expectations - failed,
            "failed": failed,
            "errors": results.iter().filter(|r| r.error.is_some()).count(),
        },
        "scenarios": scenarios,
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON values serialise");
    text.push('\n');
    text
}

fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// JUnit XML: a testsuite per scenario (properties: runtime, interrupted), a testcase per
/// expectation; an error or an interruption is one erroring testcase.
pub fn junit(results: &[ScenarioResult]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let errors = |r: &ScenarioResult| usize::from(r.error.is_some() || r.interrupted);
    let tests: usize = results.iter().map(|r| r.judgements.len() + errors(r)).sum();
    let failures: usize = results.iter().map(ScenarioResult::failed).sum();
    let total_errors: usize = results.iter().map(errors).sum();
    let total_time: Duration = results.iter().map(|r| r.duration).sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"meshsim test\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{total_errors}\" time=\"{:.3}\">",
        total_time.as_secs_f64()
    );
    for r in results {
        let name = xml(&r.scenario);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\" file=\"{}\">",
            r.judgements.len() + errors(r),
            r.failed(),
            errors(r),
            r.duration.as_secs_f64(),
            xml(&r.file)
        );
        out.push_str("    <properties>\n");
        let _ = writeln!(
            out,
            "      <property name=\"runtime\" value=\"{}\"/>",
            xml(&r.runtime)
        );
        let _ = writeln!(
            out,
            "      <property name=\"interrupted\" value=\"{}\"/>",
            r.interrupted
        );
        out.push_str("    </properties>\n");
        for j in &r.judgements {
            // Judging takes no time of its own; the run's time is the suite's.
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{name}\" time=\"0.000\" file=\"{}\" line=\"{}\"",
                xml(&j.expectation.text),
                xml(&r.file),
                j.expectation.span.line
            );
            if j.passed {
                out.push_str("/>\n");
                continue;
            }
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"expectation\">{}</failure>\n    </testcase>",
                xml(&failure_message(j)),
                xml(j.detail.as_deref().unwrap_or(""))
            );
        }
        let error = match (&r.error, r.interrupted) {
            (Some(e), _) => Some(("error", e.clone())),
            (None, true) => Some((
                "interrupted",
                "interrupted (Ctrl-C): the run was cut short; the results are partial".to_string(),
            )),
            (None, false) => None,
        };
        if let Some((kind, message)) = error {
            let first_line = message.lines().next().unwrap_or("");
            let _ = writeln!(
                out,
                "    <testcase name=\"{kind}\" classname=\"{name}\" time=\"{:.3}\">\n      <error message=\"{}\" type=\"{kind}\">{}</error>\n    </testcase>",
                r.duration.as_secs_f64(),
                xml(first_line),
                xml(&message)
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Escapes text for XML attributes and content; characters XML 1.0 cannot carry at all
/// (control characters but tab, newline, return) become U+FFFD.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Writes `text` to `path` so a reader sees the old file or the new one, never half of one
/// (a Ctrl-C mid-write included): a temporary file in the same directory, flushed to disk,
/// then renamed over the target.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file name", path.display()),
        )
    })?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced; not every platform lets
        // a directory be opened for that, and the file is complete either way.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::expect;
    use super::*;

    fn judgement(
        entry: &str,
        passed: bool,
        measured: &str,
        threshold: &str,
        window: &str,
    ) -> Judgement {
        Judgement {
            expectation: expect(&[entry]).remove(0),
            passed,
            measured: measured.into(),
            threshold: threshold.into(),
            window: window.into(),
            faults_active: Vec::new(),
            detail: None,
        }
    }

    fn sample() -> Vec<Judgement> {
        let mut failed = judgement(
            r#"{cluster: front-envoy/service1, split: "even ±10%"}"#,
            false,
            "70% / 30% (n=1000)",
            "even ±10%",
            "whole run",
        );
        failed.faults_active = vec!["kill service1#2 at 8.0s".into()];
        failed.detail = Some(
            "service1#1 70% (700) · service1#2 30% (300)\nservice1#1 70% is outside 45–55%".into(),
        );
        vec![
            judgement(
                r#"{phase: steady, success_rate: ">= 99%"}"#,
                true,
                "99.82% (4491/4499)",
                ">= 99%",
                "phase steady, 2.0s–22.0s",
            ),
            failed,
        ]
    }

    #[test]
    fn the_table_aligns_columns_and_explains_failures() {
        assert_eq!(
            table("front-proxy", &sample()),
            "front-proxy
     expectation                                          measured            threshold  window
  ✓  {phase: steady, success_rate: \">= 99%\"}              99.82% (4491/4499)  >= 99%     phase steady, 2.0s–22.0s
  ✗  {cluster: front-envoy/service1, split: \"even ±10%\"}  70% / 30% (n=1000)  even ±10%  whole run
     faults active: kill service1#2 at 8.0s
     service1#1 70% (700) · service1#2 30% (300)
     service1#1 70% is outside 45–55%
1 passed, 1 failed
"
        );
    }

    fn result(judgements: Vec<Judgement>) -> ScenarioResult {
        ScenarioResult {
            scenario: "front-proxy".into(),
            file: "scenarios/front-proxy.yaml".into(),
            runtime: "local".into(),
            duration: Duration::from_millis(12_345),
            judgements,
            error: None,
            interrupted: false,
        }
    }

    #[test]
    fn junit_has_a_testcase_per_expectation_and_escapes_everything() {
        let mut broken = result(Vec::new());
        broken.scenario = "q\"uote's <&> ünïcode".into();
        broken.error = Some("docker: cannot create <network> & \"net\"\nsecond line".into());
        let xml_text = junit(&[result(sample()), broken]);
        assert_eq!(
            xml_text,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="meshsim test" tests="3" failures="1" errors="1" time="24.690">
  <testsuite name="front-proxy" tests="2" failures="1" errors="0" time="12.345" file="scenarios/front-proxy.yaml">
    <properties>
      <property name="runtime" value="local"/>
      <property name="interrupted" value="false"/>
    </properties>
    <testcase name="{phase: steady, success_rate: &quot;&gt;= 99%&quot;}" classname="front-proxy" time="0.000" file="scenarios/front-proxy.yaml" line="2"/>
    <testcase name="{cluster: front-envoy/service1, split: &quot;even ±10%&quot;}" classname="front-proxy" time="0.000" file="scenarios/front-proxy.yaml" line="2">
      <failure message="measured 70% / 30% (n=1000), threshold even ±10%, window whole run, faults active: kill service1#2 at 8.0s" type="expectation">service1#1 70% (700) · service1#2 30% (300)&#10;service1#1 70% is outside 45–55%</failure>
    </testcase>
  </testsuite>
  <testsuite name="q&quot;uote&apos;s &lt;&amp;&gt; ünïcode" tests="1" failures="0" errors="1" time="12.345" file="scenarios/front-proxy.yaml">
    <properties>
      <property name="runtime" value="local"/>
      <property name="interrupted" value="false"/>
    </properties>
    <testcase name="error" classname="q&quot;uote&apos;s &lt;&amp;&gt; ünïcode" time="12.345">
      <error message="docker: cannot create &lt;network&gt; &amp; &quot;net&quot;" type="error">docker: cannot create &lt;network&gt; &amp; &quot;net&quot;&#10;second line</error>
    </testcase>
  </testsuite>
</testsuites>
"#
        );
    }

    #[test]
    fn xml_escaping_drops_what_xml_cannot_carry() {
        assert_eq!(xml("a\u{1}b\tc\u{7f}é"), "a\u{FFFD}b&#9;c\u{7f}é");
    }

    #[test]
    fn an_interrupted_run_is_an_error_in_junit_and_marked_in_json() {
        let mut r = result(sample());
        r.interrupted = true;
        let x = junit(std::slice::from_ref(&r));
        assert!(x.contains("<property name=\"interrupted\" value=\"true\"/>"));
        assert!(x.contains("<error message=\"interrupted (Ctrl-C): the run was cut short; the results are partial\" type=\"interrupted\">"));
        let doc: serde_json::Value = serde_json::from_str(&json(&[r])).unwrap();
        assert_eq!(doc["interrupted"], true);
        assert_eq!(doc["passed"], false);
        assert_eq!(doc["summary"]["failed"], 1);
        let e = &doc["scenarios"][0]["expectations"][1];
        assert_eq!(
            e["expectation"],
            "{cluster: front-envoy/service1, split: \"even ±10%\"}"
        );
        assert_eq!(e["measured"], "70% / 30% (n=1000)");
        assert_eq!(e["faults_active"][0], "kill service1#2 at 8.0s");
        assert_eq!(doc["scenarios"][0]["duration_s"], 12.345);
    }

    #[test]
    fn write_atomic_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("meshsim-verdict-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.xml");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, "new <xml/>").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new <xml/>");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("results.xml")]);
        assert!(write_atomic(&dir.join("missing/x.json"), "{}").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}

//! Errors and warnings about a config file, rendered compiler-style: file:line:col, the offending
//! line with a caret, and a hint (did-you-mean, the v3 replacement, what to use instead).
//!
//! Every problem found in a file is collected; the loader fails once, with all of them, so a user
//! fixes a copied blog config in one pass instead of one error per run (a common Envoy complaint).

use std::fmt;

use super::node::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Where in the document, e.g. `static_resources.clusters[0].connect_timout`.
    pub path: String,
    pub span: Span,
    pub message: String,
    /// What to do about it: "did you mean `connect_timeout`?", "use `load_assignment` instead".
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(path: impl Into<String>, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            path: path.into(),
            span,
            message: message.into(),
            help: None,
        }
    }

    pub fn warning(path: impl Into<String>, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(path, span, message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic against the source it was found in.
    pub fn render(&self, file: &str, source: &str) -> String {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!("{label}: {}\n", self.message);
        let line_no = self.span.line.max(1);
        out.push_str(&format!(
            "  --> {file}:{}:{}",
            line_no,
            self.span.col.max(1)
        ));
        if !self.path.is_empty() {
            out.push_str(&format!(" (at {})", self.path));
        }
        out.push('\n');
        if let Some(text) = source.lines().nth(line_no - 1) {
            let gutter = line_no.to_string().len();
            let pad = " ".repeat(gutter);
            let caret_col = self.span.col.max(1) - 1;
            let visible_len = text.chars().count().saturating_sub(caret_col).max(1);
            let carets = "^".repeat(self.span.len.clamp(1, visible_len));
            // Tabs would shift the caret; keep them in the prefix so it lines up in a terminal.
            let prefix: String = text
                .chars()
                .take(caret_col)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(
                "{pad} |\n{line_no} | {text}\n{pad} | {prefix}{carets}\n"
            ));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        out
    }
}

/// All problems found in one file, with what is needed to render them.
#[derive(Debug, Clone)]
pub struct Report {
    pub file: String,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    pub fn render(&self, severity: Severity) -> String {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .map(|d| d.render(&self.file, &self.source))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        f.write_str(&self.render(Severity::Error))?;
        write!(
            f,
            "\n{}: {errors} error{} found; the config was not loaded\n",
            self.file,
            if errors == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Report {}

/// The closest candidate to `unknown` by edit distance, if it is close enough to be a typo.
pub fn did_you_mean<'a>(unknown: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (unknown.len() / 3).max(2);
    candidates
        .iter()
        .map(|c| (levenshtein(unknown, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_field() {
        let fields = [
            "connect_timeout",
            "lb_policy",
            "load_assignment",
            "name",
            "type",
        ];
        assert_eq!(
            did_you_mean("connect_timout", &fields),
            Some("connect_timeout")
        );
        assert_eq!(did_you_mean("lb_polcy", &fields), Some("lb_policy"));
        assert_eq!(did_you_mean("zzzzzzzzzzz", &fields), None);
    }

    #[test]
    fn renders_file_line_col_snippet_and_help() {
        let source = "clusters:\n  - name: a\n    connect_timout: 1s\n";
        let d = Diagnostic::error(
            "clusters[0].connect_timout",
            Span {
                line: 3,
                col: 5,
                len: 14,
            },
            "unknown field `connect_timout` in Cluster",
        )
        .with_help("did you mean `connect_timeout`?");
        let text = d.render("envoy.yaml", source);
        assert_eq!(
            text,
            "error: unknown field `connect_timout` in Cluster\n  --> envoy.yaml:3:5 (at clusters[0].connect_timout)\n  |\n3 |     connect_timout: 1s\n  |     ^^^^^^^^^^^^^^\n  = help: did you mean `connect_timeout`?\n"
        );
    }
}

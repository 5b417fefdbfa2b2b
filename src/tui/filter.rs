//! The `/` filter: space-separated terms that must all match a row. A term is a regex over the
//! whole row, or `column:regex` over one column (`status:^5`, `path:/service`,
//! `cluster:service1`); case-insensitive, like k9s.

use regex::{Regex, RegexBuilder};

#[derive(Debug, Clone)]
pub struct Filter {
    /// As typed, for the title bar.
    pub text: String,
    terms: Vec<(Option<String>, Regex)>,
}

impl PartialEq for Filter {
    fn eq(&self, other: &Filter) -> bool {
        self.text == other.text
    }
}

impl Filter {
    /// Compiles `text`; an invalid regex is an error that says which term.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut terms = Vec::new();
        for term in text.split_whitespace() {
            let (column, pattern) = match term.split_once(':') {
                Some((c, p)) if !c.is_empty() && c.chars().all(|c| c.is_ascii_alphabetic()) => {
                    (Some(c.to_ascii_lowercase()), p)
                }
                _ => (None, term),
            };
            let regex = RegexBuilder::new(pattern)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    format!(
                        "`{term}` is not a regex: {}",
                        e.to_string().lines().last().unwrap_or("")
                    )
                })?;
            terms.push((column, regex));
        }
        Ok(Filter {
            text: text.to_string(),
            terms,
        })
    }

    /// Whether every term matches `row`, given as (column name, value) pairs. A term naming a
    /// column the row lacks does not match.
    pub fn matches(&self, row: &[(&str, &str)]) -> bool {
        self.terms.iter().all(|(column, regex)| match column {
            Some(c) => row
                .iter()
                .any(|(name, value)| name.eq_ignore_ascii_case(c) && regex.is_match(value)),
            None => row.iter().any(|(_, value)| regex.is_match(value)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: [(&str, &str); 3] = [
        ("status", "503"),
        ("path", "/service/2"),
        ("cluster", "service2"),
    ];

    #[test]
    fn terms_all_match_anywhere_or_in_their_column() {
        assert!(Filter::parse("").unwrap().matches(&ROW));
        assert!(Filter::parse("service/2").unwrap().matches(&ROW));
        assert!(Filter::parse("status:^5 CLUSTER:service2")
            .unwrap()
            .matches(&ROW));
        assert!(!Filter::parse("status:^2").unwrap().matches(&ROW));
        assert!(!Filter::parse("service2 404").unwrap().matches(&ROW));
        assert!(!Filter::parse("method:GET").unwrap().matches(&ROW));
    }

    #[test]
    fn a_bad_regex_says_which_term() {
        let e = Filter::parse("ok (unclosed").unwrap_err();
        assert!(e.contains("`(unclosed`"), "{e}");
    }
}

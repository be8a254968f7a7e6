//! One multi-pattern automaton over every stored value of an instance, in
//! every encoding Ward knows, used for redaction, response scrubbing and
//! outgoing raw-value checks alike.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Match, MatchKind, packed};
use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Values shorter than this are not searched for: they would match
/// ordinary text everywhere and no real credential is that short.
const MIN_SECRET_LEN: usize = 6;

/// Everything but RFC 3986 unreserved characters is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The forms a value can take on its way through HTTP and JSON: plain,
/// base64 (standard and URL-safe, padded or not), percent-encoded (upper
/// and lower hex) and JSON-escaped.
fn encodings(value: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let percent = utf8_percent_encode(value, COMPONENT).to_string();
    let mut forms = vec![
        value.to_string(),
        b64.encode(value),
        b64.encode(value).trim_end_matches('=').to_string(),
        b64url.encode(value),
        lower_hex(&percent),
        percent,
        serde_json::to_string(value)
            .map(|s| s.trim_matches('"').to_string())
            .unwrap_or_default(),
    ];
    forms.sort();
    forms.dedup();
    forms.retain(|f| f.len() >= MIN_SECRET_LEN);
    forms
}

/// `%2B` → `%2b`, leaving the other characters alone.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[i + escape.len()..];
    }
    out.push_str(rest);
    out
}

/// Finds stored secret values (in every known encoding) in text or bytes.
/// [`Redactor::redact`] replaces them with `[REDACTED:NAME]`,
/// [`Redactor::scrub`] with the reference text `{{secret:NAME}}`.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Option<Arc<Automaton>>,
}

struct Automaton {
    matcher: Matcher,
    /// Secret name per pattern index.
    names: Vec<String>,
}

/// The search itself: SIMD (Teddy) when the CPU and the pattern count
/// allow, about 5× the throughput of the automaton on JSON pages (a
/// token starting with `00`, as Okta's do, sends the automaton's
/// rare-byte prefilter to every digit); the automaton otherwise.
enum Matcher {
    Packed(packed::Searcher),
    Automaton(AhoCorasick),
}

impl Matcher {
    /// Leftmost-longest: a secret that contains another is matched whole.
    fn build(patterns: &[String]) -> Result<Matcher, aho_corasick::BuildError> {
        let packed = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostLongest)
            .builder()
            .extend(patterns)
            .build();
        if let Some(searcher) = packed {
            return Ok(Matcher::Packed(searcher));
        }
        AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns)
            .map(Matcher::Automaton)
    }

    fn find_iter<'a>(&'a self, input: &'a [u8]) -> Matches<'a> {
        match self {
            Matcher::Packed(s) => Matches::Packed(s.find_iter(input)),
            Matcher::Automaton(a) => Matches::Automaton(a.find_iter(input)),
        }
    }
}

/// The matches of either [`Matcher`], without boxing (one search runs per
/// string a plugin returns).
enum Matches<'a> {
    Packed(packed::FindIter<'a, 'a>),
    Automaton(aho_corasick::FindIter<'a, 'a>),
}

impl Iterator for Matches<'_> {
    type Item = Match;

    fn next(&mut self) -> Option<Match> {
        match self {
            Matches::Packed(m) => m.next(),
            Matches::Automaton(m) => m.next(),
        }
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.inner.as_ref().map_or(0, |a| a.names.len());
        write!(f, "Redactor({n} patterns)")
    }
}

impl Redactor {
    /// A redactor for the given (name, value) pairs.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Redactor {
        let mut patterns: Vec<String> = Vec::new();
        let mut names = Vec::new();
        for (name, value) in secrets {
            for form in encodings(value) {
                if !patterns.contains(&form) {
                    patterns.push(form);
                    names.push(name.to_string());
                }
            }
        }
        if patterns.is_empty() {
            return Redactor { inner: None };
        }
        match Matcher::build(&patterns) {
            Ok(matcher) => Redactor {
                inner: Some(Arc::new(Automaton { matcher, names })),
            },
            Err(e) => {
                // Only reachable past aho-corasick's size limits, far above
                // any instance's secrets; fail closed in the log.
                tracing::error!(error = %e, "cannot build the secret matcher");
                Redactor { inner: None }
            }
        }
    }

    /// Replaces each match with `replacement(name)`; returns the new bytes
    /// and the number of replacements, or `None` (nothing copied) when no
    /// stored value occurs: the common case, on every response body.
    fn replace(
        &self,
        input: &[u8],
        replacement: impl Fn(&str) -> String,
    ) -> Option<(Vec<u8>, usize)> {
        let a = self.inner.as_ref()?;
        let mut matches = a.matcher.find_iter(input).peekable();
        matches.peek()?;
        let mut out = Vec::with_capacity(input.len());
        let mut last = 0;
        let mut count = 0;
        for m in matches {
            out.extend_from_slice(&input[last..m.start()]);
            out.extend_from_slice(replacement(&a.names[m.pattern().as_usize()]).as_bytes());
            last = m.end();
            count += 1;
        }
        out.extend_from_slice(&input[last..]);
        Some((out, count))
    }

    /// Redacts in place; returns how many occurrences were replaced.
    pub fn redact(&self, text: &mut String) -> usize {
        let Some((out, count)) = self.replace(text.as_bytes(), |name| format!("[REDACTED:{name}]"))
        else {
            return 0;
        };
        // Matches are whole UTF-8 patterns, so the result stays UTF-8;
        // lossy conversion only guards the invariant.
        *text = String::from_utf8_lossy(&out).into_owned();
        count
    }

    /// Redacts an optional string in place.
    pub fn redact_opt(&self, text: &mut Option<String>) -> usize {
        text.as_mut().map_or(0, |t| self.redact(t))
    }

    /// Returns a redacted copy.
    pub fn redacted(&self, text: &str) -> String {
        let mut s = text.to_string();
        self.redact(&mut s);
        s
    }

    /// Replaces every stored value with its reference text
    /// `{{secret:NAME}}`; returns the new bytes and the count.
    pub fn scrub(&self, input: &[u8]) -> (Vec<u8>, usize) {
        self.scrubbed(input).unwrap_or_else(|| (input.to_vec(), 0))
    }

    /// Like [`Redactor::scrub`], but `None` when no stored value occurs,
    /// so the caller keeps its bytes and nothing is copied.
    pub fn scrubbed(&self, input: &[u8]) -> Option<(Vec<u8>, usize)> {
        self.replace(input, super::reference)
    }

    /// The names of the secrets whose values occur in `input`.
    pub fn names_in(&self, input: &[u8]) -> BTreeSet<String> {
        let Some(a) = &self.inner else {
            return BTreeSet::new();
        };
        a.matcher
            .find_iter(input)
            .map(|m| a.names[m.pattern().as_usize()].clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const VALUE: &str = "00abcDEF+/token";

    fn redactor() -> Redactor {
        Redactor::new([("api_token", VALUE), ("short", "abc")])
    }

    #[test]
    fn redacts_plain_and_encoded_forms() {
        let r = redactor();
        let b64 = base64::engine::general_purpose::STANDARD.encode(VALUE);
        let mut text = format!("a {VALUE} b {b64} c 00abcDEF%2B%2Ftoken d 00abcDEF%2b%2ftoken abc");
        assert_eq!(r.redact(&mut text), 4);
        assert!(!text.contains("00abcDEF"), "{text}");
        assert!(text.contains("[REDACTED:api_token]"));
        assert!(text.ends_with(" abc"), "short values are not searched");
    }

    #[test]
    fn scrubs_to_the_reference_and_names_what_it_found() {
        let r = redactor();
        let (out, n) = r.scrub(format!("Bearer {VALUE}").as_bytes());
        assert_eq!(n, 1);
        assert_eq!(out, b"Bearer {{secret:api_token}}");
        assert_eq!(
            r.names_in(b"x=00abcDEF%2B%2Ftoken")
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["api_token".to_string()]
        );
        assert!(r.names_in(b"nothing here").is_empty());
        assert!(Redactor::default().names_in(VALUE.as_bytes()).is_empty());
    }

    #[test]
    fn text_without_a_stored_value_is_not_copied() {
        let r = redactor();
        assert!(r.scrubbed(b"nothing here, not even abc").is_none());
        assert!(Redactor::default().scrubbed(VALUE.as_bytes()).is_none());
        let (out, n) = r.scrubbed(format!("x {VALUE}").as_bytes()).unwrap();
        assert_eq!((out.as_slice(), n), (&b"x {{secret:api_token}}"[..], 1));
        let mut text = "plain text".to_string();
        assert_eq!(r.redact(&mut text), 0);
        assert_eq!(text, "plain text");
    }

    #[test]
    fn a_secret_containing_another_is_replaced_whole() {
        let r = Redactor::new([("outer", "prefix-inner-value"), ("inner", "inner-value")]);
        assert_eq!(r.redacted("x prefix-inner-value"), "x [REDACTED:outer]");
        assert_eq!(r.redacted("x inner-value"), "x [REDACTED:inner]");
    }

    #[test]
    fn a_long_page_is_searched_with_simd_and_every_occurrence_found() {
        let r = redactor();
        let kind = r.inner.as_ref().map(|a| &a.matcher);
        assert!(
            matches!(kind, Some(Matcher::Packed(_))),
            "expected the SIMD searcher on x86_64"
        );
        let event =
            r#"{"uuid":"0a1b2c3d-0000-1111","published":"2024-08-13T15:58:20.353Z","n":00123},"#;
        let mut page = event.repeat(20_000);
        page.push_str(VALUE);
        page.insert_str(1_000, VALUE);
        let (out, n) = r.scrubbed(page.as_bytes()).unwrap();
        assert_eq!(n, 2);
        assert!(!String::from_utf8(out).unwrap().contains(VALUE));
    }

    #[test]
    fn more_patterns_than_simd_takes_fall_back_to_the_automaton() {
        let values: Vec<(String, String)> = (0..40)
            .map(|i| (format!("s{i}"), format!("00secret-value-number-{i:03}")))
            .collect();
        let r = Redactor::new(values.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let kind = r.inner.as_ref().map(|a| &a.matcher);
        assert!(matches!(kind, Some(Matcher::Automaton(_))));
        assert_eq!(
            r.redacted("a 00secret-value-number-039 b"),
            "a [REDACTED:s39] b"
        );
    }
}

//! The one canonical form of a request path, in which grants and the
//! operator's `deny_paths` are matched and which is what the provider
//! receives.
//!
//! - percent-escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are
//!   decoded (`%6cogs` → `logs`); other escapes are kept, in upper-case hex;
//! - encoded `/` (`%2F`), `\` (`%5C`) and NUL (`%00`), a literal `\`, a
//!   malformed escape, dot segments (`.`, `..`, also encoded), empty
//!   segments (`//`) and `;` parameters are refused (parameters are kept
//!   only under a grant with `allow_params = true`, and matched without
//!   them: see [`without_params`]);
//! - matching is case-sensitive for grants; operator `deny_paths` also match
//!   case variants (a deny rule errs on the side of denying).

use std::fmt;

/// Why a path has no canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// `%2F`, `%5C`, `%00` or a literal `\`.
    EncodedSeparator,
    /// `%` not followed by two hex digits.
    MalformedEscape,
    /// A `.` or `..` segment.
    DotSegment,
    /// `//` inside the path.
    EmptySegment,
    /// `;` (matrix parameters).
    Parameters,
    /// Does not start with `/`.
    NotAbsolute,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathProblem::EncodedSeparator => "an encoded `/`, `\\` or NUL, or a backslash",
            PathProblem::MalformedEscape => "a malformed percent-escape",
            PathProblem::DotSegment => "a dot segment (`.` or `..`)",
            PathProblem::EmptySegment => "an empty segment (`//`)",
            PathProblem::Parameters => "`;` parameters",
            PathProblem::NotAbsolute => "no leading `/`",
        })
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// Whether `;` parameters are refused or kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Params {
    /// `;` is [`PathProblem::Parameters`].
    Refuse,
    /// `;` is kept as it is (for a grant with `allow_params`).
    Keep,
}

/// The canonical form of `path` (without query).
pub fn canonical(path: &str, params: Params) -> Result<String, PathProblem> {
    if !path.starts_with('/') {
        return Err(PathProblem::NotAbsolute);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathProblem::MalformedEscape);
                };
                let decoded = hi << 4 | lo;
                if matches!(decoded, b'/' | b'\\' | 0) {
                    return Err(PathProblem::EncodedSeparator);
                }
                if unreserved(decoded) {
                    out.push(char::from(decoded));
                } else {
                    out.push_str(&format!("%{decoded:02X}"));
                }
                i += 3;
            }
            b'\\' => return Err(PathProblem::EncodedSeparator),
            b';' if params == Params::Refuse => return Err(PathProblem::Parameters),
            _ => {
                // Copy the whole UTF-8 sequence (the URI parser only lets
                // ASCII through, but stay correct for any input).
                let len = path[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&path[i..i + len]);
                i += len;
            }
        }
    }
    let bare = without_params(&out);
    let segments: Vec<&str> = bare[1..].split('/').collect();
    let last = segments.len() - 1;
    for (n, segment) in segments.iter().enumerate() {
        if *segment == "." || *segment == ".." {
            return Err(PathProblem::DotSegment);
        }
        // A trailing `/` (an empty last segment) is ordinary.
        if segment.is_empty() && n != last {
            return Err(PathProblem::EmptySegment);
        }
    }
    Ok(out)
}

/// A canonical path with each segment's `;` parameters left out: the form
/// grants and `deny_paths` are matched on when parameters are kept, so
/// `/api/v1/logs;x` is still `/api/v1/logs` to a deny rule.
pub fn without_params(path: &str) -> String {
    path.split('/')
        .map(|segment| segment.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_unreserved_and_keeps_the_rest() {
        let canonical = |p| canonical(p, Params::Refuse);
        assert_eq!(canonical("/api/v1/%6cogs").as_deref(), Ok("/api/v1/logs"));
        assert_eq!(
            canonical("/api/v1/%6C%6F%67%73").as_deref(),
            Ok("/api/v1/logs")
        );
        assert_eq!(canonical("/a%20b%2a").as_deref(), Ok("/a%20b%2A"));
        assert_eq!(canonical("/api/v1/").as_deref(), Ok("/api/v1/"));
        assert_eq!(canonical("/").as_deref(), Ok("/"));
    }

    #[test]
    fn refuses_what_could_hide_a_path() {
        for (path, problem) in [
            ("/api/v1//logs", PathProblem::EmptySegment),
            ("/api/v1/logs;x", PathProblem::Parameters),
            ("/api/v1/%2e%2e/admin", PathProblem::DotSegment),
            ("/api/./v1", PathProblem::DotSegment),
            ("/api/v1/a%2Fb", PathProblem::EncodedSeparator),
            ("/api/v1/a%5cb", PathProblem::EncodedSeparator),
            ("/api/v1/a%00", PathProblem::EncodedSeparator),
            ("/api/v1/a\\b", PathProblem::EncodedSeparator),
            ("/api/v1/%zz", PathProblem::MalformedEscape),
            ("/api/v1/%4", PathProblem::MalformedEscape),
            ("api", PathProblem::NotAbsolute),
        ] {
            assert_eq!(canonical(path, Params::Refuse), Err(problem), "{path}");
        }
    }

    #[test]
    fn parameters_are_kept_only_when_asked_and_matched_without() {
        assert_eq!(
            canonical("/items;v=2/x;a", Params::Keep).as_deref(),
            Ok("/items;v=2/x;a")
        );
        assert_eq!(without_params("/items;v=2/x;a"), "/items/x");
        // Parameters do not hide a dot or empty segment.
        assert_eq!(
            canonical("/a/..;x/b", Params::Keep),
            Err(PathProblem::DotSegment)
        );
        assert_eq!(
            canonical("/a/;x/b", Params::Keep),
            Err(PathProblem::EmptySegment)
        );
    }
}

//! Wildcard matching as ld does it for file and section patterns (`fnmatch` with no flags).
//!
//! Owns `*`, `?`, `[…]` (with `!`/`^` negation and ranges) and backslash escapes; nothing else.

/// Whether a pattern needs glob matching at all (ld's `wildcardp`).
pub fn is_wildcard(pattern: &str) -> bool {
    pattern.bytes().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// The start every name `pattern` matches begins with: the bytes before its first wildcard or
/// escape (all of it when it has no wildcard, since then it is compared as is).
pub fn literal_prefix(pattern: &str) -> &str {
    if !is_wildcard(pattern) {
        return pattern;
    }
    let end = pattern
        .bytes()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// Matches `name` against `pattern`, or compares them when the pattern has no wildcard.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    if is_wildcard(pattern) {
        glob_match(pattern.as_bytes(), name.as_bytes())
    } else {
        pattern == name
    }
}

/// `fnmatch(pattern, name, 0) == 0`: `*` and `?` match any byte including `/`.
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    // Where to resume after the most recent `*`: (pattern index after the star, name index).
    let mut resume: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    resume = Some((p, n));
                    continue;
                }
                b'?' if n < name.len() => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' if n < name.len() => {
                    if let Some((matched, next)) = match_bracket(pattern, p, name[n]) {
                        if matched {
                            p = next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        // An unterminated bracket matches itself literally.
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() && n < name.len() && pattern[p + 1] == name[n] => {
                    p += 2;
                    n += 1;
                    continue;
                }
                c if c != b'\\' && n < name.len() && c == name[n] && c != b'?' && c != b'[' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        } else if n == name.len() {
            return true;
        }
        match resume {
            Some((rp, rn)) if rn < name.len() => {
                resume = Some((rp, rn + 1));
                p = rp;
                n = rn + 1;
            }
            _ => return false,
        }
    }
}

/// Matches one byte against the bracket expression starting at `pattern[start] == b'['`.
/// Returns whether it matched and the index after the closing `]`, or None when unterminated.
fn match_bracket(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let mut lo = *pattern.get(i)?;
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if lo == b'\\' {
            i += 1;
            lo = *pattern.get(i)?;
        }
        i += 1;
        if pattern.get(i) == Some(&b'-') && pattern.get(i + 1).is_some_and(|&h| h != b']') {
            let mut hi = pattern[i + 1];
            i += 2;
            if hi == b'\\' {
                hi = *pattern.get(i)?;
                i += 1;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
        } else if lo == c {
            matched = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_fnmatch() {
        assert!(name_matches(".text", ".text"));
        assert!(!name_matches(".text", ".text.x"));
        assert!(name_matches(".text.*", ".text.hot"));
        assert!(!name_matches(".text.*", ".text"));
        assert!(name_matches("*", "a/b.o"));
        assert!(name_matches("*crtbegin?.o", "x/crtbeginS.o"));
        assert!(name_matches(".data..percpu*", ".data..percpu"));
        assert!(name_matches("___ksymtab+*", "___ksymtab+printk"));
        assert!(name_matches("[ab]x", "bx"));
        assert!(!name_matches("[!ab]x", "bx"));
        assert!(name_matches("[a-c]x", "cx"));
        assert!(name_matches("*.o", "dir/x.o"));
        assert!(!name_matches("*.o", "x.a"));
        assert!(name_matches("a*b*c", "aXXbYYbc"));
        assert!(!name_matches("a*b*c", "aXXbYYbd"));
        assert!(name_matches("\\*", "*"));
    }

    #[test]
    fn every_match_starts_with_the_literal_prefix() {
        assert_eq!(literal_prefix(".text.*"), ".text.");
        assert_eq!(literal_prefix(".text"), ".text");
        assert_eq!(literal_prefix("*crt?.o"), "");
        assert_eq!(literal_prefix(".a\\*b*"), ".a");
        assert_eq!(literal_prefix("x\\y"), "x\\y");
        let patterns = [
            ".t*",
            ".text.?",
            "[.]text",
            ".te[a-z]t",
            "\\.text",
            ".text",
            "*",
            "a\\*",
            "?",
        ];
        let names = [
            ".text", ".text.a", "text", ".tbss", "a*", "a", "", ".t", "\\.text",
        ];
        for pattern in patterns {
            for name in names {
                if name_matches(pattern, name) {
                    assert!(
                        name.starts_with(literal_prefix(pattern)),
                        "{pattern} {name}"
                    );
                }
            }
        }
    }
}

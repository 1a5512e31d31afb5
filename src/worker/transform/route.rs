//! `RegexRouter`: when the whole topic matches `regex`, the topic becomes the first match
//! replaced by `replacement` in Java's syntax (`$1`, `${name}`, `\$` for a dollar), as
//! Java's `Matcher.replaceFirst` does. The regex is compiled once; the replacement is parsed
//! once against the regex's groups, so a reference to a group that does not exist fails
//! validation rather than every record.

use regex::{Captures, Regex};
use tributary_plugin_abi::config::{ConfigType, Importance};

use super::config::{Conf, Dflt, KeySpec, Valid, key};
use super::{Build, ConfigError, Def, Outcome, RecordMut, Transform};

pub(super) const DEFS: &[Def] = &[Def {
    class: "org.apache.kafka.connect.transforms.RegexRouter",
    doc: "Update the record topic using the configured regular expression and replacement \
          string. If the pattern matches the input topic, the first match is replaced with the \
          replacement string (Java's Matcher.replaceFirst) to obtain the new topic.",
    keys: KEYS,
    build: Build::Transform(RegexRouter::build),
}];

const KEYS: &[KeySpec] = &[
    key(
        "regex",
        ConfigType::String,
        Dflt::Required,
        Importance::High,
        Valid::Any,
        "Regular expression to use for matching.",
    ),
    key(
        "replacement",
        ConfigType::String,
        Dflt::Required,
        Importance::High,
        Valid::Any,
        "Replacement string.",
    ),
];

/// One piece of a parsed Java replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    Text(String),
    Group(usize),
    Named(String),
}

/// Compile a Java regex that must match a whole string (Java's `Matcher.matches`), and
/// the same regex for finding matches.
pub(super) fn compile(c: &Conf<'_>, name: &str) -> Result<(Regex, Regex), ConfigError> {
    let re = c.required(name)?;
    let bad = |e: regex::Error| {
        c.err(
            name,
            format!(
                "{re:?} is not a valid regular expression: {e} (lookaround and backreferences are \
                 not supported)"
            ),
        )
    };
    let whole = Regex::new(&format!("^(?:{re})$")).map_err(bad)?;
    let find = Regex::new(&re).map_err(bad)?;
    Ok((whole, find))
}

/// Parse a Java replacement string against a regex's groups (Java's
/// `Matcher.appendReplacement`): `$n` takes as many digits as still name a group, `${name}`
/// a named group, a backslash escapes the next character.
pub(super) fn parse_replacement(text: &str, re: &Regex) -> Result<Vec<Piece>, String> {
    let groups = re.captures_len() - 1;
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => lit.push(n),
                None => return Err("character to be escaped is missing at the end".into()),
            },
            '$' => {
                if !lit.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut lit)));
                }
                match chars.next() {
                    Some('{') => {
                        let mut name = String::new();
                        loop {
                            match chars.next() {
                                Some('}') => break,
                                Some(ch) if ch.is_ascii_alphanumeric() => name.push(ch),
                                _ => {
                                    return Err(
                                        "named capturing group is missing trailing '}' or has \
                                         a bad name"
                                            .into(),
                                    );
                                }
                            }
                        }
                        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                            return Err(format!("named capturing group ${{{name}}} must start with a letter"));
                        }
                        if !re.capture_names().flatten().any(|n| n == name) {
                            return Err(format!("no group with name {{{name}}}"));
                        }
                        out.push(Piece::Named(name));
                    }
                    Some(d) if d.is_ascii_digit() => {
                        let mut n = d.to_digit(10).unwrap_or(0) as usize;
                        if n > groups {
                            return Err(format!("no group {n}: the regex has {groups} groups"));
                        }
                        while let Some(next) = chars.peek().and_then(|ch| ch.to_digit(10)) {
                            let longer = n * 10 + next as usize;
                            if longer > groups {
                                break;
                            }
                            n = longer;
                            chars.next();
                        }
                        out.push(Piece::Group(n));
                    }
                    _ => return Err("illegal group reference: $ must be followed by a group number or {name}; write \\$ for a dollar sign".into()),
                }
            }
            other => lit.push(other),
        }
    }
    if !lit.is_empty() {
        out.push(Piece::Text(lit));
    }
    Ok(out)
}

/// Append a parsed replacement for `caps`; a group that did not take part adds nothing.
pub(super) fn expand(pieces: &[Piece], caps: &Captures<'_>, out: &mut String) {
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Group(n) => out.push_str(caps.get(*n).map_or("", |m| m.as_str())),
            Piece::Named(n) => out.push_str(caps.name(n).map_or("", |m| m.as_str())),
        }
    }
}

/// `RegexRouter`.
#[derive(Debug)]
pub(super) struct RegexRouter {
    whole: Regex,
    find: Regex,
    replacement: Vec<Piece>,
}

impl RegexRouter {
    fn build(c: &Conf<'_>) -> Result<Box<dyn Transform>, ConfigError> {
        let (whole, find) = compile(c, "regex")?;
        // Kafka trims config strings, the replacement too.
        let replacement = parse_replacement(&c.required("replacement")?, &find)
            .map_err(|e| c.err("replacement", e))?;
        Ok(Box::new(RegexRouter {
            whole,
            find,
            replacement,
        }))
    }
}

impl Transform for RegexRouter {
    fn apply(&self, r: &mut RecordMut<'_>) -> Outcome {
        if !self.whole.is_match(r.topic) {
            return Ok(true);
        }
        let Some(caps) = self.find.captures(r.topic) else {
            return Ok(true);
        };
        let m = caps.get(0).map_or(0..0, |m| m.range());
        let mut topic = String::with_capacity(r.topic.len() + 16);
        topic.push_str(&r.topic[..m.start]);
        expand(&self.replacement, &caps, &mut topic);
        topic.push_str(&r.topic[m.end..]);
        *r.topic = topic;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use tributary_plugin_abi::data::Data;

    use super::super::tests::{chain, config_errors, rec};

    fn route(topic: &str, regex: &str, replacement: &str) -> String {
        let c = chain(&[
            ("transforms", "route"),
            (
                "transforms.route.type",
                "org.apache.kafka.connect.transforms.RegexRouter",
            ),
            ("transforms.route.regex", regex),
            ("transforms.route.replacement", replacement),
        ]);
        let mut r = rec(Data::null());
        r.topic = topic.into();
        assert!(c.apply_sink(&mut r).unwrap());
        r.topic
    }

    #[test]
    fn java_replacement_semantics() {
        // Kafka's documented example.
        assert_eq!(route("foo-bar", "(.*)-(.*)", "$2_$1"), "bar_foo");
        // The whole topic must match; otherwise it is kept.
        assert_eq!(route("prefix-foo", "foo", "bar"), "prefix-foo");
        assert_eq!(route("foo", "foo", "bar"), "bar");
        // $1 followed by digits: the longest group number that exists.
        assert_eq!(route("ab", "(a)(b)", "$10"), "a0");
        assert_eq!(route("ab", "(?<first>a)(b)", "${first}-$2"), "a-b");
        assert_eq!(route("ab", "(a)(b)", "\\$1"), "$1");
        // A group that did not take part adds nothing.
        assert_eq!(route("b", "(a)?(b)", "x$1y$2"), "xyb");
        // replaceFirst: the first match is replaced, the rest kept.
        assert_eq!(route("aaa", "a*?", "X"), "Xaaa");
    }

    #[test]
    fn config_errors_name_the_key() {
        let errs = |regex: Option<&str>, replacement: Option<&str>| {
            let mut pairs = vec![
                ("transforms", "route"),
                ("transforms.route.type", "RegexRouter"),
            ];
            if let Some(r) = regex {
                pairs.push(("transforms.route.regex", r));
            }
            if let Some(r) = replacement {
                pairs.push(("transforms.route.replacement", r));
            }
            config_errors(&pairs)
        };
        let e = errs(None, Some("x"));
        assert_eq!(e[0].key, "transforms.route.regex");
        assert!(
            e[0].message.starts_with("missing required key"),
            "{}",
            e[0].message
        );
        let e = errs(Some("("), Some("x"));
        assert_eq!(e[0].key, "transforms.route.regex");
        assert!(e[0].message.contains("not a valid regular expression"));
        for bad in ["$3", "$x", "${nope}", "trailing\\"] {
            let e = errs(Some("(a)(b)"), Some(bad));
            assert_eq!(e[0].key, "transforms.route.replacement", "{bad}");
        }
        // Both missing: both reported.
        assert_eq!(errs(None, None).len(), 2);
    }
}

//! Java-style `.properties` files, the format of Kafka's and Kafka Connect's worker
//! and broker configs. Only parsing: what the keys mean belongs to each layer.

use std::collections::BTreeMap;

/// Parse a Java-style `.properties` text: `key=value` or `key: value` lines, `#` and
/// `!` comments, surrounding whitespace trimmed, a trailing `\` continues a line.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut pending = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let split = entry.find(['=', ':']);
        let Some(i) = split else {
            return Err(format!(
                "line {}: expected key=value, found {:?}",
                n + 1,
                entry
            ));
        };
        let key = entry[..i].trim().to_string();
        let value = entry[i + 1..].trim().to_string();
        if key.is_empty() {
            return Err(format!("line {}: empty key", n + 1));
        }
        out.insert(key, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_parse_like_java() {
        let p = parse_properties(
            "# comment\n! also\nlog.dirs = /tmp/a\nnum.partitions: 3\nlong=a,\\\n  b\n",
        )
        .unwrap();
        assert_eq!(p["log.dirs"], "/tmp/a");
        assert_eq!(p["num.partitions"], "3");
        assert_eq!(p["long"], "a,b");
        assert!(
            parse_properties("novalue\n")
                .unwrap_err()
                .contains("line 1")
        );
    }
}

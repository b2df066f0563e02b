//! The A1111/Forge infotext ("parameters"): the prompt, a `Negative prompt:` part, and a last
//! line of `Key: value` pairs separated by commas, a value in double quotes being a JSON
//! string (`Lora hashes: "a: 1, b: 2"`). The last line counts as settings only when it holds
//! at least three pairs, as the webui's own reader decides; otherwise it is prompt text.

/// The parts of an infotext.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Infotext {
    pub prompt: String,
    pub negative_prompt: String,
    /// The settings line's pairs, in order, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Infotext {
    /// The value of `key`, if the settings line has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// True when `text` has a settings line: what tells an A1111 UserComment from another one.
pub fn looks_like_infotext(text: &str) -> bool {
    let last = text.trim().rsplit('\n').next().unwrap_or("");
    params(last).len() >= 3
}

/// Splits an infotext into its parts.
pub fn parse(text: &str) -> Infotext {
    let text = text.trim().replace("\r\n", "\n");
    let mut lines: Vec<&str> = text.split('\n').collect();
    let mut out = Infotext::default();
    if let Some(last) = lines.last() {
        let p = params(last);
        if p.len() >= 3 {
            out.params = p;
            lines.pop();
        }
    }
    let mut negative = false;
    for line in lines {
        let line = match line.strip_prefix("Negative prompt:") {
            Some(rest) => {
                negative = true;
                rest.trim()
            }
            None => line,
        };
        let part = if negative {
            &mut out.negative_prompt
        } else {
            &mut out.prompt
        };
        if !part.is_empty() {
            part.push('\n');
        }
        part.push_str(line.trim_end_matches('\r'));
    }
    out.prompt = out.prompt.trim().to_owned();
    out.negative_prompt = out.negative_prompt.trim().to_owned();
    out
}

/// The `Key: value` pairs of a settings line. A key is a word character followed by word
/// characters, spaces, `-` or `/`; a piece of the line that is not a pair is skipped.
fn params(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line;
    while !rest.trim().is_empty() {
        rest = rest.trim_start();
        let key_end = rest
            .char_indices()
            .find(|&(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | ' ' | '-' | '/')))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let key = rest[..key_end].trim_end();
        let first_ok = key
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if !rest[key_end..].starts_with(':') || !first_ok || key.chars().count() < 2 {
            // Not a pair: skip to the next comma.
            match rest.find(',') {
                Some(i) => {
                    rest = &rest[i + 1..];
                    continue;
                }
                None => break,
            }
        }
        let after = rest[key_end + 1..].trim_start();
        let (value, tail) = if after.starts_with('"') {
            match quoted(after) {
                Some((v, n)) => (v, &after[n..]),
                None => split_comma(after),
            }
        } else {
            split_comma(after)
        };
        out.push((key.to_owned(), value.trim().to_owned()));
        rest = tail.trim_start().strip_prefix(',').unwrap_or(tail);
    }
    out
}

fn split_comma(s: &str) -> (String, &str) {
    match s.find(',') {
        Some(i) => (s[..i].to_owned(), &s[i..]),
        None => (s.to_owned(), ""),
    }
}

/// A double-quoted JSON string at the start of `s`: its value and the bytes it took.
fn quoted(s: &str) -> Option<(String, usize)> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => {
                let v: String = serde_json::from_str(&s[..=i]).ok()?;
                return Some((v, i + 1));
            }
            _ => {}
        }
    }
    None
}

/// `WxH` as two numbers.
pub fn size(v: &str) -> Option<(i64, i64)> {
    let (w, h) = v.split_once('x')?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEBUI: &str = "a cat, <lora:foo:0.8>\nsecond line\nNegative prompt: ugly, blurry\nmore negative\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 123456, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.55, Lora hashes: \"foo: 0123abcd, bar: 4567\", Version: v1.10.1";

    #[test]
    fn parses_the_webui_layout() {
        let t = parse(WEBUI);
        assert_eq!(t.prompt, "a cat, <lora:foo:0.8>\nsecond line");
        assert_eq!(t.negative_prompt, "ugly, blurry\nmore negative");
        assert_eq!(t.get("Steps"), Some("20"));
        assert_eq!(t.get("Sampler"), Some("DPM++ 2M"));
        assert_eq!(t.get("Schedule type"), Some("Karras"));
        assert_eq!(t.get("CFG scale"), Some("7.5"));
        assert_eq!(t.get("Seed"), Some("123456"));
        assert_eq!(t.get("Size"), Some("512x768"));
        assert_eq!(t.get("Model hash"), Some("6ce0161689"));
        assert_eq!(t.get("Lora hashes"), Some("foo: 0123abcd, bar: 4567"));
        assert_eq!(t.get("Version"), Some("v1.10.1"));
        assert_eq!(size("512x768"), Some((512, 768)));
        assert!(looks_like_infotext(WEBUI));
    }

    #[test]
    fn a_last_line_with_few_pairs_is_prompt() {
        let t = parse("just a prompt\nwith: one colon");
        assert_eq!(t.prompt, "just a prompt\nwith: one colon");
        assert!(t.params.is_empty());
        assert!(!looks_like_infotext("Copyright: me"));
    }

    #[test]
    fn no_prompt_and_unicode() {
        let t = parse("Negative prompt: 猫\nSteps: 4, Sampler: Euler, Seed: 1, Model: モデル");
        assert_eq!(t.prompt, "");
        assert_eq!(t.negative_prompt, "猫");
        assert_eq!(t.get("Model"), Some("モデル"));
        // A quoted value with an escaped quote and a comma; an unterminated one is cut at
        // the next comma.
        let t = parse("p\nSteps: 1, Sampler: \"a \\\"b\\\", c\", Seed: 2, Xa: \"open, Yb: 3");
        assert_eq!(t.get("Sampler"), Some("a \"b\", c"));
        assert_eq!(t.get("Xa"), Some("\"open"));
        assert_eq!(t.get("Yb"), Some("3"));
    }
}

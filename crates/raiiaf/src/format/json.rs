//! A validating scanner for the file's JSON documents (the manifest). It checks a document
//! exactly as `serde_json` accepts it into a `Value` (the same grammar, the same 128-level
//! nesting limit, numbers that would overflow refused) without building anything, then lists
//! an object's members or an array's elements as byte spans, so a reader parses only the
//! values it needs. The catalog reads thousands of manifests for a few fields each: building
//! every document as a `Value`, twice, was half of its time.
//!
//! That it agrees with `serde_json` is checked by the `manifest` fuzz target (and the tests
//! below): every input either both accept or both refuse.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::Value;

/// serde_json refuses the 128th nested array or object (its `remaining_depth` starts at 128).
const MAX_DEPTH: u32 = 127;

/// Containers this deep or less get an entry in the [`Outline`].
const OUTLINE_DEPTH: u32 = 4;

/// Whether `text` is one JSON document `serde_json::from_str::<Value>` accepts (whitespace
/// around it allowed), with its [`Outline`]; `None` if not. A lone surrogate escape
/// (`"\ud800"`) is refused, as there.
pub fn validate(text: &str) -> Option<Outline> {
    let mut v = Validator {
        b: text.as_bytes(),
        i: 0,
        depth_left: MAX_DEPTH,
        outline: Outline::default(),
    };
    v.ws();
    if !v.value() {
        return None;
    }
    v.ws();
    (v.i == v.b.len()).then_some(v.outline)
}

/// Where the outer arrays and objects of a validated document end (the four outermost
/// levels), so that skipping one of them (a ComfyUI graph beside the keys a reader wants) costs
/// a lookup instead of a scan. An empty outline is valid too: everything is then scanned.
#[derive(Debug, Clone, Default)]
pub struct Outline {
    /// (start, end) of each container, by start.
    ends: Vec<(usize, usize)>,
}

impl Outline {
    fn end_of(&self, start: usize) -> Option<usize> {
        let i = self.ends.binary_search_by_key(&start, |&(s, _)| s).ok()?;
        Some(self.ends[i].1)
    }
}

struct Validator<'a> {
    b: &'a [u8],
    i: usize,
    depth_left: u32,
    outline: Outline,
}

impl Validator<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn value(&mut self) -> bool {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'{') => self.container(b'}'),
            Some(b'[') => self.container(b']'),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let ok = self.b[self.i..].starts_with(word);
        self.i += word.len();
        ok
    }

    /// An object (`close` `}`) or an array (`]`), at its opening bracket.
    fn container(&mut self, close: u8) -> bool {
        if self.depth_left == 0 {
            return false;
        }
        // Entered before this one; recorded in start order, the end filled in at the close.
        let slot = (MAX_DEPTH - self.depth_left < OUTLINE_DEPTH).then(|| {
            self.outline.ends.push((self.i, 0));
            self.outline.ends.len() - 1
        });
        self.depth_left -= 1;
        self.i += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            self.close(slot);
            return true;
        }
        loop {
            if close == b'}' {
                if self.peek() != Some(b'"') || !self.string() {
                    return false;
                }
                self.ws();
                if self.peek() != Some(b':') {
                    return false;
                }
                self.i += 1;
                self.ws();
            }
            if !self.value() {
                return false;
            }
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(c) if c == close => {
                    self.i += 1;
                    self.close(slot);
                    return true;
                }
                _ => return false,
            }
        }
    }

    fn close(&mut self, slot: Option<usize>) {
        self.depth_left += 1;
        if let Some(slot) = slot {
            self.outline.ends[slot].1 = self.i;
        }
    }

    /// A string, at its opening quote: no raw control character, known escapes only,
    /// surrogate escapes in pairs.
    fn string(&mut self) -> bool {
        self.i += 1;
        loop {
            self.i += plain_run(&self.b[self.i..]);
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return true;
                }
                Some(b'\\') => {
                    if !self.escape() {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    }

    fn escape(&mut self) -> bool {
        match self.b.get(self.i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 2;
                true
            }
            Some(b'u') => {
                let Some(unit) = hex4(self.b, self.i + 2) else {
                    return false;
                };
                self.i += 6;
                match unit {
                    0xD800..=0xDBFF => {
                        // A leading surrogate needs a trailing one, escaped, right after it.
                        if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                            return false;
                        }
                        match hex4(self.b, self.i + 2) {
                            Some(0xDC00..=0xDFFF) => {
                                self.i += 6;
                                true
                            }
                            _ => false,
                        }
                    }
                    0xDC00..=0xDFFF => false,
                    _ => true,
                }
            }
            _ => false,
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, and in range: what could
    /// overflow an f64 is checked by serde_json itself.
    fn number(&mut self) -> bool {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return false,
        }
        let int_digits = self.i - int_start;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return false;
            }
            self.digits();
        }
        let mut exponent: Option<(bool, &[u8])> = None;
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            let negative = match self.peek() {
                Some(b'-') => {
                    self.i += 1;
                    true
                }
                Some(b'+') => {
                    self.i += 1;
                    false
                }
                _ => false,
            };
            let e_start = self.i;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return false;
            }
            self.digits();
            exponent = Some((negative, &self.b[e_start..self.i]));
        }
        // Below 10^300 nothing can overflow; only longer or larger numbers need the check.
        let small = match exponent {
            None => int_digits <= 300,
            Some((_, e)) if e.len() > 3 => false,
            Some((true, _)) => int_digits <= 300,
            Some((false, e)) => int_digits + e.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0')) <= 300,
        };
        small || in_range(&self.b[start..self.i])
    }

    #[inline]
    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }
}

/// How many bytes at the start of `b` can stand in a string as they are (not `"`, `\\` or a
/// control character): eight at a time while none of them is one of those.
#[inline]
fn plain_run(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut n = 0;
    for word in b.chunks_exact(8) {
        let x = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        // Any byte below 0x20, equal to '"' or equal to '\\' (exact tests, not estimates).
        let special = (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
            | has_zero(x ^ (ONES * u64::from(b'"')))
            | has_zero(x ^ (ONES * u64::from(b'\\')));
        if special != 0 {
            break;
        }
        n += 8;
    }
    n + b[n..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .unwrap_or(b.len() - n)
}

/// A number that may overflow: whether serde_json reads it (an f64 that stays finite).
#[cold]
fn in_range(lexeme: &[u8]) -> bool {
    serde_json::from_slice::<Value>(lexeme).is_ok()
}

fn hex4(b: &[u8], at: usize) -> Option<u16> {
    let digits = b.get(at..at + 4)?;
    let mut n = 0u16;
    for &d in digits {
        n = n * 16 + (d as char).to_digit(16)? as u16;
    }
    Some(n)
}

// ----------------------------------------------------------------------------- spans
//
// The functions below read documents `validate` accepted: on other text they return nonsense
// or nothing, never panic.

/// Where the value that starts at `at` (after any whitespace) ends.
pub fn value_end(text: &str, outline: &Outline, at: usize) -> usize {
    let b = text.as_bytes();
    let i = skip_ws(b, at);
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{' | b'[') => {
            if let Some(end) = outline.end_of(i) {
                return end;
            }
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b'"' => {
                        j = string_end(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        _ => {
            let mut j = i;
            while let Some(&c) = b.get(j) {
                if matches!(c, b',' | b']' | b'}' | b' ' | b'\n' | b'\t' | b'\r') {
                    break;
                }
                j += 1;
            }
            j
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The end of the string whose opening quote is at `i` (after its closing quote).
fn string_end(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    b.len()
}

/// The span of the value starting at `at` (whitespace before it skipped).
pub fn span_at(text: &str, outline: &Outline, at: usize) -> Range<usize> {
    let start = skip_ws(text.as_bytes(), at);
    start..value_end(text, outline, start)
}

/// The members of the object at `span`, in document order (repeated keys each time): its key,
/// unescaped, and the span of its value. `None` when the value there is not an object.
pub fn members<'a>(text: &'a str, outline: &'a Outline, span: Range<usize>) -> Option<Members<'a>> {
    let b = text.as_bytes();
    let start = skip_ws(b, span.start);
    (b.get(start) == Some(&b'{')).then_some(Members {
        text,
        outline,
        i: start + 1,
        done: false,
    })
}

/// The iterator of [`members`].
pub struct Members<'a> {
    text: &'a str,
    outline: &'a Outline,
    i: usize,
    done: bool,
}

impl<'a> Iterator for Members<'a> {
    type Item = (Cow<'a, str>, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let b = self.text.as_bytes();
        let i = skip_ws(b, self.i);
        if b.get(i) != Some(&b'"') {
            // `}` (or text `validate` refused).
            self.done = true;
            return None;
        }
        let key_end = string_end(b, i);
        let key = string_value(self.text, i..key_end)?;
        let colon = skip_ws(b, key_end);
        let value = span_at(self.text, self.outline, colon + 1);
        let after = skip_ws(b, value.end);
        match b.get(after) {
            Some(b',') => self.i = after + 1,
            _ => self.done = true,
        }
        Some((key, value))
    }
}

/// The elements of the array at `span`, each as its span. `None` when the value there is not
/// an array.
pub fn elements<'a>(
    text: &'a str,
    outline: &'a Outline,
    span: Range<usize>,
) -> Option<impl Iterator<Item = Range<usize>> + 'a> {
    let b = text.as_bytes();
    let start = skip_ws(b, span.start);
    if b.get(start) != Some(&b'[') {
        return None;
    }
    let mut i = start + 1;
    let mut done = matches!(b.get(skip_ws(b, i)), Some(b']') | None);
    Some(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let value = span_at(text, outline, i);
        let after = skip_ws(b, value.end);
        match b.get(after) {
            Some(b',') => i = after + 1,
            _ => done = true,
        }
        Some(value)
    }))
}

/// The string at `span` (quotes included), unescaped: borrowed when it holds no escape.
/// `None` when it is not a string.
pub fn string_value(text: &str, span: Range<usize>) -> Option<Cow<'_, str>> {
    let raw = text.get(span)?;
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}

/// The value at `span` as a `Value` (`Null` if the text there is not one).
pub fn parse_value(text: &str, span: Range<usize>) -> Value {
    text.get(span)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

/// The non-negative integer at `span`, as `Value::as_u64` reads it (`None` for anything else,
/// `5.0` included).
pub fn u64_value(text: &str, span: Range<usize>) -> Option<u64> {
    let raw = text.get(span.clone())?;
    if !raw.is_empty() && raw.len() <= 19 && raw.bytes().all(|d| d.is_ascii_digit()) {
        return raw.parse().ok();
    }
    parse_value(text, span).as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agrees(text: &str) {
        let serde = serde_json::from_str::<Value>(text).is_ok();
        assert_eq!(
            validate(text).is_some(),
            serde,
            "{text:?}: serde_json says {serde}"
        );
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        for text in [
            "{}",
            "[]",
            " 1 ",
            "-0",
            "0",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "1E-7",
            "-",
            "--1",
            "1.5e3",
            "true",
            "tru",
            "truex",
            "nulll",
            "null",
            "\"\"",
            "\"a\\\"b\"",
            "\"\\x\"",
            "\"\\u00e9\"",
            "\"\\u00G9\"",
            "\"\\ud83d\\ude00\"",
            "\"\\ud83d\"",
            "\"\\ude00\"",
            "\"\\ud83d\\u0041\"",
            "\"\\ud83dx\"",
            "\"\u{7}\"",
            "\"\t\"",
            "\"é\"",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{1:2}",
            "{\"a\":1}x",
            "{\"a\":1} ",
            "",
            " ",
            "1e400",
            "-1e400",
            "1e-400",
            "1e308",
            "1.7976931348623157e308",
            "1.7976931348623159e308",
            "17976931348623158e292",
            "0e99999999999999999999",
            "1e99999999999999999999",
            "1e-99999999999999999999",
            "[1e309]",
            "123456789012345678901234567890",
            "\u{feff}1",
            "[\"a\"\n,\r\t1]",
            "{\"a\":[{\"b\":null}],\"a\":2}",
            "nan",
            "Infinity",
            "+1",
            "0x10",
            "1.0e+0",
        ] {
            agrees(text);
        }
        let long = format!("1{}", "0".repeat(320));
        agrees(&long);
        agrees(&format!("{}.5", "9".repeat(310)));
        agrees(&format!("0.{}1", "0".repeat(400)));
    }

    #[test]
    fn plain_run_stops_where_a_byte_loop_does() {
        let alphabet = [
            b'a', b'a', b'a', b'a', b'"', b'\\', 0x1f, 0x00, 0x20, 0x7f, 0x80, 0xff, b'!', b'#',
        ];
        let mut seed = 7u64;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = (seed >> 40) as usize % 40;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    // Mostly plain bytes, so runs cross whole words.
                    if (seed >> 60) < 13 {
                        b'a'
                    } else {
                        alphabet[(seed >> 33) as usize % alphabet.len()]
                    }
                })
                .collect();
            let want = bytes
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .unwrap_or(len);
            assert_eq!(plain_run(&bytes), want, "{bytes:?}");
        }
    }

    #[test]
    fn nesting_limit_is_serde_json_s() {
        for depth in [126, 127, 128, 129, 200] {
            agrees(&format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
            agrees(&format!(
                "{}1{}",
                "{\"a\":[".repeat(depth / 2),
                "]}".repeat(depth / 2)
            ));
        }
    }

    #[test]
    fn members_and_elements_are_the_values_serde_json_reads() {
        let text = r#" {"a": 1, "b\n": [1, {"c": "}"}], "a": "x\"]", "d": {}, "e": [] , "f":-2.5e3}"#;
        let tree: Value = serde_json::from_str(text).unwrap();
        // With the validator's outline and without one (everything scanned).
        for outline in [validate(text).unwrap(), Outline::default()] {
            let o = &outline;
            let mut seen = serde_json::Map::new();
            for (k, span) in members(text, o, 0..text.len()).unwrap() {
                seen.insert(k.into_owned(), parse_value(text, span));
            }
            assert_eq!(Value::Object(seen), tree);
            let (_, b) = members(text, o, 0..text.len()).unwrap().nth(1).unwrap();
            let items: Vec<Value> = elements(text, o, b)
                .unwrap()
                .map(|s| parse_value(text, s))
                .collect();
            assert_eq!(Value::Array(items), tree["b\n"]);
            let empty = span_at(text, o, text.find("[]").unwrap());
            assert_eq!(elements(text, o, empty).unwrap().count(), 0);
            assert!(members("[1]", o, 0..3).is_none());
            assert!(elements("{}", o, 0..2).is_none());
        }
        assert_eq!(u64_value("18446744073709551615", 0..20), Some(u64::MAX));
        assert_eq!(u64_value("5.0", 0..3), None);
        for n in ["-0", "1e2", "0.0", "18446744073709551616", "-1"] {
            let tree: Value = serde_json::from_str(n).unwrap();
            assert_eq!(u64_value(n, 0..n.len()), tree.as_u64(), "{n}");
        }
        assert_eq!(string_value(r#""a\u00e9""#, 0..9).as_deref(), Some("aé"));
    }
}

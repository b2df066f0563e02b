//! JSON text exactly as Python's `json.dumps(obj, indent=2)` writes it.
//!
//! The reference writer stores its manifest as `json.dumps(manifest, indent=2)`, and the
//! stored bytes feed hashes and sizes, so a byte-identical writer must reproduce Python's
//! spelling exactly. serde_json's pretty printer gets the layout right but not
//! `ensure_ascii` (Python escapes every non-ASCII char) nor Python's float spellings
//! (`1e-05`, `1e+16`, `64.0` where serde_json writes `1e-5`, `1e16`), hence this module.

use serde_json::{Number, Value};
use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every lone UTF-16 surrogate escape (`\ud800` not followed by a low surrogate
/// escape, or a low one alone) replaced by `\ufffd`, U+FFFD REPLACEMENT CHARACTER; pairs and
/// every other byte are kept. Borrowed when there is none.
///
/// Python's `json.dumps` writes a lone surrogate of a `str` (a prompt cut inside an emoji, a
/// bad decode) as such an escape and `json.loads` reads it back, but no UTF-8 text can hold
/// one, so serde_json refuses the whole document. The replacement has the escape's length (6
/// bytes), so offsets into the text stay valid.
///
/// ```
/// use raiiaf::format::pyjson::replace_lone_surrogates;
/// assert_eq!(replace_lone_surrogates(r#"["a\ud800b"]"#), r#"["a\ufffdb"]"#);
/// assert_eq!(replace_lone_surrogates(r#"["\ud83d\ude00", "\\ud800"]"#), r#"["\ud83d\ude00", "\\ud800"]"#);
/// ```
pub fn replace_lone_surrogates(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    // The code unit of the `\uXXXX` escape at `i`, if there is one.
    let unit = |i: usize| -> Option<u16> {
        (b.get(i..i + 2)? == b"\\u").then_some(())?;
        u16::from_str_radix(text.get(i + 2..i + 6)?, 16).ok()
    };
    let mut out = String::new();
    let (mut i, mut last) = (0, 0);
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        match unit(i) {
            Some(0xD800..=0xDBFF) if unit(i + 6).is_some_and(|lo| (0xDC00..=0xDFFF).contains(&lo)) => i += 12,
            Some(0xD800..=0xDFFF) => {
                out.push_str(&text[last..i]);
                out.push_str("\\ufffd");
                i += 6;
                last = i;
            }
            // Any other escape, `\\` included, is two bytes long at least: skip them.
            _ => i += 2,
        }
    }
    if last == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

/// Same bytes as Python's `json.dumps(value, indent=2)`: 2-space indent, `","` + newline
/// between items, `": "` after keys, `[]`/`{}` for empty containers, ASCII-only output,
/// floats in `repr` form, no trailing newline.
pub fn to_string_indent2(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, true, 0);
    out
}

/// Same, but compact and ASCII-only like `json.dumps(obj, separators=(",", ":"))` (ensure_ascii=True).
pub fn to_string_compact(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, false, 0);
    out
}

fn write_value(out: &mut String, value: &Value, pretty: bool, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        // Python writes empty containers without the newline/indent pair.
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, pretty, depth + 1);
                write_value(out, item, pretty, depth + 1);
            }
            newline(out, pretty, depth);
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, pretty, depth + 1);
                write_str(out, key);
                out.push_str(if pretty { ": " } else { ":" });
                write_value(out, item, pretty, depth + 1);
            }
            newline(out, pretty, depth);
            out.push('}');
        }
    }
}

/// With `indent=2`, every item (and the closing bracket) starts on its own line.
fn newline(out: &mut String, pretty: bool, depth: usize) {
    if pretty {
        out.push('\n');
        out.push_str(&" ".repeat(2 * depth));
    }
}

fn write_number(out: &mut String, n: &Number) {
    match n.as_f64() {
        // Python keeps int and float apart; serde_json does too (`1` vs `1.0`).
        Some(f) if n.is_f64() => write_float(out, f),
        // Integers (i64/u64) print as plain decimal in both languages.
        _ => write!(out, "{n}").unwrap(),
    }
}

/// Python's `float.__repr__`: the shortest digits that round-trip, laid out in fixed
/// notation unless the decimal point position is far out, with `.0` added to integral
/// values and a signed exponent of at least two digits.
fn write_float(out: &mut String, f: f64) {
    // serde_json cannot hold these, but Python would write them this way.
    if !f.is_finite() {
        let text = if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        out.push_str(text);
        return;
    }
    let sci = shortest_sci(f);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} output has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    let ndigits = digits.len() as i32;
    // Python's `decpt`: value = 0.DIGITS x 10^decpt.
    let decpt = exp + 1;
    out.push_str(sign);
    if decpt <= -4 || decpt > 16 {
        // Scientific: `1e-05`, `1.5e+300` (no `.` after a lone digit).
        out.push_str(&digits[..1]);
        if ndigits > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let exp_sign = if exp < 0 { '-' } else { '+' };
        write!(out, "e{exp_sign}{:02}", exp.unsigned_abs()).unwrap();
    } else if decpt <= 0 {
        // `0.000123`
        out.push_str("0.");
        out.push_str(&"0".repeat((-decpt) as usize));
        out.push_str(&digits);
    } else if decpt < ndigits {
        // `12.5`
        let (int, frac) = digits.split_at(decpt as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else {
        // Integral: `64.0`, `1000000000000000.0`.
        out.push_str(&digits);
        out.push_str(&"0".repeat((decpt - ndigits) as usize));
        out.push_str(".0");
    }
}

/// The digits of Python's repr, as `[-]d[.ddd]e<exp>` (`-0e0` for -0.0).
///
/// Rust's `{:e}` gives the shortest digit count that round-trips, but when two strings of
/// that length lie exactly as far from the value it rounds the tie up, where Python's
/// dtoa rounds half to even: 1377591524596402.25 is `...402.3` in Rust, `...402.2` in
/// Python. Rust's fixed-precision `{:.N$e}` is correctly rounded with ties to even, so that
/// string at the same length is Python's choice whenever it still round-trips (next to a
/// power of two the round-trip interval is lopsided and it may not; then `{:e}` is right).
fn shortest_sci(f: f64) -> String {
    let shortest = format!("{f:e}");
    let ndigits = shortest
        .split('e')
        .next()
        .unwrap_or_default()
        .bytes()
        .filter(u8::is_ascii_digit)
        .count();
    let nearest = format!("{:.*e}", ndigits - 1, f);
    if nearest.parse::<f64>().ok().map(f64::to_bits) == Some(f.to_bits()) {
        nearest
    } else {
        shortest
    }
}

/// A string as Python writes it with `ensure_ascii=True`: short escapes for `"`, `\` and
/// the five common controls, lowercase `\uXXXX` for every other char outside 0x20..=0x7e
/// (surrogate pairs above U+FFFF); `/` stays as is.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(out, "\\u{unit:04x}").unwrap();
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn float(f: f64) -> String {
        to_string_indent2(&json!(f))
    }

    #[test]
    fn layout() {
        assert_eq!(to_string_indent2(&json!([])), "[]");
        assert_eq!(to_string_indent2(&json!({})), "{}");
        assert_eq!(to_string_indent2(&json!(null)), "null");
        let v = json!({"b": [1, true, null, [], {}], "a": {"x": "y"}, "e": []});
        assert_eq!(
            to_string_indent2(&v),
            "{\n  \"b\": [\n    1,\n    true,\n    null,\n    [],\n    {}\n  ],\n  \
             \"a\": {\n    \"x\": \"y\"\n  },\n  \"e\": []\n}"
        );
        assert_eq!(
            to_string_compact(&v),
            r#"{"b":[1,true,null,[],{}],"a":{"x":"y"},"e":[]}"#
        );
    }

    #[test]
    fn keeps_insertion_order() {
        let v: Value = serde_json::from_str(r#"{"z":1,"a":2,"m":3}"#).unwrap();
        assert_eq!(to_string_compact(&v), r#"{"z":1,"a":2,"m":3}"#);
    }

    #[test]
    fn strings() {
        let s = |x: &str| to_string_compact(&json!(x));
        assert_eq!(s("café ☕"), r#""caf\u00e9 \u2615""#);
        assert_eq!(s("a\"b\\c/d"), r#""a\"b\\c/d""#);
        assert_eq!(s("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(s("\u{0}\u{1f}\u{7f}\u{80}"), r#""\u0000\u001f\u007f\u0080""#);
        assert_eq!(s("\u{1F600}\u{10FFFF}"), r#""\ud83d\ude00\udbff\udfff""#);
        assert_eq!(s("\u{FFFF}\u{ABCD}"), r#""\uffff\uabcd""#);
        assert_eq!(
            to_string_indent2(&json!({"é": "x"})),
            "{\n  \"\\u00e9\": \"x\"\n}"
        );
    }

    #[test]
    fn integers() {
        assert_eq!(to_string_compact(&json!(0)), "0");
        assert_eq!(to_string_compact(&json!(i64::MIN)), "-9223372036854775808");
        assert_eq!(to_string_compact(&json!(i64::MAX)), "9223372036854775807");
        assert_eq!(to_string_compact(&json!(u64::MAX)), "18446744073709551615");
    }

    #[test]
    fn floats() {
        let cases: &[(f64, &str)] = &[
            (7.5, "7.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (64.0, "64.0"),
            (-3.0, "-3.0"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (123.456, "123.456"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            // Exact ties between two shortest candidates: Python rounds half to even.
            (5510366098385609.0 / 4.0, "1377591524596402.2"),
            (5510366098385611.0 / 4.0, "1377591524596402.8"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (0.00001, "1e-05"),
            (-1.25e-5, "-1.25e-05"),
            (1.5e300, "1.5e+300"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN, "-1.7976931348623157e+308"),
        ];
        for &(f, want) in cases {
            assert_eq!(float(f), want, "{f:?}");
        }
        let mut out = String::new();
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            write_float(&mut out, f);
            out.push(' ');
        }
        assert_eq!(out, "NaN Infinity -Infinity ");
    }

    /// Tiny deterministic PRNG (xorshift64*), so the test needs no extra dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_float(rng: &mut Rng) -> f64 {
        match rng.below(4) {
            // Any finite bit pattern: every magnitude, subnormals included.
            0 => loop {
                let f = f64::from_bits(rng.next());
                if f.is_finite() {
                    break f;
                }
            },
            // Short decimals around the fixed/scientific switch (10^-6 .. 10^19).
            1 => {
                let mantissa = rng.below(100_000) as f64;
                let sign = if rng.below(2) == 0 { 1.0 } else { -1.0 };
                sign * mantissa * 10f64.powi(rng.below(26) as i32 - 10)
            }
            // Integers up to and past 2^53 over small powers of two: integral floats and
            // exact binary fractions, whose shortest digits can tie (see `shortest_sci`).
            2 => (rng.next() >> rng.below(64)) as f64 / (1u64 << rng.below(6)) as f64,
            _ => {
                let special = [
                    0.0,
                    -0.0,
                    5e-324,
                    f64::MIN_POSITIVE,
                    f64::MAX,
                    1e16,
                    1e15,
                    9999999999999998.0,
                    1e-4,
                    1e-5,
                    0.1,
                    0.5,
                ];
                special[rng.below(special.len() as u64) as usize]
            }
        }
    }

    fn random_string(rng: &mut Rng) -> String {
        let len = rng.below(12);
        (0..len)
            .map(|_| loop {
                let code = match rng.below(8) {
                    0 => rng.below(0x20) as u32,
                    1 => [0x22, 0x5c, 0x2f, 0x7f, 0x27][rng.below(5) as usize],
                    2 => 0x80 + rng.below(0x780) as u32,
                    3 => rng.below(0x1_0000) as u32,
                    4 => 0x1_0000 + rng.below(0x10_0000) as u32,
                    _ => 0x20 + rng.below(0x5f) as u32,
                };
                // Surrogate code points are not chars; draw again.
                if let Some(c) = char::from_u32(code) {
                    break c;
                }
            })
            .collect()
    }

    fn random_value(rng: &mut Rng, depth: u32) -> Value {
        let kinds = if depth >= 4 { 6 } else { 8 };
        match rng.below(kinds) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 1),
            2 => match rng.below(4) {
                0 => json!(i64::MIN + rng.below(3) as i64),
                1 => json!(i64::MAX - rng.below(3) as i64),
                2 => json!(u64::MAX - rng.below(3)),
                _ => json!(rng.next() as i64 >> rng.below(64)),
            },
            3 | 4 => json!(random_float(rng)),
            5 => Value::String(random_string(rng)),
            6 => (0..rng.below(5)).map(|_| random_value(rng, depth + 1)).collect(),
            _ => Value::Object(
                (0..rng.below(5))
                    .map(|_| (random_string(rng), random_value(rng, depth + 1)))
                    .collect(),
            ),
        }
    }

    /// Compares both writers with the real `json.dumps` on a few thousand random values.
    #[test]
    fn matches_python() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let values: Vec<Value> = (0..3000).map(|_| random_value(&mut rng, 0)).collect();
        // serde_json's compact text has no raw newline, and Python reads `1.0`/`1e16` as
        // float and `1` as int, just as the Values hold them.
        let mut input = String::new();
        for v in &values {
            input.push_str(&serde_json::to_string(v).unwrap());
            input.push('\n');
        }
        let path = std::env::temp_dir().join(format!("pyjson-test-{}.jsonl", std::process::id()));
        std::fs::write(&path, input).unwrap();
        // ensure_ascii output never holds NUL, so NUL separates the results.
        let script = r#"
import json, sys
out = sys.stdout.buffer
for line in open(sys.argv[1], encoding="utf-8", newline="\n"):
    v = json.loads(line)
    out.write(json.dumps(v, indent=2).encode("ascii") + b"\0")
    out.write(json.dumps(v, separators=(",", ":")).encode("ascii") + b"\0")
"#;
        let result = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&path)
            .output();
        std::fs::remove_file(&path).unwrap();
        let output = match result {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("SKIPPED matches_python: python3 not found on PATH");
                return;
            }
            Err(e) => panic!("running python3: {e}"),
        };
        assert!(
            output.status.success(),
            "python3 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        let mut expected = stdout.split('\0');
        for v in &values {
            assert_eq!(to_string_indent2(v), expected.next().unwrap(), "{v}");
            assert_eq!(to_string_compact(v), expected.next().unwrap(), "{v}");
        }
        assert_eq!(expected.next(), Some(""));
    }
}

//! What the IRCv3 tags on a line tell plugins: when the server says the line was sent
//! (`server-time`) and which services account sent it (`account-tag`).
//!
//! Both are the server's word, so they are read strictly: a time that is not the RFC 3339 UTC
//! form the spec prescribes, or an account of `*` (not logged in), is no information at all,
//! and the event falls back to what the bot knows itself.

use super::message::{tag, Message};

/// The `time` tag of `msg` in milliseconds since the Unix epoch, when it is a valid time.
pub fn server_time(msg: &Message) -> Option<u64> {
    tag(msg, "time").and_then(parse_rfc3339_ms)
}

/// The `account` tag of `msg`, unless it says the sender is not logged in.
pub fn account(msg: &Message) -> Option<String> {
    tag(msg, "account")
        .filter(|a| !a.is_empty() && *a != "*")
        .map(str::to_string)
}

/// `2024-01-02T03:04:05.678Z` (or with an offset such as `+01:00`, and any number of fraction
/// digits) in milliseconds since the Unix epoch. `None` for anything else or before 1970.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let sep = |at: usize, c: &[u8]| text.as_bytes().get(at).is_some_and(|b| c.contains(b));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let field = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (h, m) = (field(*h1, *h2)?, field(*m1, *m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_minutes * 60;
    u64::try_from(seconds * 1000 + millis).ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days-from-civil).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irc::message::parse;

    #[test]
    fn rfc3339_times() {
        let table: &[(&str, Option<u64>)] = &[
            ("1970-01-01T00:00:00.000Z", Some(0)),
            ("1970-01-01T00:00:01Z", Some(1000)),
            ("2000-02-29T00:00:00.000Z", Some(951_782_400_000)),
            ("2026-11-29T14:04:11.123Z", Some(1_795_961_051_123)),
            ("2026-11-29T14:04:11.1Z", Some(1_795_961_051_100)),
            ("2026-11-29T14:04:11.123456Z", Some(1_795_961_051_123)),
            ("2026-11-29T15:04:11.123+01:00", Some(1_795_961_051_123)),
            ("2026-11-29T13:34:11.123-00:30", Some(1_795_961_051_123)),
            ("2026-11-29t14:04:11z", Some(1_795_961_051_000)),
            ("2026-02-29T00:00:00Z", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-11-29T24:00:00Z", None),
            ("2026-11-29T14:04:11", None),
            ("2026-11-29T14:04:11.Z", None),
            ("2026-11-29T14:04:11+0100", None),
            ("1969-12-31T23:59:59Z", None),
            ("+026-11-29T14:04:11Z", None),
            ("2026-11-29T14:04:11Zjunk", None),
            ("", None),
            ("é", None),
            ("2026-11-29T14:04:1é", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_rfc3339_ms(text), *want, "{text:?}");
        }
    }

    #[test]
    fn tags_of_a_line() {
        let msg = parse("@time=2026-11-29T14:04:11.123Z;account=alice :a!u@h PRIVMSG #c :hi")
            .expect("parses");
        assert_eq!(server_time(&msg), Some(1_795_961_051_123));
        assert_eq!(account(&msg).as_deref(), Some("alice"));
        let msg = parse("@time=yesterday;account=* :a!u@h PRIVMSG #c :hi").expect("parses");
        assert_eq!(server_time(&msg), None);
        assert_eq!(account(&msg), None);
        let msg = parse(":a!u@h PRIVMSG #c :hi").expect("parses");
        assert_eq!((server_time(&msg), account(&msg)), (None, None));
    }
}

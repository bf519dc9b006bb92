//! XEP-0203: Delayed Delivery — the `<delay/>` stamp on a stanza delivered late (offline
//! messages, XEP-0160), and the XEP-0082 DateTime it carries. Time comes in and goes out as
//! Unix seconds: this crate reads no clock.

use crate::ns;
use crate::xml::Element;

/// Why a `<delay/>` could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DelayError {
    /// Not `<delay xmlns='urn:xmpp:delay'/>`.
    #[error("not an urn:xmpp:delay <delay/> element")]
    WrongElement,
    /// No `stamp`, which XEP-0203 §3 requires.
    #[error("delay without stamp")]
    MissingStamp,
    /// A `stamp` that is not a DateTime.
    #[error(transparent)]
    BadStamp(#[from] DateTimeError),
}

/// A string that is not an XEP-0082 DateTime we can read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an XEP-0082 DateTime: {0:?}")]
pub struct DateTimeError(pub String);

/// `<delay xmlns='urn:xmpp:delay'/>` (XEP-0203 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delay {
    /// The entity that delayed the stanza (e.g. the server holding offline messages).
    pub from: Option<String>,
    /// When the stanza was originally sent or stored, in Unix seconds (whole seconds:
    /// fractions in a received stamp are dropped).
    pub stamp: i64,
    /// The character data: a human-readable reason for the delay, if any.
    pub reason: Option<String>,
}

impl Delay {
    /// Reads a `<delay/>`; unknown attributes are ignored.
    pub fn parse(el: &Element) -> Result<Delay, DelayError> {
        if !el.is("delay", ns::DELAY) {
            return Err(DelayError::WrongElement);
        }
        let stamp = el.attr("stamp").ok_or(DelayError::MissingStamp)?;
        let reason = el.text();
        Ok(Delay {
            from: el.attr("from").map(str::to_owned),
            stamp: parse_datetime(stamp)?,
            reason: (!reason.is_empty()).then_some(reason),
        })
    }

    /// Writes the element, the stamp in UTC as XEP-0203 §3 requires.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("delay", ns::DELAY);
        if let Some(from) = &self.from {
            el.set_attr("from", from.as_str());
        }
        el.set_attr("stamp", datetime(self.stamp));
        if let Some(reason) = &self.reason {
            el.push_text(reason.as_str());
        }
        el
    }
}

/// `<delay xmlns='urn:xmpp:delay' from='…' stamp='…'/>` for a stanza stored at `unix_secs`.
pub fn delay(from: &str, unix_secs: i64) -> Element {
    Delay {
        from: Some(from.to_owned()),
        stamp: unix_secs,
        reason: None,
    }
    .to_element()
}

/// XEP-0082 DateTime in UTC, e.g. `2026-11-27T14:15:04Z`.
pub fn datetime(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Reads an XEP-0082 DateTime (`CCYY-MM-DDThh:mm:ss[.sss]TZD`, where TZD is `Z` or
/// `±hh:mm`) as Unix seconds. Any number of fraction digits is accepted and dropped, which
/// rounds towards the past; fields out of range (month 13, 30 February, hour 24, second 60)
/// are refused, as `xs:dateTime` does.
pub fn parse_datetime(text: &str) -> Result<i64, DateTimeError> {
    fields(text.as_bytes()).ok_or_else(|| DateTimeError(text.to_owned()))
}

fn fields(b: &[u8]) -> Option<i64> {
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if b.len() < 20 || separators.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &fraction[n..];
    }
    let offset = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    // The local time is the offset ahead of UTC.
    Some(local - offset)
}

/// ASCII digits as a number; `None` for anything else (signs included).
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A proleptic Gregorian date to days since 1970-01-01: the inverse of
/// [`civil_from_days`], with the same March-based 400-year eras.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian date (the well-known era/day-of-era
/// conversion: 400-year eras of 146097 days, years starting in March).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(datetime(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(datetime(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(datetime(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(datetime(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn delay_element_bytes() {
        let el = delay("localhost", 1_700_000_000);
        assert_eq!(
            el.to_bytes(ns::CLIENT),
            b"<delay xmlns=\"urn:xmpp:delay\" from=\"localhost\" stamp=\"2023-11-14T22:13:20Z\"/>"
        );
    }

    #[test]
    fn parses_what_datetime_writes() {
        // Every day boundary across leap years, centuries and the epoch, plus odd seconds.
        let mut t = -3 * 146_097 * 86_400;
        while t < 5_000_000_000 {
            assert_eq!(parse_datetime(&datetime(t)), Ok(t), "{}", datetime(t));
            t += 86_400 * 7 + 3_661;
        }
        for t in [-1, 0, 1, 951_782_399, 951_782_400, 4_102_444_799] {
            assert_eq!(parse_datetime(&datetime(t)), Ok(t));
        }
    }

    #[test]
    fn parses_fractions_and_offsets() {
        let cases = [
            ("2002-09-10T23:08:25Z", 1_031_699_305),
            ("2002-09-10T23:08:25.123Z", 1_031_699_305),
            ("2002-09-10T23:08:25.999999999Z", 1_031_699_305),
            ("2002-09-10T19:08:25-04:00", 1_031_699_305),
            ("2002-09-11T01:38:25+02:30", 1_031_699_305),
            ("2002-09-10T23:08:25+00:00", 1_031_699_305),
            ("2002-09-10T23:08:25.5-00:00", 1_031_699_305),
            ("1969-12-31T23:59:59.5Z", -1),
            ("2000-02-29T00:00:00Z", 951_782_400),
        ];
        for (text, secs) in cases {
            assert_eq!(parse_datetime(text), Ok(secs), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_datetime() {
        for text in [
            "",
            "2002-09-10T23:08:25",
            "2002-09-10 23:08:25Z",
            "2002-09-10t23:08:25Z",
            "2002-09-10T23:08:25z",
            "2002-09-10T23:08Z",
            "20020910T23:08:25Z",
            "2002-09-10T23:08:25.Z",
            "2002-09-10T23:08:25+0200",
            "2002-09-10T23:08:25+24:00",
            "2002-09-10T23:08:25Z ",
            "2002-13-10T23:08:25Z",
            "2002-00-10T23:08:25Z",
            "2002-09-31T23:08:25Z",
            "2001-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2002-09-10T24:00:00Z",
            "2002-09-10T23:60:25Z",
            "2002-09-10T23:08:60Z",
            "+002-09-10T23:08:25Z",
            "2002-09-10T23:08:25\u{e9}",
        ] {
            assert_eq!(
                parse_datetime(text),
                Err(DateTimeError(text.to_owned())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn delay_round_trips_byte_for_byte() {
        let xml = concat!(
            r#"<delay xmlns="urn:xmpp:delay" from="capulet.com" stamp="2002-09-10T23:08:25Z">"#,
            "Offline Storage</delay>"
        );
        let el = crate::xml::parse_stanza(xml.as_bytes()).unwrap();
        let parsed = Delay::parse(&el).unwrap();
        assert_eq!(
            parsed,
            Delay {
                from: Some("capulet.com".to_owned()),
                stamp: 1_031_699_305,
                reason: Some("Offline Storage".to_owned()),
            }
        );
        assert_eq!(parsed.to_element().to_bytes(ns::CLIENT), xml.as_bytes());
        let bare = Delay {
            from: None,
            stamp: 0,
            reason: None,
        };
        assert_eq!(
            bare.to_element().to_bytes(ns::CLIENT),
            b"<delay xmlns=\"urn:xmpp:delay\" stamp=\"1970-01-01T00:00:00Z\"/>"
        );
        assert_eq!(Delay::parse(&bare.to_element()), Ok(bare));
    }

    #[test]
    fn delay_stamps_are_normalised_to_utc_and_unknown_attributes_ignored() {
        let el = Element::new("delay", ns::DELAY)
            .with_attr("stamp", "2002-09-10T19:08:25.250-04:00")
            .with_attr("extra", "x");
        let parsed = Delay::parse(&el).unwrap();
        assert_eq!(
            (
                parsed.stamp,
                parsed.from.as_deref(),
                parsed.reason.as_deref()
            ),
            (1_031_699_305, None, None)
        );
        assert_eq!(
            String::from_utf8(parsed.to_element().to_bytes(ns::DELAY)).unwrap(),
            r#"<delay stamp="2002-09-10T23:08:25Z"/>"#
        );
    }

    #[test]
    fn bad_delays_give_typed_errors() {
        let stamp = |s: &str| Element::new("delay", ns::DELAY).with_attr("stamp", s);
        assert_eq!(
            Delay::parse(
                &Element::new("x", "jabber:x:delay").with_attr("stamp", "20020910T23:08:25")
            ),
            Err(DelayError::WrongElement)
        );
        assert_eq!(
            Delay::parse(&Element::new("delay", ns::DELAY).with_attr("from", "a")),
            Err(DelayError::MissingStamp)
        );
        assert_eq!(
            Delay::parse(&stamp("yesterday")),
            Err(DelayError::BadStamp(DateTimeError("yesterday".to_owned())))
        );
        assert_eq!(
            Delay::parse(&stamp("yesterday")).unwrap_err().to_string(),
            r#"not an XEP-0082 DateTime: "yesterday""#
        );
    }
}

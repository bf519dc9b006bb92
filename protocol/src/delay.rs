//! XEP-0203: Delayed Delivery — the `<delay/>` stamp on a stanza delivered late (offline
//! messages, XEP-0160). Time comes in as Unix seconds: this crate reads no clock.

use crate::ns;
use crate::xml::Element;

/// `<delay xmlns='urn:xmpp:delay' from='…' stamp='…'/>` for a stanza stored at `unix_secs`.
pub fn delay(from: &str, unix_secs: i64) -> Element {
    Element::new("delay", ns::DELAY)
        .with_attr("from", from)
        .with_attr("stamp", datetime(unix_secs))
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
}

//! Timestamps as the server's log and the admin tool print them.

use std::time::{SystemTime, UNIX_EPOCH};

/// `time` as an RFC 3339 UTC timestamp with milliseconds; times before 1970
/// are written as 1970-01-01T00:00:00.000Z.
pub fn format_timestamp(time: SystemTime) -> String {
    let time = time.max(UNIX_EPOCH);
    match jiff::Timestamp::try_from(time) {
        Ok(stamp) => stamp.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        // Beyond year 9999: jiff's range; no clock reads that far.
        Err(_) => "9999-12-31T23:59:59.999Z".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(format_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_763_702_496_123);
        assert_eq!(format_timestamp(t), "2025-11-21T05:21:36.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(format_timestamp(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn dates_before_and_after_leap_days() {
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_000);
        assert_eq!(format_timestamp(t), "2000-02-29T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_868_800);
        assert_eq!(format_timestamp(t), "2000-03-01T00:00:00.000Z");
    }
}

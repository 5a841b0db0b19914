//! When the periodic jobs are due, read from the services' clock (so tests move time by hand
//! instead of sleeping): the daily summary at a local time of day in a configured time zone.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

/// A job due once a day at a local time.
#[derive(Debug, Clone)]
pub struct DailyAt {
    tz: Tz,
    at: NaiveTime,
    last: Option<NaiveDate>,
}

impl DailyAt {
    /// Due every day at `at` (e.g. `07:00`) in the time zone `tz` (IANA name, e.g. `Europe/Berlin`).
    pub fn parse(at: &str, tz: &str) -> anyhow::Result<Self> {
        let at =
            NaiveTime::parse_from_str(at, "%H:%M").map_err(|e| anyhow::anyhow!("summary time {at:?}: {e} (HH:MM)"))?;
        let tz: Tz = tz.parse().map_err(|e| anyhow::anyhow!("time zone {tz:?}: {e}"))?;
        Ok(DailyAt { tz, at, last: None })
    }

    /// The local day whose run is due at `now`, or `None` (before the time, or already run
    /// today in this process; the per-user claims make it once a day across processes too).
    pub fn due(&mut self, now: DateTime<Utc>) -> Option<NaiveDate> {
        let local = now.with_timezone(&self.tz);
        let day = local.date_naive();
        if local.time() < self.at || self.last == Some(day) {
            return None;
        }
        self.last = Some(day);
        Some(day)
    }
}

/// The daily summary's schedule `cfg` sets (`summary_time` in `timezone`); `None` when
/// `summary_time` is `off` (another process schedules it, or nobody wants it).
pub fn summary_schedule(cfg: &taskhub_core::config::Config) -> anyhow::Result<Option<DailyAt>> {
    match cfg.summary_time.as_str() {
        "off" => Ok(None),
        at => DailyAt::parse(at, &cfg.timezone).map(Some),
    }
}

//! Deterministic building blocks for synthetic provider data: a seeded
//! generator, provider-style ids, UUIDs and ISO 8601 timestamps.
//!
//! The generator is SplitMix64 rather than `rand`'s `StdRng` because its
//! output is fixed by its definition: fixtures derived from a seed must not
//! change when a dependency is upgraded, and any event must be reproducible
//! from `(seed, index)` alone so that it can be rendered lazily.

use time::format_description::well_known::Rfc3339;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Milliseconds in one day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// SplitMix64 pseudo-random generator.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for one independent stream of one item, so that item `n`
    /// can be produced without producing items `0..n` first.
    pub(crate) fn for_item(seed: u64, stream: u64, index: u64) -> Rng {
        let mut base = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        let mixed = base.next_u64() ^ index.wrapping_mul(0xE703_7ED1_A0B4_28DB);
        Rng(mix(mixed))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift keeps the bias negligible without a rejection loop.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Index drawn with the given relative weights.
    pub(crate) fn weighted(&mut self, weights: impl Iterator<Item = u32> + Clone) -> usize {
        let total: u64 = weights.clone().map(u64::from).sum();
        let mut roll = self.below(total);
        let mut last = 0;
        for (i, w) in weights.enumerate() {
            last = i;
            if roll < u64::from(w) {
                return i;
            }
            roll -= u64::from(w);
        }
        last
    }

    pub(crate) fn base62(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(BASE62[self.index(BASE62.len())]))
            .collect()
    }

    pub(crate) fn base64url(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(BASE64URL[self.index(BASE64URL.len())]))
            .collect()
    }

    pub(crate) fn hex(&mut self, len: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        (0..len)
            .map(|_| char::from(HEX[self.index(HEX.len())]))
            .collect()
    }

    /// A random-format (version 4, RFC 4122 variant) UUID string.
    pub(crate) fn uuid_v4(&mut self) -> String {
        let hi = (self.next_u64() & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
        let lo = (self.next_u64() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Current wall-clock time in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// `2024-01-02T03:04:05.678Z`: UTC with exactly three fractional digits,
/// the shape every Okta timestamp has.
pub(crate) fn iso_millis(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Parses an RFC 3339 / ISO 8601 date-time with offset into Unix milliseconds.
pub(crate) fn parse_iso(s: &str) -> Option<i64> {
    let dt = time::OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Howard Hinnant's days-to-civil conversion; hand-rolled because it runs
/// for every rendered timestamp and cannot fail, unlike `time`'s range-checked
/// constructors.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trips() {
        for ms in [0, 1_700_000_000_123, 951_782_400_000, 4_102_444_799_999] {
            let s = iso_millis(ms);
            assert_eq!(parse_iso(&s), Some(ms), "{s}");
        }
        assert_eq!(iso_millis(1_704_164_645_006), "2024-01-02T03:04:05.006Z");
    }

    #[test]
    fn uuid_shape() {
        let u = Rng::for_item(1, 2, 3).uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a = Rng::for_item(7, 1, 10).next_u64();
        assert_eq!(a, Rng::for_item(7, 1, 10).next_u64());
        assert_ne!(a, Rng::for_item(7, 1, 11).next_u64());
        assert_ne!(a, Rng::for_item(7, 2, 10).next_u64());
        assert_ne!(a, Rng::for_item(8, 1, 10).next_u64());
    }
}

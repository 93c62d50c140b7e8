//! The bot's random opinion on karma given in a channel (reference §2.1 step 5).
//!
//! Off unless the plugin's config says `opinions: true` (§6.4). The odds are the original's: an
//! opinion is voiced 30% of the time, and it is positive 70% of the time, whether the karma went
//! up or down. Randomness comes from a small xorshift generator; nothing here needs to be
//! unpredictable, only varied.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// How often an opinion is voiced.
pub const SPEAK_CHANCE: f64 = 0.3;
/// How often a voiced opinion is positive.
pub const POSITIVE_CHANCE: f64 = 0.7;

/// Put before the names, with `!` after.
pub const POSITIVES: [&str; 5] = [
    "Heck yeah, ",
    "You go, ",
    "I support ",
    "I like ",
    "You do you, ",
];
/// Put before the names, with `?` after.
pub const NEGATIVES: [&str; 3] = ["Eww, why ", "Who needs ", "What good is "];

/// A source of randomness, so tests can script the dice.
pub trait Random {
    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64;

    /// An index in `0..len`; `len` must not be 0.
    fn index(&mut self, len: usize) -> usize {
        // The float is below 1, so the product is below len; `min` guards against rounding.
        ((self.unit() * len as f64) as usize).min(len.saturating_sub(1))
    }
}

/// xorshift64*: small, fast and good enough for chat banter.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator with a fixed seed (0 is replaced, since xorshift never leaves 0).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// A generator seeded from the standard library's per-process random keys and the clock.
    pub fn from_entropy() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        XorShift::new(hasher.finish())
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Random for XorShift {
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An opinion on `names` (in the order they appeared), or `None` when the bot keeps quiet.
pub fn opinion(names: &[&str], rng: &mut impl Random) -> Option<String> {
    if names.is_empty() || rng.unit() >= SPEAK_CHANCE {
        return None;
    }
    let names = names.join(" and ");
    Some(if rng.unit() < POSITIVE_CHANCE {
        format!("{}{names}!", POSITIVES[rng.index(POSITIVES.len())])
    } else {
        format!("{}{names}?", NEGATIVES[rng.index(NEGATIVES.len())])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dice that roll the given numbers in turn.
    struct Scripted(Vec<f64>);

    impl Random for Scripted {
        fn unit(&mut self) -> f64 {
            self.0.remove(0)
        }
    }

    #[test]
    fn scripted_opinions() {
        // (names, rolls: speak, positive, pick) → opinion
        let cases: &[(&[&str], &[f64], Option<&str>)] = &[
            (&["foo"], &[0.0, 0.0, 0.0], Some("Heck yeah, foo!")),
            (
                &["foo", "bar"],
                &[0.29, 0.69, 0.99],
                Some("You do you, foo and bar!"),
            ),
            (&["foo"], &[0.1, 0.5, 0.5], Some("I support foo!")),
            (&["foo"], &[0.1, 0.7, 0.0], Some("Eww, why foo?")),
            (
                &["a b", "c"],
                &[0.1, 0.99, 0.99],
                Some("What good is a b and c?"),
            ),
            (&["foo"], &[0.3], None),
            (&["foo"], &[0.99], None),
            (&[], &[], None),
        ];
        for (names, rolls, want) in cases {
            let mut dice = Scripted(rolls.to_vec());
            assert_eq!(
                opinion(names, &mut dice).as_deref(),
                *want,
                "names {names:?} rolls {rolls:?}"
            );
            assert!(dice.0.is_empty(), "every roll is used: {rolls:?}");
        }
    }

    #[test]
    fn xorshift_stays_in_range_and_matches_the_odds() {
        let mut rng = XorShift::new(42);
        let mut spoke = 0;
        let mut positive = 0;
        for _ in 0..20_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(rng.index(3) < 3);
            if let Some(text) = opinion(&["foo"], &mut rng) {
                spoke += 1;
                if text.ends_with('!') {
                    positive += 1;
                }
            }
        }
        // 30% of 20 000 is 6 000 and 70% of that is 4 200; the bounds are many deviations wide.
        assert!((5_500..6_500).contains(&spoke), "spoke {spoke} times");
        assert!(
            (3_700..4_700).contains(&positive),
            "positive {positive} times"
        );
    }

    #[test]
    fn a_zero_seed_still_varies() {
        let mut rng = XorShift::new(0);
        assert_ne!(rng.unit(), rng.unit());
        let mut a = XorShift::from_entropy();
        let mut b = XorShift::from_entropy();
        assert_ne!(
            (a.unit(), a.unit()),
            (b.unit(), b.unit()),
            "two seeds drawn from entropy differ"
        );
    }
}

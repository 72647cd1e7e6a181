//! The fault injector: decides, per request received on a socket, whether it fails.
//! Seeded, so the same request sequence with the same seed fails the same way.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::{Fault, FaultKind};

/// Rolls the dice for each request against the configured faults.
#[derive(Debug)]
pub struct FaultInjector {
    faults: Vec<Fault>,
    rng: Mutex<SplitMix64>,
    /// Off while a harness inspects the end state of a faulty run (see
    /// [`FaultInjector::set_enabled`]); the dice are not rolled meanwhile, so the sequence
    /// a seed produces resumes where it stopped.
    enabled: AtomicBool,
}

impl FaultInjector {
    pub fn new(faults: Vec<Fault>, seed: u64) -> Self {
        FaultInjector {
            faults,
            rng: Mutex::new(SplitMix64(seed)),
            enabled: AtomicBool::new(true),
        }
    }

    /// Turns injection on or off (a chaos harness checks the end state without faults).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
    }

    /// The fault to inject for this request, if any. The first matching fault whose roll
    /// succeeds wins.
    pub fn decide(&self, method: &str, path: &str) -> Option<FaultKind> {
        if !self.enabled.load(Ordering::SeqCst) {
            return None;
        }
        for fault in self.faults.iter().filter(|f| f.matches(method, path)) {
            let roll = match self.rng.lock() {
                Ok(mut rng) => rng.next_f64(),
                Err(poisoned) => poisoned.into_inner().next_f64(),
            };
            if roll < fault.rate {
                return Some(fault.kind);
            }
        }
        None
    }
}

/// A tiny, well-known PRNG (Steele et al.); enough for fault dice and reproducible by seed.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(seed: u64) -> Vec<Option<FaultKind>> {
        let inj = FaultInjector::new(vec![Fault::parse("/x/*:503,rate=0.5").unwrap()], seed);
        (0..64).map(|_| inj.decide("GET", "/x/y")).collect()
    }

    #[test]
    fn same_seed_same_faults() {
        assert_eq!(outcomes(7), outcomes(7));
        assert_ne!(outcomes(7), outcomes(8));
    }

    #[test]
    fn rate_is_roughly_respected_and_routes_filter() {
        let inj = FaultInjector::new(vec![Fault::parse("/x/*:429,rate=0.1").unwrap()], 1);
        let hits = (0..10_000)
            .filter(|_| inj.decide("GET", "/x/y").is_some())
            .count();
        assert!(
            (800..1200).contains(&hits),
            "{hits} faults out of 10000 at rate 0.1"
        );
        assert_eq!(inj.decide("GET", "/other"), None);
    }

    #[test]
    fn rate_one_always_and_zero_never() {
        let always = FaultInjector::new(vec![Fault::parse("*:drop").unwrap()], 3);
        assert!((0..100).all(|_| always.decide("GET", "/a") == Some(FaultKind::Drop)));
        let never = FaultInjector::new(vec![Fault::parse("*:500,rate=0").unwrap()], 3);
        assert!((0..100).all(|_| never.decide("GET", "/a").is_none()));
    }

    #[test]
    fn disabled_injector_injects_nothing_then_resumes() {
        let inj = FaultInjector::new(vec![Fault::parse("*:503").unwrap()], 5);
        inj.set_enabled(false);
        assert!((0..100).all(|_| inj.decide("GET", "/a").is_none()));
        inj.set_enabled(true);
        assert_eq!(inj.decide("GET", "/a"), Some(FaultKind::Unavailable));
    }
}

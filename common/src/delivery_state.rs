//! A delivery's state, and how a reader works it out.
//!
//! A delivery has no record of its own until it is first attempted: it is
//! an event id in its endpoint's `ep_dlv` (see `keys.rs`), pending by
//! definition. From its first recorded attempt (or a manual retry) on, its
//! partition's `states:<bucket>` hash holds one field for it, the delivery
//! id without `dlv_`, whose value `record.lua` and `retry.lua` write (and
//! `state.lua` reads) as
//!
//! ```text
//! <status>|<attempts>|<last_at>|<last_code>|<next>|<max_attempts>|<recorded>|<attempt ids>
//! ```
//!
//! with `status` one letter (`p`ending, `s`cheduled, `d`elivered,
//! `f`ailed), empty values for what is unknown, and the attempt-log entry
//! ids comma-separated, each without its sequence when that is `-0`.
//! `recorded` is `<lease token>:<disabled>` of the last recorded attempt,
//! the token as milliseconds after `last_at`, so a resent `record.lua`
//! call records nothing twice. A delivered delivery's state is about 45
//! bytes. States of layout 2 (the status a word, the token absolute, ids
//! with `-0`) still read, here and in `state.lua`.
//!
//! Two states are never stored: `in_flight` is membership of the
//! partition's lease set, and `cancelled` is a delivery that had not ended
//! when its endpoint was deleted. [`derive`] puts the pieces together.

use crate::model::DeliveryStatus;

/// Why the last attempt got no status code (`record.lua` stores `t` or
/// `e` in the code's place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoAnswer {
    /// No answer within the attempt's timeout.
    Timeout,
    /// No answer for another reason: the connection failed or was refused.
    ConnectError,
}

impl NoAnswer {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "t" => Some(NoAnswer::Timeout),
            "e" => Some(NoAnswer::ConnectError),
            _ => None,
        }
    }

    fn code(self) -> &'static str {
        match self {
            NoAnswer::Timeout => "t",
            NoAnswer::ConnectError => "e",
        }
    }
}

/// What `states:<bucket>` holds for one delivery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredState {
    /// `pending`, `scheduled`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub last_at: Option<u64>,
    pub last_code: Option<u16>,
    /// Why the last attempt had no status code, when it had none.
    pub no_answer: Option<NoAnswer>,
    /// When the next attempt is due (ms), while one is.
    pub next: Option<u64>,
    /// A manual retry allows this many attempts in all (one more).
    pub max_attempts: Option<u32>,
    /// `<lease token>:<disabled>` of the last recorded attempt.
    pub recorded: String,
    /// The delivery's attempt-log entry ids, oldest first.
    pub attempt_ids: Vec<String>,
}

impl StoredState {
    /// Parses a stored value, in either form; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(8, '|');
        let mut next = || parts.next();
        let status_text = next()?;
        let compact = STATUSES.iter().find(|(_, letter)| *letter == status_text);
        let status = compact.map_or(status_text, |(word, _)| word).to_string();
        let attempts = next()?.parse().unwrap_or(0);
        let last_at: Option<u64> = next()?.parse().ok();
        let code_text = next()?;
        let last_code = code_text.parse().ok();
        let no_answer = NoAnswer::parse(code_text);
        let next_at = next()?.parse().ok();
        let max_attempts = next()?.parse().ok();
        let recorded_text = next()?;
        // As `state.lua` reads them: a token that is not a number stays as
        // it is, an entry id that is not one is left out.
        let recorded = match (recorded_text.split_once(':'), last_at) {
            (Some((delta, disabled)), Some(last_at)) if compact.is_some() => {
                match delta
                    .parse::<i64>()
                    .ok()
                    .and_then(|d| d.checked_add(last_at as i64))
                {
                    Some(token) => format!("{token}:{disabled}"),
                    None => recorded_text.to_string(),
                }
            }
            _ => recorded_text.to_string(),
        };
        let attempt_ids = next()?
            .split(',')
            .filter_map(|id| {
                let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
                let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
                Some(format!("{ms}-{seq}"))
            })
            .collect();
        Some(StoredState {
            status,
            attempts,
            last_at,
            last_code,
            no_answer,
            next: next_at,
            max_attempts,
            recorded,
            attempt_ids,
        })
    }

    /// The stored form, compact (the scripts write it; tests and tools
    /// use this).
    pub fn encode(&self) -> String {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let status = STATUSES
            .iter()
            .find(|(word, _)| *word == self.status)
            .map_or(self.status.as_str(), |(_, letter)| letter);
        let recorded = match (self.recorded.split_once(':'), self.last_at) {
            (Some((token, disabled)), Some(last_at)) => match token.parse::<i64>() {
                Ok(token) => format!("{}:{disabled}", token - last_at as i64),
                Err(_) => self.recorded.clone(),
            },
            _ => self.recorded.clone(),
        };
        let ids: Vec<&str> = self
            .attempt_ids
            .iter()
            .map(|id| id.strip_suffix("-0").unwrap_or(id))
            .collect();
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}",
            status,
            self.attempts,
            opt(self.last_at),
            match (self.last_code, self.no_answer) {
                (Some(code), _) => code.to_string(),
                (None, Some(no_answer)) => no_answer.code().to_string(),
                (None, None) => String::new(),
            },
            opt(self.next),
            self.max_attempts.map(|m| m.to_string()).unwrap_or_default(),
            recorded,
            ids.join(","),
        )
    }
}

/// The statuses a state stores, with the letter each is stored as.
const STATUSES: [(&str, &str); 4] = [
    ("pending", "p"),
    ("scheduled", "s"),
    ("delivered", "d"),
    ("failed", "f"),
];

/// What a reader found about one delivery (all read in one round trip).
#[derive(Clone, Debug, Default)]
pub struct Found {
    /// Its `states:<bucket>` field, once attempted or retried.
    pub stored: Option<StoredState>,
    /// It is in its partition's lease set.
    pub leased: bool,
    /// Its endpoint still exists.
    pub endpoint_exists: bool,
    /// Its endpoint is paused or disabled: a waiting delivery is held.
    pub endpoint_holds: bool,
    /// Its score in its endpoint's `ep_due` (a later attempt is queued).
    pub due_at: Option<u64>,
    /// When it was created (ms).
    pub created_ms: u64,
    /// The retry schedule's first entry (ms): a first attempt is due this
    /// long after creation.
    pub initial_delay_ms: u64,
}

/// A delivery's state as users see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Derived {
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_at: Option<u64>,
    pub last_code: Option<u16>,
    pub no_answer: Option<NoAnswer>,
    /// When the next attempt is due, while pending or scheduled.
    pub next_at: Option<u64>,
}

/// Works out a delivery's state: a final state stays final; otherwise a
/// deleted endpoint means cancelled, a lease means in flight, a paused or
/// disabled endpoint means held (with no next attempt time: none is due
/// until it is resumed), and the rest is what was stored (pending when
/// nothing was).
pub fn derive(found: &Found) -> Derived {
    let stored = found.stored.clone().unwrap_or_default();
    let stored_status = DeliveryStatus::parse(&stored.status);
    let status = match stored_status {
        Some(s @ (DeliveryStatus::Delivered | DeliveryStatus::Failed)) => s,
        _ if !found.endpoint_exists => DeliveryStatus::Cancelled,
        _ if found.leased => DeliveryStatus::InFlight,
        _ if found.endpoint_holds => DeliveryStatus::Held,
        Some(DeliveryStatus::Scheduled) => DeliveryStatus::Scheduled,
        _ => DeliveryStatus::Pending,
    };
    let next_at = match status {
        DeliveryStatus::Pending | DeliveryStatus::Scheduled => {
            found.due_at.or(stored.next).or_else(|| {
                (found.stored.is_none())
                    .then_some(found.created_ms.saturating_add(found.initial_delay_ms))
            })
        }
        _ => None,
    };
    Derived {
        status,
        attempts: stored.attempts,
        last_at: stored.last_at,
        last_code: stored.last_code,
        no_answer: stored.no_answer,
        next_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(status: &str) -> StoredState {
        StoredState {
            status: status.into(),
            attempts: 2,
            last_at: Some(1_000),
            last_code: Some(500),
            no_answer: None,
            next: Some(9_000),
            max_attempts: None,
            recorded: "123:0".into(),
            attempt_ids: vec!["1-0".into(), "2-0".into()],
        }
    }

    #[test]
    fn stored_states_round_trip() {
        let state = stored("scheduled");
        assert_eq!(state.encode(), "s|2|1000|500|9000||-877:0|1,2");
        assert_eq!(StoredState::parse(&state.encode()), Some(state));
        for (code, no_answer) in [("t", NoAnswer::Timeout), ("e", NoAnswer::ConnectError)] {
            let text = format!("s|1|1000|{code}|9000||-877:0|1");
            let state = StoredState::parse(&text).unwrap();
            assert_eq!((state.last_code, state.no_answer), (None, Some(no_answer)));
            assert_eq!(state.encode(), text);
        }
        let bare = StoredState::parse("p|0||||||").unwrap();
        assert_eq!(bare.status, "pending");
        assert_eq!(bare.attempts, 0);
        assert!(bare.attempt_ids.is_empty() && bare.next.is_none());
        assert_eq!(StoredState::parse("p|0"), None);
        // A damaged entry id is left out, not the whole state.
        let damaged = StoredState::parse("d|1|1000|200|||7:0|12-x,zz,13").unwrap();
        assert_eq!(damaged.attempt_ids, vec!["13-0".to_string()]);
        assert_eq!(damaged.recorded, "1007:0");
    }

    #[test]
    fn a_delivered_state_is_compact_and_reads_like_the_form_before_it() {
        let state = StoredState {
            status: "delivered".into(),
            attempts: 2,
            last_at: Some(1_796_586_191_240),
            last_code: Some(200),
            no_answer: None,
            next: None,
            max_attempts: Some(3),
            recorded: "1796586201236:1".into(),
            attempt_ids: vec!["1796586191242-0".into(), "1796586191300-3".into()],
        };
        let earlier =
            "delivered|2|1796586191240|200||3|1796586201236:1|1796586191242-0,1796586191300-3";
        assert_eq!(StoredState::parse(earlier), Some(state.clone()));
        let compact = state.encode();
        assert_eq!(StoredState::parse(&compact), Some(state));
        assert!(compact.len() + 15 <= earlier.len(), "{compact}");
        assert!(compact.starts_with("d|2|"), "{compact}");
    }

    #[test]
    fn derived_states() {
        let base = Found {
            endpoint_exists: true,
            created_ms: 100,
            initial_delay_ms: 5,
            ..Found::default()
        };
        let never = derive(&base);
        assert_eq!(
            (never.status, never.attempts, never.next_at),
            (DeliveryStatus::Pending, 0, Some(105))
        );
        let leased = derive(&Found {
            leased: true,
            ..base.clone()
        });
        assert_eq!(leased.status, DeliveryStatus::InFlight);
        assert_eq!(leased.next_at, None);
        let scheduled = Found {
            stored: Some(stored("scheduled")),
            due_at: Some(8_000),
            ..base.clone()
        };
        let derived = derive(&scheduled);
        assert_eq!(derived.status, DeliveryStatus::Scheduled);
        assert_eq!(derived.next_at, Some(8_000));
        // Paused or disabled: held, with no due time, whether first attempt
        // or retry; an attempt already in flight stays in flight.
        for waiting in [base.clone(), scheduled.clone()] {
            let held = derive(&Found {
                endpoint_holds: true,
                ..waiting
            });
            assert_eq!((held.status, held.next_at), (DeliveryStatus::Held, None));
        }
        let flying = Found {
            endpoint_holds: true,
            leased: true,
            ..base.clone()
        };
        assert_eq!(derive(&flying).status, DeliveryStatus::InFlight);
        // A deleted endpoint cancels what had not ended, not what had.
        let gone = Found {
            endpoint_exists: false,
            ..scheduled.clone()
        };
        assert_eq!(derive(&gone).status, DeliveryStatus::Cancelled);
        assert_eq!(derive(&gone).attempts, 2);
        let delivered = Found {
            stored: Some(stored("delivered")),
            endpoint_exists: false,
            leased: true,
            ..base
        };
        assert_eq!(derive(&delivered).status, DeliveryStatus::Delivered);
        assert_eq!(derive(&delivered).next_at, None);
    }
}

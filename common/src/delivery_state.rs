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
//! with `status` one upper-case letter (`P`ending, `S`cheduled,
//! `D`elivered, `F`ailed) and empty values for what is unknown. Times are
//! stored as differences: `last_at` in ms after the event's creation (the
//! field's first ten characters say when), the attempt-log entry ids
//! (comma-separated) as `<ms after last_at>[.<sequence>]`, the sequence
//! left out when 0. `recorded` is `<lease token>:<disabled>` of the last
//! recorded attempt, the token as ms after `last_at`, so a resent
//! `record.lua` call records nothing twice. A delivered delivery's state
//! is about 23 bytes (`D|1|412|200|||10000:0|0`), which Redis keeps in a
//! 32-byte allocation. States of earlier layouts still read, here and in
//! `state.lua`: layout 3's lower-case letter (`last_at` and the ids
//! absolute), layout 2's status word (the token absolute too, ids with
//! `-0`).
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
    /// Parses a stored value of a delivery whose event was created at
    /// `event_created_ms`, in any layout's form; `None` when it is not one.
    pub fn parse(text: &str, event_created_ms: u64) -> Option<Self> {
        let mut parts = text.splitn(8, '|');
        let mut next = || parts.next();
        let status_text = next()?;
        let form = Form::of(status_text);
        let status = STATUSES
            .iter()
            .find(|(_, letter)| letter.eq_ignore_ascii_case(status_text))
            .filter(|_| form != Form::Words)
            .map_or(status_text, |(word, _)| word)
            .to_string();
        let attempts = next()?.parse().unwrap_or(0);
        let last_at: Option<u64> = match form {
            Form::Relative => next()?
                .parse::<i64>()
                .ok()
                .and_then(|d| event_created_ms.checked_add_signed(d)),
            _ => next()?.parse().ok(),
        };
        let code_text = next()?;
        let last_code = code_text.parse().ok();
        let no_answer = NoAnswer::parse(code_text);
        let next_at = next()?.parse().ok();
        let max_attempts = next()?.parse().ok();
        let recorded_text = next()?;
        // As `state.lua` reads them: a token that is not a number stays as
        // it is, an entry id that is not one is left out.
        let recorded = match (recorded_text.split_once(':'), last_at) {
            (Some((delta, disabled)), Some(last_at)) if form != Form::Words => {
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
        let relative_to = last_at.filter(|_| form == Form::Relative);
        let attempt_ids = next()?
            .split(',')
            .filter_map(|id| match relative_to {
                Some(at) => {
                    let (delta, seq) = id.split_once('.').unwrap_or((id, "0"));
                    let ms = at.checked_add_signed(delta.parse().ok()?)?;
                    Some(format!("{ms}-{}", seq.parse::<u64>().ok()?))
                }
                None => {
                    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
                    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
                    Some(format!("{ms}-{seq}"))
                }
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
    /// use this), for a delivery whose event was created at
    /// `event_created_ms`.
    pub fn encode(&self, event_created_ms: u64) -> String {
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
        let ids: Vec<String> = self
            .attempt_ids
            .iter()
            .map(|id| {
                let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
                match (ms.parse::<i64>(), self.last_at) {
                    (Ok(ms), Some(at)) if seq == "0" => (ms - at as i64).to_string(),
                    (Ok(ms), Some(at)) => format!("{}.{seq}", ms - at as i64),
                    _ => id.strip_suffix("-0").unwrap_or(id).to_string(),
                }
            })
            .collect();
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}",
            status,
            self.attempts,
            self.last_at
                .map(|at| (at as i64 - event_created_ms as i64).to_string())
                .unwrap_or_default(),
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

/// Which layout wrote a state: its status letter's case tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// This one: an upper-case letter; `last_at` counts from the event's
    /// creation and the entry ids from `last_at`.
    Relative,
    /// The previous: a lower-case letter; `last_at` and the entry ids
    /// absolute, the token relative.
    Letters,
    /// Earlier: the status word; all absolute.
    Words,
}

impl Form {
    /// As `state.lua` tells them: by a known letter, in either case
    /// (anything else reads as a word, all absolute).
    fn of(status: &str) -> Self {
        if STATUSES.iter().any(|(_, letter)| *letter == status) {
            Form::Relative
        } else if STATUSES
            .iter()
            .any(|(_, letter)| letter.eq_ignore_ascii_case(status))
        {
            Form::Letters
        } else {
            Form::Words
        }
    }
}

/// The statuses a state stores, with the letter each is stored as.
const STATUSES: [(&str, &str); 4] = [
    ("pending", "P"),
    ("scheduled", "S"),
    ("delivered", "D"),
    ("failed", "F"),
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
        // The event created at 400: last_at 600 after it, the ids 999 and
        // 998 before last_at, the token 877 before.
        assert_eq!(state.encode(400), "S|2|600|500|9000||-877:0|-999,-998");
        assert_eq!(StoredState::parse(&state.encode(400), 400), Some(state));
        for (code, no_answer) in [("t", NoAnswer::Timeout), ("e", NoAnswer::ConnectError)] {
            let text = format!("S|1|600|{code}|9000||-877:0|-999");
            let state = StoredState::parse(&text, 400).unwrap();
            assert_eq!((state.last_code, state.no_answer), (None, Some(no_answer)));
            assert_eq!(state.encode(400), text);
        }
        let bare = StoredState::parse("P|0||||||", 400).unwrap();
        assert_eq!(bare.status, "pending");
        assert_eq!(bare.attempts, 0);
        assert!(bare.attempt_ids.is_empty() && bare.next.is_none());
        assert_eq!(StoredState::parse("P|0", 400), None);
        // A damaged entry id is left out, not the whole state.
        let damaged = StoredState::parse("D|1|600|200|||7:0|12.x,zz,13.2", 400).unwrap();
        assert_eq!(damaged.attempt_ids, vec!["1013-2".to_string()]);
        assert_eq!(damaged.recorded, "1007:0");
        let damaged = StoredState::parse("d|1|1000|200|||7:0|12-x,zz,13", 400).unwrap();
        assert_eq!(damaged.attempt_ids, vec!["13-0".to_string()]);
    }

    #[test]
    fn a_delivered_state_is_compact_and_reads_like_the_forms_before_it() {
        let created = 1_796_586_190_840;
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
        let layout_2 =
            "delivered|2|1796586191240|200||3|1796586201236:1|1796586191242-0,1796586191300-3";
        let layout_3 = "d|2|1796586191240|200||3|9996:1|1796586191242,1796586191300-3";
        for earlier in [layout_2, layout_3] {
            assert_eq!(StoredState::parse(earlier, created), Some(state.clone()));
        }
        let compact = state.encode(created);
        assert_eq!(compact, "D|2|400|200||3|9996:1|2,60.3");
        assert_eq!(StoredState::parse(&compact, created), Some(state));
        // One attempt: 25 bytes, a 32-byte allocation in Redis (the form
        // before took 37, a 48-byte one).
        let one = StoredState {
            attempts: 1,
            max_attempts: None,
            attempt_ids: vec!["1796586191240-0".into()],
            recorded: "1796586201240:0".into(),
            ..stored("delivered")
        };
        let one = StoredState {
            last_at: Some(1_796_586_191_240),
            last_code: Some(200),
            next: None,
            ..one
        };
        assert_eq!(one.encode(created), "D|1|400|200|||10000:0|0");
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

//! A tiny `--name value` argument reader (the driver's flags are few and
//! all take a value; clap would be the heaviest thing in the crate).

use std::collections::HashMap;
use std::str::FromStr;

pub struct Args {
    values: HashMap<String, Vec<String>>,
}

impl Args {
    /// Reads `--name value` pairs; anything else is an error.
    pub fn parse(raw: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        let mut raw = raw.peekable();
        while let Some(arg) = raw.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument `{arg}`"))?;
            let value = raw
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            values.entry(name.to_string()).or_default().push(value);
        }
        Ok(Args { values })
    }

    /// A required string.
    pub fn string(&self, name: &str) -> Result<String, String> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .cloned()
            .ok_or_else(|| format!("--{name} is required"))
    }

    /// An optional string.
    pub fn opt(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last()).cloned()
    }

    /// Every value given for a repeatable flag.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// A number with a default.
    pub fn num<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.opt(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| format!("--{name}: `{text}` is not a valid number")),
        }
    }
}

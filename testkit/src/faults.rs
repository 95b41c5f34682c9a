//! Fault injection: rules that intercept requests by API key (and optionally broker) and answer
//! with an error code, delay them, drop the connection before answering, or close it half-way
//! through the response.

use std::sync::Mutex;
use std::time::Duration;

use kingest_protocol::ErrorCode;

/// What an intercepted request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer with this error code in every error field of the response (top level, and each
    /// topic/partition entry where the response has them).
    Error(ErrorCode),
    /// Handle it normally, after this delay.
    Delay(Duration),
    /// Close the connection without answering.
    DropConnection,
    /// Write the first half of the real response, then close the connection.
    CloseMidResponse,
}

/// A rule: which requests, what happens, how many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// The API key to intercept.
    pub api_key: i16,
    /// Only on this broker (`None`: any).
    pub broker: Option<i32>,
    /// What happens.
    pub action: FaultAction,
    /// How many requests it applies to (`None`: until removed).
    pub times: Option<usize>,
}

impl FaultRule {
    /// A rule for every request of `api_key` on any broker, applied `times` times.
    pub fn new(api_key: i16, action: FaultAction, times: usize) -> Self {
        Self {
            api_key,
            broker: None,
            action,
            times: Some(times),
        }
    }
}

/// The cluster's fault rules.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    fired: Mutex<Vec<(i32, i16, FaultAction)>>,
}

impl Faults {
    /// Adds a rule.
    pub fn add(&self, rule: FaultRule) {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rule);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The faults applied so far: (broker, API key, action).
    pub fn fired(&self) -> Vec<(i32, i16, FaultAction)> {
        self.fired.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The action for a request, consuming one use of the first matching rule.
    pub(crate) fn take(&self, broker: i32, api_key: i16) -> Option<FaultAction> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let i = rules
            .iter()
            .position(|r| r.api_key == api_key && r.broker.is_none_or(|b| b == broker))?;
        let action = rules[i].action.clone();
        if let Some(n) = rules[i].times.as_mut() {
            *n -= 1;
            if *n == 0 {
                rules.remove(i);
            }
        }
        drop(rules);
        self.fired.lock().unwrap_or_else(|e| e.into_inner()).push((
            broker,
            api_key,
            action.clone(),
        ));
        Some(action)
    }
}

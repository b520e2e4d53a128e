//! The tracking plan at the call: `track()`'s event checked against `init({ plan })` before it is
//! admitted. `planMode: 'reject'` fails the call; `'report'` lets the event through, counts it
//! (`stats().planViolations`) and reports it through `onError` (`PLAN_VIOLATION`), once per event
//! and field a minute.

use super::protocol::{Effect, TrackCall};
use super::Tracker;
use crate::core::error::{Error, ErrorCode};
use crate::core::event::{normalize_event_name, EventName};
use crate::core::json::{fnv1a, FNV_OFFSET};
use crate::core::plan::PlanMode;

impl Tracker {
    /// Checks `call` against the plan, if there is one: `Err` when the call must fail.
    pub(super) fn follow_plan(&mut self, call: &TrackCall, now: u64) -> Result<(), Error> {
        let config = self.engine.config();
        let (Some(plan), EventName::User(name)) = (&config.plan, &call.name) else {
            return Ok(());
        };
        // A name that breaks the naming rule is `track()`'s own error (INVALID_EVENT_NAME).
        let Ok(name) = normalize_event_name(name) else {
            return Ok(());
        };
        let Err(violation) = plan.check(&name, &call.props) else {
            return Ok(());
        };
        self.plan_violations += 1;
        if config.plan_mode == PlanMode::Reject {
            return Err(violation);
        }
        let field = violation.field.as_deref().unwrap_or("");
        if self.plan_reports.admit(fnv1a(&[&name, "\n", field], FNV_OFFSET), now) {
            let message = format!("stored, but it breaks the tracking plan: {}", violation.message);
            self.emit(Effect::ReportError(Error { code: ErrorCode::PlanViolation, message, field: violation.field }));
        }
        Ok(())
    }
}

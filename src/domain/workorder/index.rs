//! What the store indexes of a work order, for queries and the scheduler.

use super::{ConstraintKind, WorkOrder};
use crate::domain::time::Time;

/// The properties the store indexes for queries and the scheduler.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Indexed {
    pub order_status: Option<i64>,
    pub order_type: Option<String>,
    pub user_name: Option<String>,
    pub service_area_id: Option<String>,
    pub planned_start: Option<Time>,
    pub planned_end: Option<Time>,
    pub original_order_num: Option<String>,
    /// When the technician is free again: `PlannedEndDate`, else start + `PlannedDur`.
    pub busy_end: Option<Time>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// The promised window: the first `TimeConstraints` item of type 1001.
    pub window: Option<(Time, Time)>,
    /// A dispatcher pinned the visit (`Pinned`).
    pub pinned: bool,
}

impl WorkOrder {
    pub(crate) fn indexed(&self) -> Indexed {
        let address = self.address();
        Indexed {
            order_status: self.order_status.map(|s| s.code()),
            order_type: self.order_type.clone(),
            user_name: self.user_name.clone(),
            service_area_id: self.service_area_id().map(str::to_string),
            planned_start: self.planned_start_date,
            planned_end: self.planned_end_date,
            original_order_num: self.original_order_num.clone(),
            busy_end: self.busy_end(),
            lat: address.and_then(|a| a.lat.as_ref()?.degrees()),
            lon: address.and_then(|a| a.lon.as_ref()?.degrees()),
            window: self.promised_window(),
            pinned: self.pinned(),
        }
    }

    fn busy_end(&self) -> Option<Time> {
        let start = self.planned_start_date?;
        if let Some(end) = self.planned_end_date {
            return Some(end);
        }
        let dur = self.planned_dur?;
        // Past the end of the range the visit lasts to its end.
        Some(start.saturating_add_minutes(dur.into()))
    }

    /// The promised window: the first TimeConstraints item of type 1001 that is not marked
    /// `"Delete": true` and has both ends.
    pub(crate) fn promised_window(&self) -> Option<(Time, Time)> {
        self.time_constraints().find_map(|tc| {
            if tc.kind?.kind != ConstraintKind::Window || tc.is_deleted() {
                return None;
            }
            let p = tc.period.as_ref()?;
            Some((p.start?, p.end?))
        })
    }
}

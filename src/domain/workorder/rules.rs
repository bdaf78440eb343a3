//! The rules of a work order's status (docs/api.md §5.2), reason (§5.4) and follow-up (§5.3, §7).

use super::WorkOrder;
use crate::domain::{
    DomainError,
    category::{ReasonKind, Reasons},
    status::OrderStatus,
    sysconfig::EntityConfig,
};

impl WorkOrder {
    /// The rule of §5.3: the order's own property, else the configuration by order type, else
    /// the configuration's default, else false.
    pub(crate) fn can_schedule_followup(&self, cfg: &EntityConfig) -> bool {
        self.can_schedule_followup
            .or_else(|| cfg.rule_can_schedule_followup(self.order_type()))
            .unwrap_or(false)
    }

    /// Checks the rules of a change from `prev` to `self` (§5.2): a closed order stays closed;
    /// entering Closed Incomplete, or changing its reason, needs a reason from category 15 or 16.
    pub(crate) fn check_transition(
        &self,
        prev: Option<&WorkOrder>,
        reasons: &Reasons,
    ) -> Result<(), DomainError> {
        let next = self.status();
        let before = prev.and_then(WorkOrder::status);
        // Removing the status (PUT without it, `_fields`) would reopen a closed order silently.
        if let (Some(b), None) = (before, next)
            && b.is_closed()
        {
            return Err(DomainError::conflict(
                "urn:revisit:error:order-closed",
                format!(
                    "work order {} is {} and keeps its OrderStatus; create a follow-up order instead",
                    self.order_num(),
                    b.desc()
                ),
            ));
        }
        if let (Some(b), Some(n)) = (before, next)
            && b.is_closed()
            && !n.is_closed()
        {
            return Err(DomainError::conflict(
                "urn:revisit:error:order-closed",
                format!(
                    "work order {} is {} and cannot move back to {} ({}); create a follow-up order instead",
                    self.order_num(),
                    b.desc(),
                    n.desc(),
                    n.code()
                ),
            ));
        }
        if next == Some(OrderStatus::ClosedIncomplete) {
            let changed =
                before != next || prev.and_then(WorkOrder::reason_code) != self.reason_code();
            if changed {
                match self.reason_code() {
                    None => {
                        return Err(DomainError::invalid(
                            "$.ReasonCode",
                            "Closed Incomplete (4097) requires a ReasonCode from system category 15 (follow-up required) or 16 (no follow-up required)",
                        ));
                    }
                    Some(code) if reasons.classify(code).is_none() => {
                        return Err(DomainError::invalid(
                            "$.ReasonCode",
                            format!(
                                "unknown reason code {code:?}: expected a code of system category 15 or 16"
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }
}

/// Why an order may not be followed up (§5.3, §5.4, §7), checked in the order a technician
/// would want to hear it.
pub(crate) fn check_followup_allowed(
    order: &WorkOrder,
    cfg: &EntityConfig,
    reasons: &Reasons,
) -> Result<(), DomainError> {
    if order.status() != Some(OrderStatus::ClosedIncomplete) {
        return Err(DomainError::conflict(
            "urn:revisit:error:not-closed-incomplete",
            format!(
                "work order {} is not Closed Incomplete (4097); close it as incomplete with a follow-up reason first",
                order.order_num()
            ),
        ));
    }
    if !order.can_schedule_followup(cfg) {
        return Err(DomainError::conflict(
            "urn:revisit:error:followup-not-allowed",
            format!(
                "the work order rule CanScheduleFollowup is false for work order {} (order type {}); set it on the order or in WorkOrderRules of the entity configuration",
                order.order_num(),
                order.order_type().unwrap_or("none")
            ),
        ));
    }
    if !cfg.allow_any_reason() {
        let code = order.reason_code().unwrap_or_default();
        match reasons.classify(code) {
            Some(ReasonKind::FollowupRequired) => {}
            Some(ReasonKind::NoFollowup) => {
                return Err(DomainError::conflict(
                    "urn:revisit:error:reason-no-followup",
                    format!(
                        "work order {} was closed with reason {code}, which says no follow-up is required (category 16)",
                        order.order_num()
                    ),
                ));
            }
            // A reason the entity has since removed from both lists.
            None => {
                return Err(DomainError::conflict(
                    "urn:revisit:error:reason-no-followup",
                    format!(
                        "work order {} was closed with reason {code:?}, which is not a follow-up reason (category 15) of the entity",
                        order.order_num()
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{reasons, wo};
    use crate::domain::DomainError;

    #[test]
    fn closed_incomplete_needs_a_known_reason_and_closed_stays_closed() {
        let open = wo(json!({"OrderStatus": 7})).unwrap();
        let no_reason = wo(json!({"OrderStatus": 4097})).unwrap();
        assert!(matches!(
            no_reason.check_transition(Some(&open), &reasons()),
            Err(DomainError::Invalid(_))
        ));
        let bad_reason = wo(json!({"OrderStatus": 4097, "ReasonCode": "9999"})).unwrap();
        assert!(
            bad_reason
                .check_transition(Some(&open), &reasons())
                .is_err()
        );
        let closed = wo(json!({"OrderStatus": 4097, "ReasonCode": "2001"})).unwrap();
        closed.check_transition(Some(&open), &reasons()).unwrap();
        let reopened = wo(json!({"OrderStatus": 1, "ReasonCode": "2001"})).unwrap();
        assert!(matches!(
            reopened.check_transition(Some(&closed), &reasons()),
            Err(DomainError::Conflict { .. })
        ));
        let no_status = wo(json!({"ReasonCode": "2001"})).unwrap();
        assert!(matches!(
            no_status.check_transition(Some(&closed), &reasons()),
            Err(DomainError::Conflict { .. })
        ));
    }
}

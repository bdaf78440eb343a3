//! Work order status codes (system category 10, fixed) and the transitions between them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    New,
    EnRoute,
    Onsite,
    TravelComplete,
    Pending,
    Rejected,
    ClosedComplete,
    ClosedIncomplete,
}

pub const ALL: [OrderStatus; 8] = [
    OrderStatus::New,
    OrderStatus::EnRoute,
    OrderStatus::Onsite,
    OrderStatus::TravelComplete,
    OrderStatus::Pending,
    OrderStatus::Rejected,
    OrderStatus::ClosedComplete,
    OrderStatus::ClosedIncomplete,
];

impl OrderStatus {
    pub fn code(self) -> i64 {
        match self {
            Self::New => 1,
            Self::EnRoute => 6,
            Self::Onsite => 7,
            Self::TravelComplete => 8,
            Self::Pending => 9,
            Self::Rejected => 1001,
            Self::ClosedComplete => 4096,
            Self::ClosedIncomplete => 4097,
        }
    }

    pub(crate) fn from_code(code: i64) -> Option<Self> {
        ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn desc(self) -> &'static str {
        match self {
            Self::New => "New",
            Self::EnRoute => "En Route",
            Self::Onsite => "Onsite",
            Self::TravelComplete => "Travel Complete",
            Self::Pending => "Pending",
            Self::Rejected => "Rejected",
            Self::ClosedComplete => "Closed Complete",
            Self::ClosedIncomplete => "Closed Incomplete",
        }
    }

    /// Closed Complete or Closed Incomplete: a closed order never reopens.
    pub(crate) fn is_closed(self) -> bool {
        matches!(self, Self::ClosedComplete | Self::ClosedIncomplete)
    }

    /// En route, on site or travel complete: the visit is under way, so it stays with its
    /// technician at its time (docs/scheduler.md §6).
    pub(crate) fn is_under_way(self) -> bool {
        matches!(self, Self::EnRoute | Self::Onsite | Self::TravelComplete)
    }

    /// Whether the order still occupies its technician (docs/scheduler.md §1).
    pub(crate) fn is_open(self) -> bool {
        !matches!(
            self,
            Self::ClosedComplete | Self::ClosedIncomplete | Self::Rejected
        )
    }
}

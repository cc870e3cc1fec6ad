use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A status string that is not one of the known values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}`")]
pub struct ParseStatusError(pub String);

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            Pending,
            Running,
            Completed,
            Failed,
            Cancelled,
        }

        impl $name {
            /// Every status, in life-cycle order.
            pub const ALL: [$name; 5] = [
                $name::Pending,
                $name::Running,
                $name::Completed,
                $name::Failed,
                $name::Cancelled,
            ];

            /// The lowercase name stored in the database and sent over the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $name::Pending => "pending",
                    $name::Running => "running",
                    $name::Completed => "completed",
                    $name::Failed => "failed",
                    $name::Cancelled => "cancelled",
                }
            }

            /// Completed, failed and cancelled are terminal: nothing runs any more.
            pub fn is_terminal(self) -> bool {
                matches!(self, $name::Completed | $name::Failed | $name::Cancelled)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseStatusError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .into_iter()
                    .find(|status| status.as_str() == s)
                    .ok_or_else(|| ParseStatusError(s.to_owned()))
            }
        }
    };
}

status_enum!(
    /// The status of a workflow job.
    JobStatus
);
status_enum!(
    /// The status of one step (a `generation_tasks` row).
    TaskStatus
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
        }
        assert!("done".parse::<TaskStatus>().is_err());
        assert!(JobStatus::Cancelled.is_terminal());
        assert!(!JobStatus::Running.is_terminal());
    }
}

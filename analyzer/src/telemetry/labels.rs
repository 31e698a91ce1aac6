//! The label values Verdict's metrics take, one enum per label: call sites
//! name what happened, and the strings (which dashboards and alerts query)
//! are written once, here.

/// A run store operation, as labelled in `verdict_store_errors_total` and
/// `verdict_store_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOperation {
    OpenRun,
    SyncRun,
    RecordLook,
    CloseRun,
    OpenStep,
    RecordEvent,
    RecordNotification,
    Retention,
    /// Recording how a Kayenta-API execution ended.
    KayentaFinish,
}

impl StoreOperation {
    /// The operations whose error series exist from the start.
    pub const PRE_REGISTERED: [StoreOperation; 8] = [
        StoreOperation::OpenRun,
        StoreOperation::SyncRun,
        StoreOperation::RecordLook,
        StoreOperation::CloseRun,
        StoreOperation::OpenStep,
        StoreOperation::RecordEvent,
        StoreOperation::RecordNotification,
        StoreOperation::Retention,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StoreOperation::OpenRun => "open_run",
            StoreOperation::SyncRun => "sync_run",
            StoreOperation::RecordLook => "record_look",
            StoreOperation::CloseRun => "close_run",
            StoreOperation::OpenStep => "open_step",
            StoreOperation::RecordEvent => "record_event",
            StoreOperation::RecordNotification => "record_notification",
            StoreOperation::Retention => "retention",
            StoreOperation::KayentaFinish => "kayenta_finish",
        }
    }
}

/// The rollout controller whose webhook was answered (label `api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    Flagger,
    Argo,
}

impl Controller {
    pub fn as_str(self) -> &'static str {
        match self {
            Controller::Flagger => "flagger",
            Controller::Argo => "argo",
        }
    }
}

/// The type of a Flagger event webhook, as counted and recorded: Flagger's
/// `eventType` when it is one of its two, `other` for anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlaggerEventType {
    Normal,
    Warning,
    Other,
}

impl FlaggerEventType {
    /// The type of an `eventType` metadata value (absent: `other`).
    pub fn of(event_type: Option<&str>) -> Self {
        match event_type {
            Some("Normal") => FlaggerEventType::Normal,
            Some("Warning") => FlaggerEventType::Warning,
            _ => FlaggerEventType::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FlaggerEventType::Normal => "Normal",
            FlaggerEventType::Warning => "Warning",
            FlaggerEventType::Other => "other",
        }
    }
}

/// How a reload (of the config, of the serving certificate) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    Success,
    Failure,
}

impl Reload {
    pub fn as_str(self) -> &'static str {
        match self {
            Reload::Success => "success",
            Reload::Failure => "failure",
        }
    }
}

/// What became of a decision notification on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Given up: refused for good or out of attempts.
    Failed,
    /// Never queued (queue full, worker stopped).
    Dropped,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Failed => "failed",
            Delivery::Dropped => "dropped",
        }
    }
}

/// A step in the life of a Kayenta-API execution (label `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KayentaExecution {
    Started,
    /// Left running by a previous daemon and judged again.
    Resumed,
    Succeeded,
    Terminal,
}

impl KayentaExecution {
    pub fn as_str(self) -> &'static str {
        match self {
            KayentaExecution::Started => "started",
            KayentaExecution::Resumed => "resumed",
            KayentaExecution::Succeeded => "succeeded",
            KayentaExecution::Terminal => "terminal",
        }
    }
}

//! The OCSF 1.3.0 classes Ward maps to: ids, captions and activities, as
//! the schema defines them.

/// One OCSF event class.
#[derive(Debug)]
pub struct Class {
    /// `class_uid`.
    pub uid: u32,
    /// `class_name`.
    pub name: &'static str,
    /// `category_uid`.
    pub category: u32,
    /// `category_name`.
    pub category_name: &'static str,
    /// `activity_id` → `activity_name`.
    pub activities: &'static [(u32, &'static str)],
}

impl Class {
    /// The caption of `activity`, if the class defines it.
    pub fn activity(&self, activity: u32) -> Option<&'static str> {
        self.activities
            .iter()
            .find(|(id, _)| *id == activity)
            .map(|(_, name)| *name)
    }
}

const IAM: &str = "Identity & Access Management";
const APPLICATION: &str = "Application Activity";

/// Base Event (0): the fallback for actions no rule maps, exported with
/// activity Other (99).
pub const BASE_EVENT: Class = Class {
    uid: 0,
    name: "Base Event",
    category: 0,
    category_name: "Uncategorized",
    activities: &[(0, "Unknown"), (99, "Other")],
};

/// Every class a manifest's `[[ocsf.map]]` may name.
pub const CLASSES: &[Class] = &[
    Class {
        uid: 3001,
        name: "Account Change",
        category: 3,
        category_name: IAM,
        activities: &[
            (0, "Unknown"),
            (1, "Create"),
            (2, "Enable"),
            (3, "Password Change"),
            (4, "Password Reset"),
            (5, "Disable"),
            (6, "Delete"),
            (7, "Attach Policy"),
            (8, "Detach Policy"),
            (9, "Lock"),
            (10, "MFA Factor Enable"),
            (11, "MFA Factor Disable"),
            (99, "Other"),
        ],
    },
    Class {
        uid: 3002,
        name: "Authentication",
        category: 3,
        category_name: IAM,
        activities: &[
            (0, "Unknown"),
            (1, "Logon"),
            (2, "Logoff"),
            (3, "Authentication Ticket"),
            (4, "Service Ticket Request"),
            (5, "Service Ticket Renew"),
            (6, "Preauth"),
            (99, "Other"),
        ],
    },
    Class {
        uid: 3005,
        name: "User Access Management",
        category: 3,
        category_name: IAM,
        activities: &[
            (0, "Unknown"),
            (1, "Assign Privileges"),
            (2, "Revoke Privileges"),
            (99, "Other"),
        ],
    },
    Class {
        uid: 3006,
        name: "Group Management",
        category: 3,
        category_name: IAM,
        activities: &[
            (0, "Unknown"),
            (1, "Assign Privileges"),
            (2, "Revoke Privileges"),
            (3, "Add User"),
            (4, "Remove User"),
            (5, "Delete"),
            (6, "Create"),
            (99, "Other"),
        ],
    },
    Class {
        uid: 6003,
        name: "API Activity",
        category: 6,
        category_name: APPLICATION,
        activities: &[
            (0, "Unknown"),
            (1, "Create"),
            (2, "Read"),
            (3, "Update"),
            (4, "Delete"),
            (99, "Other"),
        ],
    },
    Class {
        uid: 6006,
        name: "File Hosting Activity",
        category: 6,
        category_name: APPLICATION,
        activities: &[
            (0, "Unknown"),
            (1, "Upload"),
            (2, "Download"),
            (3, "Update"),
            (4, "Delete"),
            (5, "Rename"),
            (6, "Copy"),
            (7, "Move"),
            (8, "Restore"),
            (9, "Preview"),
            (10, "Lock"),
            (11, "Unlock"),
            (12, "Share"),
            (13, "Unshare"),
            (14, "Open"),
            (15, "Sync"),
            (16, "Unsync"),
            (99, "Other"),
        ],
    },
];

/// The class with this `class_uid`, if Ward maps to it.
pub fn class(uid: u32) -> Option<&'static Class> {
    CLASSES.iter().find(|c| c.uid == uid)
}

/// `severity_id` → `severity`.
pub fn severity(id: u32) -> &'static str {
    match id {
        1 => "Informational",
        2 => "Low",
        3 => "Medium",
        4 => "High",
        5 => "Critical",
        6 => "Fatal",
        99 => "Other",
        _ => "Unknown",
    }
}
